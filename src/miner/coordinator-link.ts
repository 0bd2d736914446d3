// A miner's link to one coordinator: PeerJS data channel, framed messages, an inbox, and a heartbeat.
import type { DataConnection, Peer as PeerType, PeerOptions } from 'peerjs';
import * as v from 'valibot';
import { FramedChannel } from '../protocol/channel.ts';
import { encodeMessage, parseCoordinatorMessage } from '../protocol/codec.ts';
import type { CoordinatorMessage, MinerMessageInput } from '../protocol/messages.ts';
import { fingerprintText, sdpFingerprint } from '../protocol/dtls-fingerprint.ts';
import { SilenceClock } from '../protocol/heartbeat.ts';
import { toHex, verifyChallenge } from '../protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../protocol/version.ts';

type Message = CoordinatorMessage;
export type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;
export type MinerOutgoing = MinerMessageInput extends infer T ? (T extends unknown ? Omit<T, 'v'> : never) : never;

/**
 * What GET /api/config tells a miner about reaching the coordinator. The key, learned from the coordinator's own
 * origin, is pinned: whoever answers on the peer id must open with a challenge under it.
 */
const CoordinatorConfig = v.object({
  coordinatorPeerId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  coordinatorKey: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'coordinatorKey is 32 bytes in lowercase hex')),
  peer: v.object({ path: v.string(), key: v.string() }),
});
export type CoordinatorConfig = v.InferOutput<typeof CoordinatorConfig>;

const CONNECT_TIMEOUT_MS = 20_000;

export class LinkClosedError extends Error {}

export class CoordinatorLink {
  private readonly inbox: Message[] = [];
  private waiters: (() => void)[] = [];
  /** The coordinator's silence: it is declared gone past the clock's deadAfterMs() without a single frame. */
  private silence = new SilenceClock(Date.now());
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private closedReason: string | undefined;
  private readonly closeListeners: ((reason: string) => void)[] = [];
  /** Answer pings and send our own; a test turns this off to play a frozen tab. */
  alive = true;
  /** Frames that could not be parsed, kept for tests and the status view. */
  readonly protocolErrors: string[] = [];

  private constructor(
    private readonly peer: PeerType,
    private readonly conn: DataConnection,
    readonly challenge: MessageOf<'challenge'>,
    private readonly channel: FramedChannel,
  ) {}

  /** Fetches the coordinator's config, opens a data channel to it and waits for its challenge. */
  static async open(baseUrl: string, Peer: typeof PeerType): Promise<CoordinatorLink> {
    const res = await fetch(new URL('api/config', baseUrl));
    if (!res.ok) throw new Error(`coordinator config: HTTP ${res.status}`);
    const parsed = v.safeParse(CoordinatorConfig, await res.json());
    if (!parsed.success) throw new Error(`coordinator config: ${parsed.issues[0].message}`);
    const config = parsed.output;
    const url = new URL(baseUrl);
    const options: PeerOptions = {
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      path: config.peer.path,
      key: config.peer.key,
      secure: url.protocol === 'https:',
      config: { iceServers: [] },
      debug: 0,
    };
    const peer = new Peer(options);
    try {
      return await withTimeout(CoordinatorLink.handshake(peer, config), CONNECT_TIMEOUT_MS, 'connecting to the coordinator');
    } catch (err) {
      peer.destroy();
      throw err;
    }
  }

