// Validates what the PeerServer relays to the coordinator's PeerJS peer, before PeerJS acts on it.
//
// Anyone who reaches the PeerServer can send the coordinator's peer id any OFFER, ANSWER, CANDIDATE, LEAVE or EXPIRE
// with any payload; PeerJS trusts them (a null payload, or a serialization such as "constructor", throws inside its
// socket handler and stops the process). Only the shapes a miner's PeerJS sends get through, rebuilt from the schema.
import * as v from 'valibot';
import type { Peer } from 'peerjs';
import { log } from './log.ts';

/** A data-only offer is about 1 KB; this leaves room for a browser that lists its candidates in it. */
export const MAX_SDP_CHARS = 32_768;
/**
 * Candidates may come before their offer (PeerJS keeps such "lost messages" forever, unbounded): they are held here
 * for the time a miner has to connect, at most so many per connection and so many connections at once.
 */
const EARLY_CANDIDATE_MS = 30_000;
const MAX_EARLY_PER_CONNECTION = 32;
const MAX_EARLY_CONNECTIONS = 256;
/**
 * Each offer the coordinator takes makes a WebRTC connection with its own UDP socket, held until it opens or its
 * 30 s deadline closes it (peers.ts): 1,000 forged offers held 1,040 file descriptors and 20 MB (measured here), and
 * the process has 20,000. Connections being set up are bounded over all, per network address and per peer id. An
 * honest handshake takes under a second, and 200 at once already time out on these 2 cores (bench/load.ts).
 * A reverse proxy in front makes every miner one address: its operator raises ERGON_HANDSHAKES_PER_ADDRESS.
 */
export const MAX_HANDSHAKES = 256;
export const MAX_HANDSHAKES_PER_ADDRESS = 32;
export const MAX_HANDSHAKES_PER_PEER = 4;
/** A handshake still counted after this long is forgotten, whatever PeerJS reported: its connection is closed by then. */
const HANDSHAKE_HELD_MS = 40_000;

const PeerId = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
/** PeerJS names data connections "dc_" and a random token. */
const ConnectionId = v.pipe(v.string(), v.regex(/^dc_[A-Za-z0-9]{1,64}$/, 'a data connection id is dc_ and 1-64 letters or digits'));

const Offer = v.object({
  type: v.literal('OFFER'),
  src: PeerId,
  payload: v.object({
    type: v.literal('data', 'the coordinator takes data connections only'),
    connectionId: ConnectionId,
    serialization: v.literal('raw', 'the coordinator speaks raw serialization only'),
    reliable: v.literal(true, 'the coordinator takes reliable data channels only'),
    label: v.optional(v.pipe(v.string(), v.maxLength(256))),
    sdp: v.object({ type: v.literal('offer'), sdp: v.pipe(v.string(), v.maxLength(MAX_SDP_CHARS)) }),
  }),
});

const Candidate = v.object({
  type: v.literal('CANDIDATE'),
  src: PeerId,
  payload: v.object({
    type: v.literal('data'),
    connectionId: ConnectionId,
    candidate: v.object({
      candidate: v.pipe(v.string(), v.maxLength(1_024)),
      sdpMid: v.nullish(v.pipe(v.string(), v.maxLength(16))),
      sdpMLineIndex: v.nullish(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255))),
      usernameFragment: v.nullish(v.pipe(v.string(), v.maxLength(256))),
    }),
  }),
});

/** A peer left (it closes that peer's connections), or a message to an absent peer expired: neither reads a payload. */
const PeerGone = v.object({ type: v.picklist(['LEAVE', 'EXPIRE']), src: PeerId });

/** The PeerServer's own notices about our registration; it never relays these types, so they carry no src. */
const ServerNotice = v.union([
  v.strictObject({ type: v.literal('OPEN') }),
  v.strictObject({ type: v.picklist(['ERROR', 'ID-TAKEN', 'INVALID-KEY']), payload: v.object({ msg: v.pipe(v.string(), v.maxLength(1_024)) }) }),
]);

const SCHEMAS: Record<string, v.GenericSchema<unknown, Signal>> = {
  OFFER: Offer,
  CANDIDATE: Candidate,
  LEAVE: PeerGone,
  EXPIRE: PeerGone,
  OPEN: ServerNotice,
  ERROR: ServerNotice,
  'ID-TAKEN': ServerNotice,
  'INVALID-KEY': ServerNotice,
};

export type OfferSignal = v.InferOutput<typeof Offer>;
export type CandidateSignal = v.InferOutput<typeof Candidate>;
export type Signal = OfferSignal | CandidateSignal | v.InferOutput<typeof PeerGone> | v.InferOutput<typeof ServerNotice>;

export type ParsedSignal = { ok: true; value: Signal } | { ok: false; reason: string };

