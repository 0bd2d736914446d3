// The self-hosted PeerServer, and the coordinator as a PeerJS peer in Node over node-datachannel's WebRTC.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Express } from 'express';
import { ExpressPeerServer } from 'peer';
import type { DataConnection, Peer as PeerType } from 'peerjs';
import { WebSocketServer } from 'ws';
import { sdpFingerprint } from '../protocol/dtls-fingerprint.ts';
import { log } from './log.ts';
import type { IncomingConnection } from './miner-connections.ts';
import { guardSignalling, Handshakes } from './signalling.ts';
import { UpgradeRoutes } from './upgrades.ts';

export type { IncomingConnection } from './miner-connections.ts';

export const PEER_PATH = '/peerjs';
/** Signalling messages are JSON of an SDP (about 1 KB) or a candidate; anything near this is not signalling. */
const MAX_SIGNAL_BYTES = 64 * 1024;
/** A miner gives up connecting after 20 s; a connection still not open after this is closed, whoever made it. */
const CONNECTION_OPEN_DEADLINE_MS = 30_000;

export interface PeerEndpoint {
  peerId: string;
  peerKey: string;
  close(): void;
}


/** What mounting the PeerServer gives the coordinator's own peer. */
export interface MountedPeerServer {
  /** The secret that registers the reserved peer id. */
  token: string;
  /** The network address a registered peer id connected from, while it is connected. */
  addressOf(peerId: string): string | undefined;
  /** Closes every signalling socket: upgraded sockets are the HTTP server's no longer, and would hold its close. */
  close(): void;
}

/**
 * Mounts the PeerServer on the coordinator's HTTP server, so one port serves pages, API and signalling.
 * `coordinatorPeerId` is reserved: the PeerServer registers it only for a socket that brings the returned token,
 * a secret made here that never leaves this process, so nobody else can hold the id while the coordinator's peer
 * is away (at start, or reconnecting) and be reached by miners in its place.
 */
export function mountPeerServer(app: Express, httpServer: Server, peerKey: string, coordinatorPeerId: string): MountedPeerServer {
  const token = randomBytes(32).toString('hex');
  const addresses = new Map<string, string>();
  let sockets: WebSocketServer | undefined;
  const peerServer = ExpressPeerServer(httpServer, {
    path: '/',
    key: peerKey,
    allow_discovery: false,
    alive_timeout: 20_000,
    // The PeerServer's typed option (IConfig.createWebSocketServer) for making its WebSocket server: here the
    // reservation is checked before the upgrade, and frames are capped.
    createWebSocketServer: (options) => {
      // Detached from the HTTP server and reached through its upgrade router (upgrades.ts), so that the miners'
      // socket can share the server.
      const { server: _server, path, ...rest } = options;
      const signalling = new WebSocketServer({
        ...rest,
        noServer: true,
        maxPayload: MAX_SIGNAL_BYTES,
        verifyClient: ({ req }, done) => {
          const verdict = checkRegistration(req, coordinatorPeerId, token);
          const id = new URL(req.url ?? '', 'https://peerjs').searchParams.get('id');
          // The first socket to hold an id names its address; a second one for the same id is refused as taken.
          if (verdict[0] && id && req.socket.remoteAddress && !addresses.has(id)) addresses.set(id, req.socket.remoteAddress);
          done(...verdict);
        },
      });
      UpgradeRoutes.of(httpServer).route(path ?? PEER_PATH, (req, socket, head) =>
        signalling.handleUpgrade(req, socket, head, (ws) => signalling.emit('connection', ws, req)));
      sockets = signalling;
      return signalling;
    },
  });
  peerServer.on('disconnect', (client) => addresses.delete(client.getId()));
  app.use(PEER_PATH, peerServer);
  return {
    token,
    addressOf: (peerId) => addresses.get(peerId),
    close: () => {
      for (const socket of sockets?.clients ?? []) socket.terminate();
      sockets?.close();
    },
  };
}

/** Whether a PeerServer socket may open: [true], or [false, HTTP status, reason]. */
function checkRegistration(req: IncomingMessage, reservedId: string, token: string): [boolean, number?, string?] {
  // The PeerServer reads its parameters as below, and takes the last of repeated ones: one of each leaves no
  // second reading to disagree with this one.
  const params = new URL(req.url ?? '', 'https://peerjs').searchParams;
  if (['id', 'token', 'key'].some((name) => params.getAll(name).length > 1)) return [false, 400, 'repeated parameter'];
  if (params.get('id') !== reservedId) return [true];
  const given = Buffer.from(params.get('token') ?? '');
  if (given.length === token.length && timingSafeEqual(given, Buffer.from(token))) return [true];
  log('peer-id-refused', { peer: reservedId, address: req.socket.remoteAddress });
  return [false, 403, 'this peer id is reserved for the coordinator'];
}

