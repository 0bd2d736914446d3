// A miner scripted in Node that speaks the real protocol over a real PeerJS data channel: honest or not, as a test says.
import type { DataConnection } from 'peerjs';
import { FramedChannel } from '../../src/protocol/channel.ts';
import { encodeMessage, parseCoordinatorMessage } from '../../src/protocol/codec.ts';
import type { CoordinatorMessage, MinerMessageInput } from '../../src/protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign } from '../../src/protocol/receipt.ts';
import { f32Tensor, f32Values } from '../../src/protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { loadPeerJs } from '../../src/coordinator/peers.ts';
import { matmulF32 } from './random.ts';

type Message = CoordinatorMessage;
type Lease = Extract<Message, { type: 'lease' }>;
type Outgoing = MinerMessageInput extends infer T ? (T extends unknown ? Omit<T, 'v'> : never) : never;

export class ScriptedMiner {
  private readonly inbox: Message[] = [];
  private silent = false;
  private waiters: (() => void)[] = [];
  readonly errors: string[] = [];
  challenge!: Extract<Message, { type: 'challenge' }>;
  minerKey!: Uint8Array;

  private constructor(
    private readonly peer: { destroy(): void },
    private readonly conn: DataConnection,
    private readonly channel: FramedChannel,
  ) {}

  static async connect(baseUrl: string): Promise<ScriptedMiner> {
    const config = (await (await fetch(new URL('api/config', baseUrl))).json()) as {
      coordinatorPeerId: string;
      peer: { path: string; key: string };
    };
    const Peer = await loadPeerJs();
    const url = new URL(baseUrl);
    const peer = new Peer({
      host: url.hostname, port: Number(url.port), path: config.peer.path, key: config.peer.key, secure: false,
      config: { iceServers: [] }, debug: 0,
    });
    await new Promise<void>((resolve, reject) => {
      peer.once('open', () => resolve());
      peer.once('error', reject);
    });
    const conn = peer.connect(config.coordinatorPeerId, { serialization: 'raw', reliable: true });
    let miner: ScriptedMiner | undefined;
    const channel = new FramedChannel(
      {
        send: (frame) => void conn.send(frame),
        bufferedBytes: () => conn.dataChannel?.bufferedAmount ?? 0,
      },
      (bytes) => miner?.deliver(bytes),
      (error) => miner?.errors.push(`${error.code}: ${error.message}`),
    );
    miner = new ScriptedMiner(peer, conn, channel);
    conn.on('data', (data) => channel.receive(data as ArrayBuffer));
    miner.challenge = (await miner.next('challenge')) as Extract<Message, { type: 'challenge' }>;
    return miner;
  }

  private deliver(bytes: Uint8Array): void {
    const parsed = parseCoordinatorMessage(bytes);
    if (!parsed.ok) {
      this.errors.push(`${parsed.error.code}: ${parsed.error.message}`);
      return;
    }
    if (this.silent) return;
    if (parsed.value.type === 'ping') {
      this.send({ type: 'pong', nonce: parsed.value.nonce });
      return;
    }
    this.inbox.push(parsed.value);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for the next message of one of these types, skipping others (pings are answered automatically). */
  async next<T extends Message['type']>(...types: T[]): Promise<Extract<Message, { type: T }>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const at = this.inbox.findIndex((m) => (types as string[]).includes(m.type));
      if (at >= 0) return this.inbox.splice(at, 1)[0] as Extract<Message, { type: T }>;
      if (Date.now() > deadline) throw new Error(`no ${types.join('/')} message within 60 s`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1_000);
      });
    }
  }

  send(message: Outgoing): void {
    void this.channel.send(encodeMessage({ ...message, v: PROTOCOL_VERSION }));
  }

  sendBytes(bytes: Uint8Array): void {
    void this.channel.send(bytes);
  }

  /** Proves a fresh wallet key (or `keys`) and waits for the welcome. */
  async hello(keys?: CryptoKeyPair): Promise<void> {
    const pair = keys ?? (await generateSigningKeys());
    this.minerKey = await exportPublicKey(pair.publicKey);
    const signature = await sign(pair.privateKey, helloChallengeBytes(this.challenge.nonce, this.challenge.coordinatorKey));
    this.send({
      type: 'hello', minerKey: this.minerKey, signature, kinds: ['gemm'],
      adapter: { vendor: 'node', architecture: 'cpu', device: '', description: 'scripted miner', isFallbackAdapter: true },
    });
    await this.next('welcome');
  }

  /** Asks for work until a lease arrives. */
  async lease(): Promise<Lease> {
    for (;;) {
      this.send({ type: 'work-request' });
      const reply = await this.next('lease', 'no-work', 'error');
      if (reply.type === 'lease') return reply;
      if (reply.type === 'error') throw new Error(`work-request refused: ${reply.code}: ${reply.message}`);
      await new Promise((resolve) => setTimeout(resolve, reply.retryAfterMs));
    }
  }

  /** Computes the lease's tile on the CPU in f32, exactly as an honest miner would. */
  static compute(lease: Lease): Float32Array {
    const [rows, depth] = lease.a.shape;
    const cols = lease.b.shape[1];
    return matmulF32(f32Values(lease.a), f32Values(lease.b), rows, depth, cols);
  }

  sendResult(lease: Lease, values: Float32Array, shape = [lease.a.shape[0], lease.b.shape[1]]): void {
    this.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output: f32Tensor(shape, values) });
  }

  /** Leases, computes and returns units until stopped; resolves with the receipts it got. */
  async mineHonestly(shouldStop: () => boolean): Promise<Extract<Message, { type: 'receipt' }>[]> {
    const receipts: Extract<Message, { type: 'receipt' }>[] = [];
    while (!shouldStop()) {
      this.send({ type: 'work-request' });
      const reply = await this.next('lease', 'no-work');
      if (reply.type === 'no-work') {
        await new Promise((resolve) => setTimeout(resolve, reply.retryAfterMs));
        continue;
      }
      this.sendResult(reply, ScriptedMiner.compute(reply));
      const verdict = await this.next('receipt', 'rejected');
      if (verdict.type === 'rejected') throw new Error(`honest result rejected: ${verdict.code}: ${verdict.message}`);
      receipts.push(verdict);
    }
    return receipts;
  }

  /** Stops answering anything while keeping the channel open, as a hung or frozen tab does. */
  goSilent(): void {
    this.silent = true;
  }

  /** Vanishes without a goodbye, as a killed tab does. */
  kill(): void {
    this.channel.close();
    this.peer.destroy();
  }

  close(): void {
    this.channel.close();
    this.conn.close();
    this.peer.destroy();
  }
}