/** Turns a message from the PeerServer into one PeerJS may act on, or says why not. Never throws. */
export function parseSignal(message: unknown): ParsedSignal {
  if (typeof message !== 'object' || message === null) return { ok: false, reason: 'not an object' };
  const type = (message as { type?: unknown }).type;
  if (type === 'ANSWER') return { ok: false, reason: 'the coordinator never offers, so it takes no answer' };
  const schema = typeof type === 'string' && Object.hasOwn(SCHEMAS, type) ? SCHEMAS[type] : undefined;
  if (!schema) return { ok: false, reason: 'unknown message type' };
  const parsed = v.safeParse(schema, message);
  if (parsed.success) return { ok: true, value: parsed.output };
  const issue = parsed.issues[0];
  const path = v.getDotPath(issue);
  return { ok: false, reason: path ? `${path}: ${issue.message}` : issue.message };
}

/** Candidates whose offer has not come yet, bounded in count and time. */
export class EarlyCandidates {
  private readonly held = new Map<string, { sinceMs: number; candidates: CandidateSignal[] }>();

  /** Holds a candidate; false when the bounds say no. */
  hold(candidate: CandidateSignal, nowMs: number): boolean {
    for (const [key, entry] of this.held) {
      if (nowMs - entry.sinceMs > EARLY_CANDIDATE_MS) this.held.delete(key);
    }
    const key = connectionKey(candidate.src, candidate.payload.connectionId);
    const entry = this.held.get(key);
    if (entry) {
      if (entry.candidates.length >= MAX_EARLY_PER_CONNECTION) return false;
      entry.candidates.push(candidate);
      return true;
    }
    if (this.held.size >= MAX_EARLY_CONNECTIONS) return false;
    this.held.set(key, { sinceMs: nowMs, candidates: [candidate] });
    return true;
  }

  /** The candidates held for this connection, which are then forgotten. */
  take(src: string, connectionId: string): CandidateSignal[] {
    const key = connectionKey(src, connectionId);
    const entry = this.held.get(key);
    this.held.delete(key);
    return entry?.candidates ?? [];
  }
}

export interface HandshakeLimits {
  total: number;
  perAddress: number;
  perPeer: number;
}

export const DEFAULT_HANDSHAKE_LIMITS: HandshakeLimits = {
  total: MAX_HANDSHAKES,
  perAddress: MAX_HANDSHAKES_PER_ADDRESS,
  perPeer: MAX_HANDSHAKES_PER_PEER,
};

/**
 * Connections being set up, counted so that a flood of offers cannot hold the coordinator's sockets and memory.
 * A handshake counts until its connection opens or PeerJS lets it go (closed, failed, or its peer left): PeerJS
 * emits nothing for a connection closed before it opened, so each count asks `settingUp` whether it still is.
 */
export class Handshakes {
  private readonly open = new Map<string, { src: string; connectionId: string; address: string | undefined; sinceMs: number }>();

  constructor(private readonly limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS) {}

  /** Counts a new handshake, or says which bound refuses it. */
  admit(
    offer: { src: string; connectionId: string; address: string | undefined },
    nowMs: number,
    settingUp: (src: string, connectionId: string) => boolean,
  ): { ok: true } | { ok: false; reason: string } {
    for (const [key, entry] of this.open) {
      if (nowMs - entry.sinceMs > HANDSHAKE_HELD_MS || !settingUp(entry.src, entry.connectionId)) this.open.delete(key);
    }
    const { src, connectionId, address } = offer;
    const key = connectionKey(src, connectionId);
    if (this.open.has(key)) return { ok: false, reason: 'a second offer for a connection being set up' };
    if (this.open.size >= this.limits.total) return { ok: false, reason: `${this.open.size} connections are being set up, as many as the coordinator takes at once` };
    let fromPeer = 0;
    let fromAddress = 0;
    for (const entry of this.open.values()) {
      if (entry.src === src) fromPeer++;
      if (address !== undefined && entry.address === address) fromAddress++;
    }
    if (fromPeer >= this.limits.perPeer) return { ok: false, reason: `this peer has ${fromPeer} connections being set up, as many as one peer may` };
    if (fromAddress >= this.limits.perAddress) return { ok: false, reason: `its address has ${fromAddress} connections being set up, as many as one address may` };
    this.open.set(key, { src, connectionId, address, sinceMs: nowMs });
    return { ok: true };
  }
}

function connectionKey(src: string, connectionId: string): string {
  return `${src}\n${connectionId}`;
}

