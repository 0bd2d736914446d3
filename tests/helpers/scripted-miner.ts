// A miner scripted in Node that speaks the real protocol over a real PeerJS data channel (or the coordinator's
// WebSocket): honest or not, as a test says.
import { WebSocket } from 'ws';
import { CoordinatorLink, type MessageOf, type MinerOutgoing, type TransportChoice, type WebSocketClass } from '../../src/miner/coordinator-link.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign } from '../../src/protocol/receipt.ts';
import type { Precision } from '../../src/protocol/messages.ts';
import { f16Halves, f32Tensor, f32Values, type Tensor } from '../../src/protocol/tensor.ts';
import { fromHalves } from '../../src/work/gemm/halves.ts';
import { createHash } from 'node:crypto';
import { loadPeerJs } from '../../src/coordinator/peers.ts';
import { matmulF32 } from './random.ts';
import { waitForJob } from './stack.ts';

type Lease = MessageOf<'lease'>;
type Receipt = MessageOf<'receipt'>;

export class ScriptedMiner {
  minerKey = new Uint8Array(32);
  /** The session's key to the operands its leases name, from the welcome. */
  operandToken: string | undefined;
  /** Operand bytes fetched over HTTP, as the coordinator's origin sent them. */
  operandBytesFetched = 0;

  private constructor(
    readonly link: CoordinatorLink,
    readonly baseUrl: string,
  ) {}