  private static async handshake(peer: PeerType, config: CoordinatorConfig): Promise<CoordinatorLink> {
    await new Promise<void>((resolve, reject) => {
      peer.once('open', () => resolve());
      peer.once('error', (err) => reject(new Error(`PeerServer: ${err.type}: ${err.message}`)));
    });
    const conn = peer.connect(config.coordinatorPeerId, { serialization: 'raw', reliable: true });
    // The coordinator speaks first (its challenge), which also avoids acting before our side is open.
    const first: Message[] = [];
    let firstProblem = '';
    let link: CoordinatorLink | undefined;
    let wakeFirst: (() => void) | undefined;
    const channel = new FramedChannel(
      { send: (frame) => void conn.send(frame), bufferedBytes: () => conn.dataChannel?.bufferedAmount ?? 0 },
      (bytes) => {
        if (link) return link.deliver(bytes);
        const parsed = parseCoordinatorMessage(bytes);
        if (parsed.ok) first.push(parsed.value);
        else firstProblem ||= ` (${parsed.error.code}: ${parsed.error.message})`;
        wakeFirst?.();
      },
      (error) => link?.protocolErrors.push(`${error.code}: ${error.message}`),
    );
    conn.on('data', (data) => {
      link?.silence.heard();
      channel.receive(data as ArrayBuffer);
    });
    await new Promise<void>((resolve, reject) => {
      wakeFirst = resolve;
      conn.once('error', (err) => reject(new Error(`data channel: ${err.message}`)));
      peer.once('error', (err) => reject(new Error(`${err.type}: ${err.message}`)));
    });
    const challenge = first.shift();
    if (challenge?.type !== 'challenge') throw new Error(`the coordinator did not open with a challenge${firstProblem}`);
    // Anyone holding the peer id at the PeerServer could answer; only the coordinator's own key is accepted, and the
    // mining loop then takes receipts signed by this key only.
    const challengeKey = toHex(challenge.coordinatorKey);
    if (challengeKey !== config.coordinatorKey) {
      throw new Error(`refused a challenge under key ${challengeKey.slice(0, 16)}…: the coordinator's origin serves key ${config.coordinatorKey.slice(0, 16)}…`);
    }
    // Anyone can copy the key into a challenge; only the coordinator can sign, with it, the certificate that our own
    // WebRTC stack authenticated at the far end of this channel. A relay or a squatter presents a certificate of its own.
    const remote = sdpFingerprint(conn.peerConnection?.remoteDescription?.sdp ?? '');
    if (!remote.ok) throw new Error(`refused the coordinator's data channel: its SDP ${remote.problem}`);
    if (!challenge.signature) throw new Error('refused an unsigned challenge: the coordinator signs its challenge over its data channel\'s certificate');
    if (!(await verifyChallenge(challenge, remote.value))) {
      throw new Error(`refused a challenge whose signature is not the coordinator's over this data channel's certificate (sha-256 ${fingerprintText(remote.value).slice(0, 23)}…): the channel ends at someone else`);
    }
    link = new CoordinatorLink(peer, conn, challenge, channel);
    link.startHeartbeat(challenge.heartbeatMs);
    conn.on('close', () => link?.shutdown('the data channel closed'));
    peer.on('error', (err) => link?.protocolErrors.push(`peer: ${err.type}: ${err.message}`));
    peer.on('disconnected', () => {
      // Losing the PeerServer does not end an open data channel; reconnect signalling quietly.
      setTimeout(() => {
        if (!peer.destroyed && !link?.closed) peer.reconnect();
      }, 1_000);
    });
    return link;
  }

  private startHeartbeat(heartbeatMs: number): void {
    const everyMs = Math.max(250, heartbeatMs);
    this.silence = new SilenceClock(Date.now(), everyMs);
    this.heartbeat = setInterval(() => {
      if (!this.alive) return;
      const silentMs = this.silence.tick(Date.now());
      if (this.silence.dead) {
        this.shutdown(`the coordinator was silent for ${(silentMs / 1000).toFixed(1)} s`);
        return;
      }
      this.channel.checkStalled();
      this.send({ type: 'ping', nonce: Date.now() });
    }, everyMs);
  }

  private deliver(bytes: Uint8Array): void {
    if (!this.alive) return;
    const parsed = parseCoordinatorMessage(bytes);
    if (!parsed.ok) {
      this.protocolErrors.push(`${parsed.error.code}: ${parsed.error.message}`);
      return;
    }
    const message = parsed.value;
    if (message.type === 'ping') return this.send({ type: 'pong', nonce: message.nonce });
    if (message.type === 'pong') return;
    this.inbox.push(message);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for the next message of one of these types, leaving others in the inbox. */
  async next<T extends Message['type']>(types: T[], timeoutMs = 120_000): Promise<MessageOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.inbox.findIndex((m) => (types as string[]).includes(m.type));
      if (at >= 0) return this.inbox.splice(at, 1)[0] as MessageOf<T>;
      if (this.closedReason !== undefined) throw new LinkClosedError(this.closedReason);
      if (Date.now() > deadline) throw new Error(`no ${types.join(' or ')} from the coordinator within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1_000);
      });
    }
  }

  send(message: MinerOutgoing): void {
    if (this.closedReason !== undefined) return;
    void this.channel.send(encodeMessage({ ...message, v: PROTOCOL_VERSION }));
  }

  /** Sends bytes as one framed message, valid or not: for tests that play a misbehaving miner. */
  sendBytes(bytes: Uint8Array): void {
    void this.channel.send(bytes);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  close(reason = 'closed by the miner'): void {
    this.conn.close();
    this.shutdown(reason);
  }

  private shutdown(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearInterval(this.heartbeat);
    this.channel.close();
    this.peer.destroy();
    this.wake();
    for (const listener of this.closeListeners) listener(reason);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
