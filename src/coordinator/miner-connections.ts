// Turns a miner's connection, whatever carries it (a WebRTC data channel or a WebSocket), into a framed session.
import { randomUUID } from 'node:crypto';
import { FramedChannel, type BytePipe } from '../protocol/channel.ts';
import { MAX_MESSAGE_BYTES } from '../protocol/framing.ts';
import { log } from './log.ts';
import { MinerSession, type SessionContext } from './miner-session.ts';
import type { LeaseGrace } from './lease-grace.ts';

export type MinerTransport = 'webrtc' | 'websocket';

/** A miner's connection as a byte pipe, with what the session needs to manage it. */
export interface IncomingConnection {
  id: string;
  transport: MinerTransport;
  /**
   * What the challenge is signed over, so that the miner can tell the channel ends at the coordinator: the sha-256
   * fingerprint of the DTLS certificate this end presents on a data channel, or the dialled host on a WebSocket
   * (src/protocol/socket-binding.ts).
   */
  channelBinding: Uint8Array;
  pipe: BytePipe;
  onData(listener: (data: ArrayBuffer | Uint8Array) => void): void;
  onClose(listener: () => void): void;
  close(): void;
  /** Told once the miner has proved its wallet key: the transport's handshake bounds no longer count it. */
  welcomed?(): void;
}

/**
 * The largest message from a connection that has not proved a wallet key: a hello is under 1 KiB. A message's
 * buffer is made whole on its first frame, so without this, every unauthenticated connection could make the
 * coordinator hold one of the largest messages (96 MiB).
 */
export const PRE_HELLO_MAX_MESSAGE_BYTES = 64 * 1024;

export interface MinerConnections {
  sessions: Map<string, MinerSession>;
  channels: Map<string, FramedChannel>;
  /** Where a dropped session's leases wait for its wallet key. */
  grace: LeaseGrace;
  context: SessionContext;
  maxSessions: number;
}

/** Opens a session on a new connection (or closes it when the coordinator holds as many as it takes). */
export function acceptMiner(connection: IncomingConnection, miners: MinerConnections): void {
  const { sessions, channels, grace } = miners;
  if (sessions.size >= miners.maxSessions) {
    log('miner-refused', { connection: connection.id, transport: connection.transport, reason: `${sessions.size} connections already` });
    connection.close();
    return;
  }
  const sessionId = randomUUID();
  const channel: FramedChannel = new FramedChannel(
    connection.pipe,
    (bytes) => {
      session.receive(bytes).catch((err: unknown) => {
        log('session-error', { session: sessionId, error: String(err) });
        session.frameError({ code: 'internal', message: 'the coordinator failed to handle that message' });
      });
    },
    (error) => session.frameError(error),
  );
  const session = new MinerSession(
    sessionId,
    miners.context,
    (bytes) => void channel.send(bytes),
    (reason) => {
      log('session-closing', { session: sessionId, miner: session.minerKey, reason });
      connection.close();
      drop();
    },
  );
  channel.maxMessageBytes = PRE_HELLO_MAX_MESSAGE_BYTES;
  session.onWelcome = () => {
    channel.maxMessageBytes = MAX_MESSAGE_BYTES;
    connection.welcomed?.();
  };
  const drop = () => {
    if (!sessions.delete(sessionId)) return;
    channels.delete(sessionId);
    // Its operand token dies with it: a reconnection gets a new one, and only finished results come back on it.
    miners.context.operandBlobs?.dropSession(sessionId);
    channel.close();
    // Results finished while the link was down may still come, from the same wallet key on a new connection.
    grace.hold(sessionId, session.minerKey);
  };
  sessions.set(sessionId, session);
  channels.set(sessionId, channel);
  connection.onData((data) => {
    session.heard();
    channel.receive(data);
  });
  connection.onClose(drop);
  log('miner-connected', { session: sessionId, connection: connection.id, transport: connection.transport });
  session.start(connection.channelBinding).catch((err: unknown) => {
    log('session-error', { session: sessionId, error: `signing the challenge: ${String(err)}` });
    connection.close();
    drop();
  });
}