  /**
   * Opens a link, trying again when WebRTC set-up fails: PeerJS in Node sometimes applies an ICE candidate before
   * the answer and reports a 'webrtc' error, which CoordinatorLink.open treats as fatal (seen about once in 30 connects,
   * and once in a CI run three times in a row within 0.3 s: hence more tries, a little apart).
   */
  static async connect(baseUrl: string, attempts = 5, transport: TransportChoice = 'webrtc'): Promise<ScriptedMiner> {
    for (let attempt = 1; ; attempt++) {
      try {
        // ws's WebSocket speaks the browser's API (binaryType, addEventListener, bufferedAmount) that the link uses.
        const options = { transport, WebSocket: WebSocket as unknown as WebSocketClass };
        return new ScriptedMiner(await CoordinatorLink.open(baseUrl, await loadPeerJs(), options), baseUrl);
      } catch (err) {
        // A handshake that never completes (seen once on a CI machine busy with other tests) is tried again too, as
        // the page's mining loop does.
        const retriable = err instanceof Error && (err.message.startsWith('webrtc') || /^connecting to the coordinator took longer/.test(err.message));
        if (attempt >= attempts || !retriable) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  get challenge(): MessageOf<'challenge'> {
    return this.link.challenge;
  }

  /** The next message of these types; a lease comes with the operands it names by hash fetched and checked, as a miner's would. */
  async next<T extends Parameters<CoordinatorLink['next']>[0][number]>(...types: T[]): Promise<MessageOf<T>> {
    const message = await this.link.next(types, 60_000);
    const any = message as MessageOf<Parameters<CoordinatorLink['next']>[0][number]>;
    if (any.type === 'welcome') this.operandToken = any.operandToken;
    if (any.type === 'lease') await this.fetchOperands(any);
    return message;
  }

  /** The raw next message, a lease as it came (operands named by hash left unfetched). */
  nextRaw<T extends Parameters<CoordinatorLink['next']>[0][number]>(...types: T[]): Promise<MessageOf<T>> {
    return this.link.next(types, 60_000);
  }

  /** GET /api/operands/SHA256 with this session's token. */
  fetchOperand(sha256: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(new URL(`api/operands/${sha256}`, this.baseUrl), { headers: { ...(this.operandToken ? { 'x-ergon-operand-token': this.operandToken } : {}), ...headers } });
  }

  /** Fetches each operand a lease names, checks its hash and puts it among the lease's operands. */
  private async fetchOperands(lease: Lease): Promise<void> {
    for (const [name, ref] of Object.entries(lease.refs)) {
      const response = await this.fetchOperand(ref.sha256);
      if (!response.ok) throw new Error(`operand ${name} of lease ${lease.leaseId}: ${response.status} ${await response.text()}`);
      const data = new Uint8Array(await response.arrayBuffer());
      this.operandBytesFetched += data.byteLength;
      if (createHash('sha256').update(data).digest('hex') !== ref.sha256) throw new Error(`operand ${name} does not hash to ${ref.sha256}`);
      lease.operands[name] = { dtype: ref.dtype, shape: ref.shape, data };
    }
  }

  send(message: MinerOutgoing): void {
    this.link.send(message);
  }

  sendBytes(bytes: Uint8Array): void {
    this.link.sendBytes(bytes);
  }

  /** Proves a fresh wallet key (or `keys`) and waits for the welcome. `precisions` and `kinds`: what it says it runs. */
  async hello(keys?: CryptoKeyPair, precisions?: Precision[], kinds = ['gemm']): Promise<void> {
    const reply = await this.helloReply(keys, precisions, kinds);
    if (reply.type === 'error') throw new Error(`hello refused: ${reply.code}: ${reply.message}`);
  }

  /** Proves a wallet key and returns the coordinator's answer: a welcome, or an error saying why not. */
  async helloReply(keys?: CryptoKeyPair, precisions?: Precision[], kinds = ['gemm']): Promise<MessageOf<'welcome' | 'error'>> {
    const pair = keys ?? (await generateSigningKeys());
    this.minerKey = await exportPublicKey(pair.publicKey);
    const signature = await sign(pair.privateKey, helloChallengeBytes(this.challenge.nonce, this.challenge.coordinatorKey));
    this.send({
      type: 'hello', minerKey: this.minerKey, signature, kinds, backend: 'wasm',
      adapter: { vendor: 'node', architecture: 'cpu', device: '', description: 'scripted miner', isFallbackAdapter: true },
      ...(precisions ? { precisions } : {}),
    });
    return this.next('welcome', 'error');
  }

  /** Asks for work `times` times at once and counts the leases it gets; the rest are answered no-work, with a reason. */
  async askMany(times: number): Promise<{ leases: number; leased: Lease[]; reasons: string[] }> {
    for (let i = 0; i < times; i++) this.send({ type: 'work-request' });
    const leased: Lease[] = [];
    const reasons: string[] = [];
    for (let i = 0; i < times; i++) {
      const reply = await this.next('lease', 'no-work');
      if (reply.type === 'lease') leased.push(reply);
      else reasons.push(reply.reason ?? '');
    }
    return { leases: leased.length, leased, reasons };
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

  /** Computes the lease's tile on the CPU in f32 (from the halves of an f16 lease), exactly as an honest miner would. */
  static compute(lease: Lease): Float32Array {
    const { a, b } = ScriptedMiner.operands(lease);
    const [rows, depth] = a.shape;
    const cols = b.shape[1];
    return matmulF32(ScriptedMiner.values(a), ScriptedMiner.values(b), rows, depth, cols);
  }

  /** A gemm lease's operands A (a span's row blocks a0, a1, ... stacked, as the page's miner does) and B. */
  static operands(lease: Lease): { a: Tensor; b: Tensor } {
    const { b } = lease.operands;
    const blocks = lease.operands.a ? [lease.operands.a] : Object.keys(lease.operands).filter((name) => /^a\d+$/.test(name)).sort((x, y) => Number(x.slice(1)) - Number(y.slice(1))).map((name) => lease.operands[name]);
    if (lease.kind !== 'gemm' || blocks.length === 0 || !b) throw new Error(`expected a gemm lease, got ${lease.kind}`);
    if (blocks.length === 1) return { a: blocks[0], b };
    const data = new Uint8Array(blocks.reduce((sum, block) => sum + block.data.byteLength, 0));
    let at = 0;
    for (const block of blocks) {
      data.set(block.data, at);
      at += block.data.byteLength;
    }
    return { a: { dtype: blocks[0].dtype, shape: [blocks.reduce((sum, block) => sum + block.shape[0], 0), blocks[0].shape[1]], data }, b };
  }

  /** An operand's values: f32 as sent, or an f16 operand's halves as the f32 values they are exactly. */
  static values(tensor: Tensor): Float32Array {
    return tensor.dtype === 'f16' ? fromHalves(f16Halves(tensor)) : f32Values(tensor);
  }

  sendResult(lease: Lease, values: Float32Array, shape = ScriptedMiner.tileShape(lease), gpuSeconds = 0.01): void {
    const parts = lease.parts ? { parts: lease.parts } : {};
    this.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds, output: f32Tensor(shape, values), ...parts });
  }

  /** The shape of a gemm lease's tile of C. */
  static tileShape(lease: Lease): number[] {
    const { a, b } = ScriptedMiner.operands(lease);
    return [a.shape[0], b.shape[1]];
  }

  /** Sends a result for a lease of one unit and waits for the coordinator's verdict on it. */
  async verdict(lease: Lease, values: Float32Array, gpuSeconds = 0.01): Promise<MessageOf<'receipt' | 'rejected'>> {
    if (lease.parts) throw new Error(`lease ${lease.leaseId} is a span of ${lease.parts.length} units: use verdicts()`);
    this.sendResult(lease, values, undefined, gpuSeconds);
    return this.next('receipt', 'rejected');
  }

  /** Sends a result and waits for its verdicts: a receipt for each part of a span (or its one unit), or a rejection. */
  async verdicts(lease: Lease, values: Float32Array, gpuSeconds = 0.01): Promise<MessageOf<'receipt' | 'rejected'>[]> {
    this.sendResult(lease, values, undefined, gpuSeconds);
    const verdicts: MessageOf<'receipt' | 'rejected'>[] = [];
    while (verdicts.length < (lease.parts?.length ?? 1)) {
      const verdict = await this.next('receipt', 'rejected');
      verdicts.push(verdict);
      if (verdict.type === 'rejected') break;
    }
    return verdicts;
  }

  /** Leases, computes and returns units until stopped; resolves with the receipts it got. */
  async mineHonestly(shouldStop: () => boolean): Promise<Receipt[]> {
    const receipts: Receipt[] = [];
    while (!shouldStop()) {
      this.send({ type: 'work-request' });
      const reply = await this.next('lease', 'no-work');
      if (reply.type === 'no-work') {
        await new Promise((resolve) => setTimeout(resolve, reply.retryAfterMs));
        continue;
      }
      for (const verdict of await this.verdicts(reply, ScriptedMiner.compute(reply))) {
        if (verdict.type === 'rejected') throw new Error(`honest result rejected: ${verdict.code}: ${verdict.message}`);
        receipts.push(verdict);
      }
    }
    return receipts;
  }

  /** Connects a fresh honest miner, mines until the job is done, and returns its receipts. */
  static async mineJob(baseUrl: string, jobId: string, precisions?: Precision[]): Promise<{ miner: ScriptedMiner; receipts: Receipt[] }> {
    const miner = await ScriptedMiner.connect(baseUrl);
    await miner.hello(undefined, precisions);
    let done = false;
    const mining = miner.mineHonestly(() => done);
    await waitForJob(baseUrl, jobId);
    done = true;
    const receipts = await mining;
    miner.close();
    return { miner, receipts };
  }

  /** Stops answering anything while keeping the channel open, as a hung or frozen tab does. */
  goSilent(): void {
    this.link.alive = false;
  }

  close(): void {
    this.link.close();
  }
}
