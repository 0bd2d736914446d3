// A miner's link to one coordinator: a PeerJS data channel (or a WebSocket when WebRTC cannot connect), framed
// messages, an inbox, and a heartbeat.
import type { DataConnection, Peer as PeerType, PeerOptions } from 'peerjs';
import * as v from 'valibot';
import { FramedChannel, type BytePipe } from '../protocol/channel.ts';
import { encodeMessage, parseCoordinatorMessage } from '../protocol/codec.ts';
import type { CoordinatorMessage, MinerMessageInput } from '../protocol/messages.ts';
import { fingerprintText, sdpFingerprint } from '../protocol/dtls-fingerprint.ts';
import { SilenceClock } from '../protocol/heartbeat.ts';
import { socketBinding } from '../protocol/socket-binding.ts';
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
  /** Where the WebSocket fallback is served; absent at a coordinator that has none. */
  minerSocket: v.optional(v.object({ path: v.pipe(v.string(), v.startsWith('/'), v.maxLength(256)) })),
});
export type CoordinatorConfig = v.InferOutput<typeof CoordinatorConfig>;

const CONNECT_TIMEOUT_MS = 20_000;
/**
 * In 'auto', a data channel not open with the challenge after this long gives way to the WebSocket. An honest
 * loopback handshake takes under a second, and one on a loaded 2-core machine a few (bench/load.ts).
 */
export const DATA_CHANNEL_WAIT_MS = 8_000;

/** How a miner reaches its coordinator: 'auto' tries the data channel first and falls back to the WebSocket. */
export type TransportChoice = 'auto' | 'webrtc' | 'websocket';
export type Transport = 'webrtc' | 'websocket';

/** The browser's WebSocket class, or one like it (the `ws` package's, in Node). */
export type WebSocketClass = new (url: string) => WebSocket;

export interface LinkOptions {
  transport?: TransportChoice;
  /** Defaults to the global WebSocket. */
  WebSocket?: WebSocketClass;
}

export class LinkClosedError extends Error {}

/** The far end did answer, but is not the coordinator the origin names: no other transport is tried. */
export class ChallengeRefusedError extends Error {}