/**
 * Puts parseSignal in front of PeerJS's handling of the PeerServer's messages.
 *
 * The seam: PeerJS's socket listener calls `peer._handleMessage(message)` by name on every message, and that method
 * is the only reader of server messages, so replacing it on this instance sees everything first. It is not public API
 * (peerjs 1.5.5; checked when the peer is made, so an upgrade that renames it fails loudly, not open).
 *
 * Candidates go straight to their connection's `handleMessage`, as PeerJS itself would pass them, so that its promise
 * can be caught: PeerJS's candidate handler reads `connection.provider` after an await, and a connection closed
 * meanwhile (by a LEAVE, or a second OFFER with the same id) makes it reject with nobody listening, which stops Node.
 */
export function guardSignalling(
  peer: Peer,
  addressOf: (peerId: string) => string | undefined = () => undefined,
  handshakes = new Handshakes(),
): void {
  const inner = peer as unknown as { _handleMessage?: unknown; _cleanupPeer?: unknown };
  const original = inner._handleMessage;
  if (typeof original !== 'function') throw new Error('peerjs has no Peer._handleMessage to guard: check the signalling seam for this version');
  if (typeof inner._cleanupPeer !== 'function') throw new Error('peerjs has no Peer._cleanupPeer to replace: check the signalling seam for this version');
  // PeerJS closes a peer's connections (on its LEAVE, and on destroy) with a for-of over the very array each close()
  // splices itself out of, so every second one is skipped and dropped while its WebRTC connection lives on; when
  // that connection's data channel then arrives, PeerJS reads the connection it forgot and throws, and the process
  // exits. Three offers and a LEAVE from one peer id did it. Closing from a copy closes them all.
  inner._cleanupPeer = (peerId: string) => {
    const connections = (peer.connections as Record<string, { close(): void }[] | undefined>)[peerId] ?? [];
    for (const connection of [...connections]) connection.close();
  };
  const early = new EarlyCandidates();

  /** PeerJS failed on a message that passed the schema: the connection it names may be half made, so it goes, and nothing else. */
  const failed = (signal: Signal, err: unknown) => {
    const connectionId = 'payload' in signal && 'connectionId' in signal.payload ? signal.payload.connectionId : undefined;
    const src = 'src' in signal ? signal.src : undefined;
    log('signalling-error', { from: src, type: signal.type, connection: connectionId, error: String(err) });
    if (src && connectionId) peer.getConnection(src, connectionId)?.close();
  };
  const deliver = (signal: Signal) => {
    try {
      original.call(peer, signal);
    } catch (err) {
      failed(signal, err);
    }
  };
  /** A candidate for a connection PeerJS has set up is applied now; one for a connection still to come is held. */
  const candidate = (signal: CandidateSignal, raw: unknown) => {
    const connection = peer.getConnection(signal.src, signal.payload.connectionId);
    if (!connection?.peerConnection) {
      if (!early.hold(signal, Date.now())) refuse(raw, 'too many candidates before their offer');
      return;
    }
    // PeerJS's ServerMessage type is not exported; a CandidateSignal is the shape it reads.
    const message = signal as unknown as Parameters<typeof connection.handleMessage>[0];
    try {
      Promise.resolve(connection.handleMessage(message)).catch((err: unknown) => failed(signal, err));
    } catch (err) {
      failed(signal, err);
    }
  };

  /** A data connection PeerJS holds that has not opened yet. */
  const settingUp = (src: string, connectionId: string) => {
    const connection = peer.getConnection(src, connectionId);
    return connection !== null && connection !== undefined && !connection.open;
  };
  /** Counts the offer's handshake; false when a bound refuses it. */
  const admitOffer = (signal: OfferSignal, raw: unknown): boolean => {
    const offer = { src: signal.src, connectionId: signal.payload.connectionId, address: addressOf(signal.src) };
    const admitted = handshakes.admit(offer, Date.now(), settingUp);
    if (!admitted.ok) refuse(raw, admitted.reason);
    return admitted.ok;
  };

  inner._handleMessage = (message: unknown) => {
    const parsed = parseSignal(message);
    if (!parsed.ok) return refuse(message, parsed.reason);
    const signal = parsed.value;
    if (signal.type === 'CANDIDATE') return candidate(signal, message);
    if (signal.type === 'OFFER' && !admitOffer(signal, message)) return;
    deliver(signal);
    if (signal.type === 'OFFER') {
      for (const held of early.take(signal.src, signal.payload.connectionId)) candidate(held, held);
    }
  };
}

/** Logs a refused message with what can be read of who sent it and which connection it names. */
function refuse(message: unknown, reason: string): void {
  const m = (typeof message === 'object' && message !== null ? message : {}) as { type?: unknown; src?: unknown; payload?: unknown };
  const payload = (typeof m.payload === 'object' && m.payload !== null ? m.payload : {}) as { connectionId?: unknown };
  log('signalling-refused', { from: short(m.src), type: short(m.type), connection: short(payload.connectionId), reason });
}

function short(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 128) : undefined;
}