let peerClass: Promise<typeof PeerType> | undefined;

/** PeerJS reads the WebRTC globals when it loads, so they are installed first and the import is deferred. */
export function loadPeerJs(): Promise<typeof PeerType> {
  peerClass ??= (async () => {
    const webrtc = await import('node-datachannel/polyfill');
    const { WebSocket } = await import('ws');
    const g = globalThis as Record<string, unknown>;
    g.RTCPeerConnection ??= webrtc.RTCPeerConnection;
    g.RTCSessionDescription ??= webrtc.RTCSessionDescription;
    g.RTCIceCandidate ??= webrtc.RTCIceCandidate;
    // PeerJS listens for close, not error; in Node an unheard 'error' event would crash the process.
    g.WebSocket ??= class QuietWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        this.on('error', () => {});
      }
    };
    const module = await import('peerjs');
    // peerjs ships CommonJS for Node: its named exports sit on the default export.
    const ns = module as unknown as { default?: { Peer: typeof PeerType }; Peer?: typeof PeerType };
    const Peer = ns.default?.Peer ?? ns.Peer;
    if (!Peer) throw new Error('peerjs did not export Peer');
    return Peer;
  })();
  return peerClass;
}

/**
 * Joins the PeerServer as `peerId` (with the token that reserves it) and hands every raw, reliable data connection to
 * `onConnection`. Signalling is validated before PeerJS sees it (signalling.ts), so a forged message costs at most
 * the connection it names.
 */
export async function startCoordinatorPeer(
  port: number,
  peerId: string,
  peerKey: string,
  peerToken: string,
  onConnection: (connection: IncomingConnection) => void,
  onRejected: (reason: string) => void,
  addressOf: (peerId: string) => string | undefined = () => undefined,
  handshakes = new Handshakes(),
): Promise<PeerEndpoint> {
  const Peer = await loadPeerJs();
  const peer = new Peer(peerId, {
    host: '127.0.0.1',
    port,
    path: PEER_PATH,
    key: peerKey,
    token: peerToken,
    secure: false,
    config: { iceServers: [] },
    debug: 0,
  });
  guardSignalling(peer, addressOf, handshakes);
  await new Promise<void>((resolve, reject) => {
    peer.once('open', () => resolve());
    peer.once('error', reject);
  });
  peer.on('error', (err) => onRejected(`peer error: ${err.type}: ${err.message}`));
  // The PeerServer may restart; PeerJS does not reconnect by itself. (After its first open, PeerJS never destroys
  // the peer on its own: errors of the peer disconnect it, and this registers it again, with the same token.)
  peer.on('disconnected', () => {
    setTimeout(() => {
      if (!peer.destroyed) peer.reconnect();
    }, 1_000);
  });
  peer.on('connection', (conn: DataConnection) => {
    // Offers that reach here are raw and reliable (signalling.ts); one that never opens is closed.
    const deadline = setTimeout(() => {
      onRejected(`connection ${conn.connectionId} from ${conn.peer} not open after ${CONNECTION_OPEN_DEADLINE_MS / 1000} s`);
      conn.close();
    }, CONNECTION_OPEN_DEADLINE_MS);
    deadline.unref();
    conn.on('open', () => {
      clearTimeout(deadline);
      // The challenge proves the channel ends here by signing this; without it there is nothing to prove.
      const fingerprint = sdpFingerprint(conn.peerConnection?.localDescription?.sdp ?? '');
      if (!fingerprint.ok) {
        onRejected(`connection ${conn.connectionId} from ${conn.peer}: our own SDP ${fingerprint.problem}`);
        conn.close();
        return;
      }
      onConnection(wrap(conn, fingerprint.value));
    });
  });
  return { peerId, peerKey, close: () => peer.destroy() };
}

function wrap(conn: DataConnection, dtlsFingerprint: Uint8Array): IncomingConnection {
  return {
    id: conn.connectionId,
    transport: 'webrtc',
    channelBinding: dtlsFingerprint,
    pipe: {
      send: (frame) => void conn.send(frame),
      // PeerJS keeps its own queue (in messages) above the channel's buffer.
      bufferedBytes: () => (conn.dataChannel?.bufferedAmount ?? 0) + queuedMessages(conn) * 65_536,
    },
    onData: (listener) => conn.on('data', (data) => listener(data as ArrayBuffer | Uint8Array)),
    onClose: (listener) => {
      conn.on('close', listener);
      conn.on('error', listener);
    },
    close: () => conn.close(),
  };
}

/** PeerJS's own send queue, in messages: public on the object but missing from its types. */
function queuedMessages(conn: DataConnection): number {
  const size = (conn as unknown as { bufferSize?: unknown }).bufferSize;
  return typeof size === 'number' ? size : 0;
}