/** What a transport gives the link: a byte pipe, its incoming frames, and its end. */
interface Carrier {
  transport: Transport;
  pipe: BytePipe;
  onData(listener: (data: ArrayBuffer | Uint8Array) => void): void;
  /** Listens, while the link is being set up, for the carrier failing or closing; the argument says why. */
  onFailure(listener: (reason: string) => void): void;
  /** Listens, once the link is up, for the carrier closing. */
  onClose(listener: (reason: string) => void): void;
  /** What the coordinator's challenge must be signed over on this carrier, with the words to name it in a refusal. */
  binding(): Promise<{ value: Uint8Array; name: string } | { problem: string }>;
  /** What the coordinator signs its challenge over here, for a refusal's sentence. */
  signedOver: string;
  close(): void;
}

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
  /** Why the data channel was given up for the WebSocket, when it was. */
  fallbackReason = '';

  private constructor(
    private readonly carrier: Carrier,
    readonly challenge: MessageOf<'challenge'>,
    private readonly channel: FramedChannel,
  ) {}

  /** What carries this link. */
  get transport(): Transport {
    return this.carrier.transport;
  }

  /**
   * Fetches the coordinator's config, opens a data channel (or, as `options.transport` says, its WebSocket) to it and
   * waits for its challenge.
   */
  static async open(baseUrl: string, Peer: typeof PeerType, options: LinkOptions = {}): Promise<CoordinatorLink> {
    const res = await fetch(new URL('api/config', baseUrl));
    if (!res.ok) throw new Error(`coordinator config: HTTP ${res.status}`);
    const parsed = v.safeParse(CoordinatorConfig, await res.json());
    if (!parsed.success) throw new Error(`coordinator config: ${parsed.issues[0].message}`);
    const config = parsed.output;
    const choice = options.transport ?? 'webrtc';
    let fallbackReason = '';
    if (choice !== 'websocket') {
      try {
        return await CoordinatorLink.openDataChannel(baseUrl, config, Peer, choice === 'auto' ? DATA_CHANNEL_WAIT_MS : CONNECT_TIMEOUT_MS);
      } catch (err) {
        // A far end that answered and failed the challenge is refused, not routed around.
        if (choice === 'webrtc' || err instanceof ChallengeRefusedError || !config.minerSocket) throw err;
        fallbackReason = (err as Error).message;
      }
    }
    if (!config.minerSocket) throw new Error('the coordinator serves no WebSocket for miners');
    const link = await CoordinatorLink.openSocket(baseUrl, config.minerSocket.path, config, options.WebSocket ?? globalThis.WebSocket);
    link.fallbackReason = fallbackReason;
    return link;
  }

  private static async openDataChannel(baseUrl: string, config: CoordinatorConfig, Peer: typeof PeerType, timeoutMs: number): Promise<CoordinatorLink> {
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
      return await withTimeout(CoordinatorLink.peerHandshake(peer, config), timeoutMs, 'connecting to the coordinator');
    } catch (err) {
      peer.destroy();
      throw err;
    }
  }

  private static async peerHandshake(peer: PeerType, config: CoordinatorConfig): Promise<CoordinatorLink> {
    await new Promise<void>((resolve, reject) => {
      peer.once('open', () => resolve());
      peer.once('error', (err) => reject(new Error(`PeerServer: ${err.type}: ${err.message}`)));
    });
    const conn = peer.connect(config.coordinatorPeerId, { serialization: 'raw', reliable: true });
    const carrier: Carrier = {
      transport: 'webrtc',
      pipe: { send: (frame) => void conn.send(frame), bufferedBytes: () => conn.dataChannel?.bufferedAmount ?? 0 },
      onData: (listener) => conn.on('data', (data) => listener(data as ArrayBuffer)),
      onFailure: (listener) => {
        conn.once('error', (err) => listener(`data channel: ${err.message}`));
        peer.once('error', (err) => listener(`${err.type}: ${err.message}`));
      },
      onClose: (listener) => conn.on('close', () => listener('the data channel closed')),
      // Anyone can copy the key into a challenge; only the coordinator can sign, with it, the certificate that our own
      // WebRTC stack authenticated at the far end of this channel. A relay or a squatter presents a certificate of its own.
      binding: async () => {
        const remote = sdpFingerprint(conn.peerConnection?.remoteDescription?.sdp ?? '');
        if (!remote.ok) return { problem: `refused the coordinator's data channel: its SDP ${remote.problem}` };
        return { value: remote.value, name: `this data channel's certificate (sha-256 ${fingerprintText(remote.value).slice(0, 23)}…)` };
      },
      signedOver: "its data channel's certificate",
      close: () => {
        conn.close();
        peer.destroy();
      },
    };
    const link = await CoordinatorLink.handshake(carrier, config);
    peer.on('error', (err) => link.protocolErrors.push(`peer: ${err.type}: ${err.message}`));
    peer.on('disconnected', () => {
      // Losing the PeerServer does not end an open data channel; reconnect signalling quietly.
      setTimeout(() => {
        if (!peer.destroyed && !link.closed) peer.reconnect();
      }, 1_000);
    });
    return link;
  }

  private static async openSocket(baseUrl: string, path: string, config: CoordinatorConfig, Socket: WebSocketClass | undefined): Promise<CoordinatorLink> {
    if (!Socket) throw new Error('this browser has no WebSocket');
    const url = new URL(path, baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new Socket(url.href);
    ws.binaryType = 'arraybuffer';
    const closeReason = (event: CloseEvent) => `the WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`;
    const carrier: Carrier = {
      transport: 'websocket',
      // Frames are made in their own ArrayBuffer (framing.ts), never a shared one.
      pipe: { send: (frame) => ws.send(frame as Uint8Array<ArrayBuffer>), bufferedBytes: () => ws.bufferedAmount },
      onData: (listener) => ws.addEventListener('message', (event: MessageEvent) => {
        // A text message is no frame: handed on as bytes, the framing refuses it.
        listener(typeof event.data === 'string' ? new TextEncoder().encode(event.data) : (event.data as ArrayBuffer));
      }),
      onFailure: (listener) => {
        ws.addEventListener('error', () => listener('the WebSocket failed'));
        ws.addEventListener('close', (event) => listener(closeReason(event)));
      },
      onClose: (listener) => ws.addEventListener('close', (event) => listener(closeReason(event))),
      binding: async () => ({ value: await socketBinding(url.host), name: `the host of this socket (${url.host})` }),
      signedOver: 'the host of its socket',
      close: () => ws.close(),
    };
    try {
      return await withTimeout(CoordinatorLink.handshake(carrier, config), CONNECT_TIMEOUT_MS, "connecting to the coordinator's WebSocket");
    } catch (err) {
      ws.close();
      throw err;
    }
  }

  /** Waits for the coordinator's challenge on a carrier and checks that the coordinator the origin names signed it. */
  private static async handshake(carrier: Carrier, config: CoordinatorConfig): Promise<CoordinatorLink> {
    // The coordinator speaks first (its challenge), which also avoids acting before our side is open.
    const first: Message[] = [];
    let firstProblem = '';
    let link: CoordinatorLink | undefined;
    let wakeFirst: (() => void) | undefined;
    const channel = new FramedChannel(
      carrier.pipe,
      (bytes) => {
        if (link) return link.deliver(bytes);
        const parsed = parseCoordinatorMessage(bytes);
        if (parsed.ok) first.push(parsed.value);
        else firstProblem ||= ` (${parsed.error.code}: ${parsed.error.message})`;
        wakeFirst?.();
      },
      (error) => link?.protocolErrors.push(`${error.code}: ${error.message}`),
    );
    carrier.onData((data) => {
      link?.silence.heard();
      channel.receive(data);
    });
    await new Promise<void>((resolve, reject) => {
      wakeFirst = resolve;
      carrier.onFailure((reason) => reject(new Error(reason)));
    });
    const challenge = first.shift();
    if (challenge?.type !== 'challenge') throw new ChallengeRefusedError(`the coordinator did not open with a challenge${firstProblem}`);
    // Anyone holding the peer id at the PeerServer could answer; only the coordinator's own key is accepted, and the
    // mining loop then takes receipts signed by this key only.
    const challengeKey = toHex(challenge.coordinatorKey);
    if (challengeKey !== config.coordinatorKey) {
      throw new ChallengeRefusedError(`refused a challenge under key ${challengeKey.slice(0, 16)}…: the coordinator's origin serves key ${config.coordinatorKey.slice(0, 16)}…`);
    }
    const binding = await carrier.binding();
    if ('problem' in binding) throw new ChallengeRefusedError(binding.problem);
    if (!challenge.signature) throw new ChallengeRefusedError(`refused an unsigned challenge: the coordinator signs its challenge over ${carrier.signedOver}`);
    if (!(await verifyChallenge(challenge, binding.value))) {
      throw new ChallengeRefusedError(`refused a challenge whose signature is not the coordinator's over ${binding.name}: the channel ends at someone else`);
    }
    link = new CoordinatorLink(carrier, challenge, channel);
    link.startHeartbeat(challenge.heartbeatMs);
    carrier.onClose((reason) => link?.shutdown(reason));
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

  /** Throws LinkClosedError, with why, once the link has closed: for a loop with nothing to wait on. */
  throwIfClosed(): void {
    if (this.closedReason !== undefined) throw new LinkClosedError(this.closedReason);
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  close(reason = 'closed by the miner'): void {
    this.shutdown(reason);
  }

  private shutdown(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearInterval(this.heartbeat);
    this.channel.close();
    this.carrier.close();
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
