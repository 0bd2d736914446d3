// The miners' WebSocket: the same framed protocol and session as the data channel, for pages whose WebRTC cannot
// connect (a network that blocks UDP, a browser with WebRTC turned off) and for tests that choose it.
//
// It is bounded as the data channel's path is: frames no larger than the data channel's, connections that have not
// said hello bounded over all and per address (signalling.ts bounds WebRTC handshakes the same way), the session's
// own hello deadline, message limits and rate limits, and browsers' Origin checked as the HTTP API checks it.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES } from '../protocol/framing.ts';
import { socketBinding } from '../protocol/socket-binding.ts';
import { log } from './log.ts';
import type { IncomingConnection } from './miner-connections.ts';
import { DEFAULT_HANDSHAKE_LIMITS, type HandshakeLimits } from './signalling.ts';
import { refuseUpgrade, UpgradeRoutes } from './upgrades.ts';

export const MINER_SOCKET_PATH = '/api/miner-socket';
/** One WebSocket message carries one frame, as one data channel message does: nothing larger is read. */
export const MAX_SOCKET_MESSAGE_BYTES = FRAME_HEADER_BYTES + FRAME_PAYLOAD_BYTES;

export interface MinerSocketOptions {
  /** Origins besides the coordinator's own whose pages may connect (as for the HTTP API). */
  allowedOrigins: readonly string[];
  /** Bounds on connections that have not proved a wallet key yet (`perPeer` does not apply: a socket has no peer id). */
  handshakeLimits?: Partial<HandshakeLimits>;
  onConnection(connection: IncomingConnection): void;
}

export interface MountedMinerSocket {
  /** Closes every miner socket: upgraded sockets are the HTTP server's no longer, and would hold its close. */
  close(): void;
}

export function mountMinerSocket(httpServer: Server, options: MinerSocketOptions): MountedMinerSocket {
  const limits = { ...DEFAULT_HANDSHAKE_LIMITS, ...options.handshakeLimits };
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_SOCKET_MESSAGE_BYTES, perMessageDeflate: false });
  /** Connections that have not said hello yet, by address. */
  const unwelcomed = new Map<string, number>();
  let unwelcomedTotal = 0;

  const admit = (req: IncomingMessage): { ok: true } | { ok: false; status: number; reason: string } => {
    const origin = req.headers.origin;
    // Like the HTTP API: a page of another origin may not use a visitor's browser to mine here; a program sends no Origin.
    if (origin !== undefined) {
      const own = `http://${req.headers.host ?? ''}`;
      const ownSecure = `https://${req.headers.host ?? ''}`;
      if (origin !== own && origin !== ownSecure && !options.allowedOrigins.includes(origin)) {
        return { ok: false, status: 403, reason: `connections from pages of ${origin.slice(0, 200)} are not allowed; use the coordinator's own page` };
      }
    }
    if (!req.headers.host) return { ok: false, status: 400, reason: 'a miner socket names its Host' };
    const address = req.socket.remoteAddress ?? '';
    if (unwelcomedTotal >= limits.total) return { ok: false, status: 503, reason: `${unwelcomedTotal} connections are saying hello, as many as the coordinator takes at once` };
    if ((unwelcomed.get(address) ?? 0) >= limits.perAddress) return { ok: false, status: 429, reason: 'this address has as many connections saying hello as one address may' };
    return { ok: true };
  };

  UpgradeRoutes.of(httpServer).route(MINER_SOCKET_PATH, (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const admitted = admit(req);
    if (!admitted.ok) {
      log('miner-socket-refused', { address: req.socket.remoteAddress, origin: req.headers.origin?.slice(0, 200), reason: admitted.reason });
      return refuseUpgrade(socket, admitted.status, admitted.reason);
    }
    const address = req.socket.remoteAddress ?? '';
    const host = req.headers.host ?? '';
    // Counted from the upgrade on, so that upgrades racing each other cannot pass the bound together.
    unwelcomed.set(address, (unwelcomed.get(address) ?? 0) + 1);
    unwelcomedTotal++;
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      unwelcomedTotal--;
      const left = (unwelcomed.get(address) ?? 1) - 1;
      if (left > 0) unwelcomed.set(address, left);
      else unwelcomed.delete(address);
    };
    socket.once('close', uncount);
    sockets.handleUpgrade(req, socket, head, (ws) => {
      socketBinding(host).then(
        (binding) => options.onConnection(wrapSocket(ws, binding, uncount)),
        (err: unknown) => {
          log('miner-socket-refused', { address, reason: `binding: ${String(err)}` });
          ws.terminate();
        },
      );
    });
  });

  return {
    close: () => {
      for (const socket of sockets.clients) socket.terminate();
      sockets.close();
    },
  };
}

function wrapSocket(ws: WebSocket, binding: Uint8Array, welcomed: () => void): IncomingConnection {
  // A socket that errs (an oversized or malformed frame) is closed by ws itself; 'close' follows.
  ws.on('error', (err) => log('miner-socket-error', { error: err.message }));
  return {
    id: `ws_${randomUUID()}`,
    transport: 'websocket',
    channelBinding: binding,
    pipe: {
      send: (frame) => ws.send(frame, { binary: true }),
      bufferedBytes: () => ws.bufferedAmount,
    },
    onData: (listener) => ws.on('message', (data: RawData) => listener(rawBytes(data))),
    onClose: (listener) => ws.on('close', () => listener()),
    close: () => ws.close(1000),
    welcomed,
  };
}

/** ws hands a message as one Buffer unless told otherwise; fragments are joined as it would. */
function rawBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
