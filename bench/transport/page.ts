// The transport bench's page: moves bytes to and from the bench server over a data channel, the miners' WebSocket
// and HTTP, and holds a real CoordinatorLink to a coordinator until it notices the coordinator is gone.
import { Peer } from 'peerjs';
import { CoordinatorLink, type TransportChoice } from '../../src/miner/coordinator-link.ts';
import { FramedChannel, type BytePipe } from '../../src/protocol/channel.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign } from '../../src/protocol/receipt.ts';
import { askDown, DOWN, LAST_DOWN, LAST_UP, READY, transfer, UP, UP_DONE } from './wire.ts';

interface Channel {
  channel: FramedChannel;
  next(): Promise<Uint8Array>;
  close(): void;
}

/** A FramedChannel over a pipe, with an inbox. */
function framed(pipe: BytePipe, subscribe: (feed: (data: ArrayBuffer | Uint8Array) => void) => void, close: () => void, highWaterBytes?: number): Channel {
  const inbox: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  const channel = new FramedChannel(pipe, (bytes) => {
    inbox.push(bytes);
    wake?.();
  }, (error) => console.error(`frame error: ${error.code}: ${error.message}`), highWaterBytes);
  subscribe((data) => channel.receive(data));
  return {
    channel,
    async next() {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return inbox.shift() as Uint8Array;
    },
    close,
  };
}

async function openDataChannel(peerPath: string, peerKey: string, peerId: string, highWaterBytes?: number): Promise<Channel> {
  const peer = new Peer({ host: location.hostname, port: Number(location.port), path: peerPath, key: peerKey, secure: false, config: { iceServers: [] }, debug: 0 });
  await new Promise<void>((resolve, reject) => {
    peer.once('open', () => resolve());
    peer.once('error', reject);
  });
  const conn = peer.connect(peerId, { serialization: 'raw', reliable: true });
  const result = framed(
    { send: (frame) => void conn.send(frame), bufferedBytes: () => conn.dataChannel?.bufferedAmount ?? 0 },
    (feed) => conn.on('data', (data) => feed(data as ArrayBuffer)),
    () => peer.destroy(),
    highWaterBytes,
  );
  if ((await result.next())[0] !== READY) throw new Error('the bench server did not open with READY');
  return result;
}

async function openSocket(path: string, highWaterBytes?: number): Promise<Channel> {
  const ws = new WebSocket(`ws://${location.host}${path}`);
  ws.binaryType = 'arraybuffer';
  const result = framed(
    // Frames are made in their own ArrayBuffer (framing.ts).
    { send: (frame) => ws.send(frame as Uint8Array<ArrayBuffer>), bufferedBytes: () => ws.bufferedAmount },
    (feed) => ws.addEventListener('message', (event: MessageEvent) => feed(event.data as ArrayBuffer)),
    () => ws.close(),
    highWaterBytes,
  );
  if ((await result.next())[0] !== READY) throw new Error('the bench server did not open with READY');
  return result;
}

export interface ThroughputSpec {
  transport: 'datachannel' | 'websocket' | 'http';
  totalBytes: number;
  /** Bytes uploaded: totalBytes, except over HTTP. */
  upBytes: number;
  messageBytes: number;
  /** The FramedChannel's high-water mark at both ends; undefined: the product's. */
  highWaterBytes?: number;
  peer: { path: string; key: string; id: string };
  socketPath: string;
}

/** Seconds to move totalBytes from the server to the page (down) and back (up). */
async function throughput(spec: ThroughputSpec): Promise<{ downSeconds: number; upSeconds: number }> {
  if (spec.transport === 'http') {
    const downStart = performance.now();
    const body = await (await fetch(`/blob/${spec.totalBytes}`)).arrayBuffer();
    const downSeconds = (performance.now() - downStart) / 1000;
    if (body.byteLength !== spec.totalBytes) throw new Error(`HTTP GET gave ${body.byteLength} bytes`);
    const upload = new Uint8Array(spec.upBytes);
    const upStart = performance.now();
    const res = await fetch('/blob', { method: 'POST', body: upload });
    if (Number(await res.text()) !== spec.upBytes) throw new Error('HTTP POST was not read whole');
    return { downSeconds, upSeconds: (performance.now() - upStart) / 1000 };
  }
  const link = spec.transport === 'datachannel' ? await openDataChannel(spec.peer.path, spec.peer.key, spec.peer.id, spec.highWaterBytes) : await openSocket(spec.socketPath, spec.highWaterBytes);
  try {
    const downStart = performance.now();
    void link.channel.send(askDown(spec.totalBytes, spec.messageBytes));
    let received = 0;
    for (;;) {
      const message = await link.next();
      received += message.byteLength;
      if (message[0] === LAST_DOWN) break;
      if (message[0] !== DOWN) throw new Error(`unexpected message ${message[0]}`);
    }
    const downSeconds = (performance.now() - downStart) / 1000;
    if (received !== spec.totalBytes) throw new Error(`received ${received} of ${spec.totalBytes} bytes`);
    const upStart = performance.now();
    for (const message of transfer(spec.totalBytes, spec.messageBytes, UP, LAST_UP)) void link.channel.send(message);
    if ((await link.next())[0] !== UP_DONE) throw new Error('the upload was not acknowledged');
    return { downSeconds, upSeconds: (performance.now() - upStart) / 1000 };
  } finally {
    link.close();
  }
}

let held: CoordinatorLink | undefined;
let closedAtMs: number | null = null;

/** Connects to a coordinator as a miner (a fresh wallet key) and keeps the link, noting when it closes. */
async function connect(coordinatorUrl: string, transport: TransportChoice): Promise<string> {
  held?.close();
  closedAtMs = null;
  const link = await CoordinatorLink.open(coordinatorUrl, Peer, { transport });
  const keys = await generateSigningKeys();
  link.send({
    type: 'hello', minerKey: await exportPublicKey(keys.publicKey), signature: await sign(keys.privateKey, helloChallengeBytes(link.challenge.nonce, link.challenge.coordinatorKey)),
    kinds: ['gemm'], backend: 'wasm', adapter: { vendor: 'bench', architecture: 'cpu', device: '', description: 'transport bench', isFallbackAdapter: true },
  });
  const reply = await link.next(['welcome', 'error'], 30_000);
  if (reply.type === 'error') throw new Error(`hello refused: ${reply.message}`);
  link.onClose(() => (closedAtMs = Date.now()));
  held = link;
  return link.transport;
}

const api = { throughput, connect, closedAtMs: () => closedAtMs };
(window as unknown as { bench: typeof api }).bench = api;
document.body.dataset.ready = 'true';
