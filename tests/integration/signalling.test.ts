// Forged and random signalling sent through the real PeerServer to the coordinator's peer id, as anyone who reaches
// the PeerServer can: the coordinator process must refuse it, log it, and keep serving miners.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPeerJs, PEER_PATH } from '../../src/coordinator/peers.ts';
import { freePort } from '../helpers/coordinator-process.ts';
import { startLoggedCoordinator, type LogEvent, type LoggedCoordinator } from '../helpers/logged-coordinator.ts';
import { mulberry32, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchSignallingConfig, SignallingClient, type SignallingConfig } from '../helpers/signalling-client.ts';
import { submitGemm, waitForJob } from '../helpers/stack.ts';

const FUZZ_MESSAGES = 600;
const FUZZ_BATCH = 100;

/** A real offer and candidate from node-datachannel, the material the fuzzer mutates. */
async function realOffer(): Promise<{ sdp: string; candidate: RTCIceCandidateInit }> {
  const { RTCPeerConnection } = await import('node-datachannel/polyfill');
  const pc = new RTCPeerConnection({ iceServers: [] });
  try {
    pc.createDataChannel('probe');
    const candidate = new Promise<RTCIceCandidateInit>((resolve) => {
      pc.onicecandidate = (e) => {
        if (e.candidate?.candidate) resolve(e.candidate.toJSON());
      };
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    return { sdp: offer.sdp ?? '', candidate: await candidate };
  } finally {
    pc.close();
  }
}

/** One random signalling message for the coordinator: a real message's shape with a part dropped, retyped or made absurd. */
function fuzzSignal(next: () => number, dst: string, real: { sdp: string; candidate: RTCIceCandidateInit }, index: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  // A few messages in a row name the same connection, so that candidates meet the offer they belong to.
  const connectionId = `dc_fuzz${Math.floor(index / 4)}`;
  const garbageSdp = () => {
    const at = Math.floor(next() * real.sdp.length);
    return pick([
      real.sdp.slice(0, at),
      real.sdp.slice(0, at) + String.fromCharCode(...Array.from({ length: 40 }, () => Math.floor(next() * 0x3000))) + real.sdp.slice(at),
      real.sdp.replace('webrtc-datachannel', pick(['audio', '', 'x'.repeat(300)])).replace('m=application', pick(['m=audio', 'm=video', 'm='])),
      real.sdp.replace(/a=fingerprint:[^\r]*/, 'a=fingerprint:sha-256 00'),
      real.sdp.split('\r\n').reverse().join('\r\n'),
      'v=0\r\n'.repeat(2_000),
    ]);
  };
  const weird = (): unknown =>
    pick<unknown>([
      null, -1, 0, 1e308, '', 'x'.repeat(5_000), [], {}, true, 'constructor', '__proto__', 'toString', 'hasOwnProperty',
      'media', 'data', 'raw', 'binary', 'json', 'default', { connectionId: 'dc_x' }, [[[[[[[[[[[]]]]]]]]]]], garbageSdp(),
    ]);
  const offer = { type: 'OFFER', dst, payload: { sdp: { type: 'offer', sdp: real.sdp }, type: 'data', connectionId, label: connectionId, reliable: true, serialization: 'raw' } };
  const candidate = { type: 'CANDIDATE', dst, payload: { candidate: { ...real.candidate }, type: 'data', connectionId } };
  // Weighted towards the messages PeerJS reads a payload from; LEAVE and EXPIRE carry none worth mutating.
  const templates: Record<string, unknown>[] = [
    offer, offer, offer, offer, candidate, candidate, candidate,
    { type: 'ANSWER', dst, payload: { sdp: { type: 'answer', sdp: real.sdp }, type: 'data', connectionId } },
    { type: pick(['LEAVE', 'EXPIRE']), dst, payload: { connectionId } },
    { type: pick(['OPEN', 'ERROR', 'ID-TAKEN', 'INVALID-KEY', 'HEARTBEAT', 'offer', '']), dst, payload: { msg: weird() } },
  ];
  const message = structuredClone(pick(templates));
  const payload = (message.payload ?? {}) as Record<string, unknown>;
  switch (Math.floor(next() * 5)) {
    case 0:
      message.payload = weird();
      break;
    case 1:
      delete payload[pick(Object.keys(payload))];
      break;
    case 2:
      payload[pick(Object.keys(payload))] = weird();
      break;
    case 3: {
      const inner = (payload.sdp ?? payload.candidate ?? payload) as Record<string, unknown>;
      inner[pick(Object.keys(inner))] = next() < 0.5 ? weird() : garbageSdp();
      break;
    }
    default:
      message.type = pick(['OFFER', 'CANDIDATE', 'ANSWER', 'LEAVE', 'EXPIRE', 'offer', '', 'constructor']);
  }
  return message;
}

describe('signalling sent to the coordinator through its PeerServer', () => {
  let dataDir: string;
  let coordinator: LoggedCoordinator;
  let config: SignallingConfig;
  let attackers = 0;

  /** A raw client of the PeerServer under a fresh peer id, as an attacker would open one. */
  const attacker = async () => {
    const id = `attacker-${++attackers}`;
    const registration = await SignallingClient.register(coordinator.url, config, id, `token-${attackers}`);
    if (registration.outcome !== 'open') throw new Error(`attacker not registered: ${registration.reason}`);
    return { id, client: registration.client };
  };
  const refusedFrom = (id: string) => (e: LogEvent) => e.event === 'signalling-refused' && e.from === id;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ergon-signalling-'));
    coordinator = await startLoggedCoordinator(dataDir, await freePort());
    config = await fetchSignallingConfig(coordinator.url);
  });
  afterAll(async () => {
    await coordinator?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it.each([
    ['payload null', null],
    ['an unknown serialization', { serialization: 'carrier-pigeon' }],
    ['serialization "constructor"', { serialization: 'constructor' }],
    ['serialization "__proto__"', { serialization: '__proto__' }],
    ['a media call', { type: 'media' }],
  ])('refuses and logs an OFFER with %s, and keeps serving miners', async (_name, change) => {
    const { sdp } = await realOffer();
    const payload = change === null ? null : { sdp: { type: 'offer', sdp }, type: 'data', connectionId: 'dc_forged1', label: 'dc_forged1', reliable: true, serialization: 'raw', ...change };
    const { id, client } = await attacker();
    client.send({ type: 'OFFER', dst: config.coordinatorPeerId, payload });

    const refused = await coordinator.waitFor(refusedFrom(id));
    expect(refused.type).toBe('OFFER');
    expect(String(refused.reason)).not.toBe('');
    const miner = await ScriptedMiner.connect(coordinator.url);
    await miner.hello();
    miner.close();
    expect(coordinator.exitCode()).toBeNull();
    client.close();
  });

  it('survives one peer id that opens three connections and leaves at once, and still serves miners', async () => {
    // PeerJS closed a leaving peer's connections skipping every second one; when a skipped one's data channel came,
    // PeerJS threw inside its WebRTC callback and the coordinator process exited with code 1.
    const Peer = await loadPeerJs();
    const peer = new Peer({ host: '127.0.0.1', port: Number(new URL(coordinator.url).port), path: PEER_PATH, key: config.peer.key, secure: false, config: { iceServers: [] }, debug: 0 });
    try {
      await new Promise((resolve) => peer.once('open', resolve));
      peer.on('error', () => {});
      const connections = [1, 2, 3].map(() => peer.connect(config.coordinatorPeerId, { serialization: 'raw', reliable: true }));
      // The offers go out once each connection has made its own; the LEAVE follows them on the same socket.
      await new Promise((resolve) => setTimeout(resolve, 50));
      (peer as unknown as { socket: { send(message: unknown): void } }).socket.send({ type: 'LEAVE', dst: config.coordinatorPeerId });
      // A connection PeerJS forgot completes its handshake (here within a second) and its data channel then reaches
      // the coordinator; the ones it closed never connect. Wait for one to connect, or 10 s.
      const connected = () => connections.some((c) => c.peerConnection?.connectionState === 'connected');
      for (let waited = 0; !connected() && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(coordinator.exitCode()).toBeNull();
    } finally {
      peer.destroy();
    }
    const miner = await ScriptedMiner.connect(coordinator.url);
    await miner.hello();
    miner.close();
    expect(coordinator.exitCode()).toBeNull();
  });

  it(`takes ${FUZZ_MESSAGES} random signalling messages, refusing and logging the malformed, while an honest miner is paid`, async () => {
    const real = await realOffer();
    const job = await submitGemm(coordinator.url, 512, 512, 16, randomMatrix(512 * 16, 91), randomMatrix(16 * 512, 92));
    const honest = await ScriptedMiner.connect(coordinator.url);
    await honest.hello();
    let stop = false;
    const mining = honest.mineHonestly(() => stop);

    const next = mulberry32(2027);
    const { id, client } = await attacker();
    for (let sent = 0; sent < FUZZ_MESSAGES; sent += FUZZ_BATCH) {
      for (let i = sent; i < sent + FUZZ_BATCH; i++) client.send(fuzzSignal(next, config.coordinatorPeerId, real, i));
      // The coordinator reads its PeerServer socket in order: once this is refused, the batch before it was handled.
      const marker = `dc_marker${sent}`;
      client.send({ type: 'ANSWER', dst: config.coordinatorPeerId, payload: { sdp: { type: 'answer', sdp: real.sdp }, type: 'data', connectionId: marker } });
      await coordinator.waitFor((e) => refusedFrom(id)(e) && e.connection === marker);
      expect(coordinator.exitCode()).toBeNull();
    }
    const refusals = coordinator.events.filter(refusedFrom(id));
    // Most mutations break the message; the few that keep it well formed are offers PeerJS may act on.
    expect(refusals.length).toBeGreaterThan(FUZZ_MESSAGES / 2);
    for (const refusal of refusals) expect(String(refusal.reason)).not.toBe('');
    // PeerJS can still fail on a well-formed message (a candidate whose connection a LEAVE closed meanwhile): such a
    // failure is logged with the connection it cost, which was the fuzzer's own.
    for (const error of coordinator.events.filter((e) => e.event === 'signalling-error')) expect(error.connection).toMatch(/^dc_fuzz/);

    // The honest session, still connected after all that, is served a job submitted now; a new miner is welcomed.
    await waitForJob(coordinator.url, job.id);
    const after = await submitGemm(coordinator.url, 512, 512, 16, randomMatrix(512 * 16, 93), randomMatrix(16 * 512, 94));
    await waitForJob(coordinator.url, after.id);
    stop = true;
    expect((await mining).length).toBe(job.unitsTotal + after.unitsTotal);
    honest.close();
    const late = await ScriptedMiner.connect(coordinator.url);
    await late.hello();
    late.close();
    expect(coordinator.exitCode()).toBeNull();
    client.close();
  });
});

describe('the coordinator with signalling sockets open', () => {
  it('stops on SIGTERM while a peer is still connected to its PeerServer', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-sigterm-'));
    try {
      const coordinator = await startLoggedCoordinator(dataDir, await freePort());
      const registration = await SignallingClient.register(coordinator.url, await fetchSignallingConfig(coordinator.url), 'lingering', 'token');
      expect(registration.outcome).toBe('open');
      // Upgraded sockets are not the HTTP server's to close: before, this waited for the peer to leave, forever.
      await coordinator.stop();
      expect(coordinator.child.exitCode).toBe(0);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('offers flooded at the coordinator through its PeerServer', () => {
  const PER_ADDRESS = 12;
  let dataDir: string;
  let coordinator: LoggedCoordinator;
  let config: SignallingConfig;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ergon-offers-'));
    // Every client here is 127.0.0.1: a low per-address bound lets one test reach each bound in turn.
    coordinator = await startLoggedCoordinator(dataDir, await freePort(), 30_000, { ERGON_HANDSHAKES_PER_ADDRESS: String(PER_ADDRESS) });
    config = await fetchSignallingConfig(coordinator.url);
  });
  afterAll(async () => {
    await coordinator?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The coordinator process's open file descriptors: each WebRTC connection it sets up holds a UDP socket. */
  const openFiles = () => readdirSync(`/proc/${coordinator.child.pid}/fd`).length;

  it('sets up a bounded number of connections per peer id and per address, refusing and logging the rest, and frees them when the peers leave', async () => {
    const { sdp } = await realOffer();
    const offer = (connectionId: string) => ({
      type: 'OFFER', dst: config.coordinatorPeerId,
      payload: { sdp: { type: 'offer', sdp }, type: 'data', connectionId, label: connectionId, reliable: true, serialization: 'raw' },
    });
    const filesBefore = openFiles();
    const clients: { id: string; client: SignallingClient }[] = [];
    /** Sends `count` offers from a fresh peer id and waits until the coordinator has read them all. */
    const flood = async (count: number) => {
      const id = `flooder-${clients.length + 1}`;
      const registration = await SignallingClient.register(coordinator.url, config, id, `token-${id}`);
      if (registration.outcome !== 'open') throw new Error(`flooder not registered: ${registration.reason}`);
      clients.push({ id, client: registration.client });
      for (let i = 0; i < count; i++) registration.client.send(offer(`dc_${id.replace('-', '')}x${i}`));
      const marker = `dc_marker${id.replace('-', '')}`;
      registration.client.send({ type: 'ANSWER', dst: config.coordinatorPeerId, payload: { sdp: { type: 'answer', sdp }, type: 'data', connectionId: marker } });
      await coordinator.waitFor((e) => e.event === 'signalling-refused' && e.from === id && e.connection === marker);
      return coordinator.events.filter((e) => e.event === 'signalling-refused' && e.from === id && e.connection !== marker).map((e) => String(e.reason));
    };

    // One peer id: 4 handshakes at once, the other 6 offers refused with the reason.
    const first = await flood(10);
    expect(first).toHaveLength(6);
    for (const reason of first) expect(reason).toMatch(/this peer has 4 connections being set up/);
    // More ids from the same address: up to PER_ADDRESS in all, then the address is refused.
    expect(await flood(4)).toHaveLength(0);
    expect(await flood(4)).toHaveLength(0);
    const fourth = await flood(4);
    expect(fourth).toHaveLength(4);
    for (const reason of fourth) expect(reason).toMatch(/its address has 12 connections being set up/);
    // A thousand more offers from many ids: all refused, and the sockets they would have held never made (1,000
    // unbounded offers held 1,040 descriptors).
    for (let i = 0; i < 10; i++) expect(await flood(100)).toHaveLength(100);
    expect(openFiles() - filesBefore).toBeLessThan(3 * PER_ADDRESS + 20);
    expect(coordinator.exitCode()).toBeNull();

    // The flooders leave; their half-made connections go with them, and an honest miner from the same address connects.
    for (const { client } of clients) client.send({ type: 'LEAVE', dst: config.coordinatorPeerId });
    for (const { client } of clients) client.close();
    const miner = await ScriptedMiner.connect(coordinator.url);
    await miner.hello();
    miner.close();
    expect(coordinator.exitCode()).toBeNull();
  });
});
