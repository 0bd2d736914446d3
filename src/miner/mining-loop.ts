// The mining loop: connect, prove the wallet, lease a unit, run it on the GPU worker, return it, keep the receipt.
import { Peer } from 'peerjs';
import type { Receipt } from '../protocol/messages.ts';
import { f32Tensor, f32Values } from '../protocol/tensor.ts';
import { toHex } from '../protocol/receipt.ts';
import type { Wallet } from '../wallet/wallet.ts';
import { CoordinatorLink, LinkClosedError } from './coordinator-link.ts';
import type { GpuClient } from './gpu-client.ts';
import type { GpuDescription } from './worker-messages.ts';

export type MinerPhase = 'idle' | 'starting-gpu' | 'connecting' | 'mining' | 'waiting-for-work' | 'reconnecting' | 'stopping' | 'failed';

export interface UnitReport {
  unitId: string;
  ops: bigint;
  gpuSeconds: number;
  accepted: boolean;
  reason?: string;
}

export interface MinerEvents {
  phase(phase: MinerPhase, detail?: string): void;
  gpu(description: GpuDescription): void;
  unit(report: UnitReport): void;
  receipt(receipt: Receipt): void;
}

const RECONNECT_FIRST_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

export class MiningLoop {
  private running = false;
  private link: CoordinatorLink | undefined;
  private finished: Promise<void> = Promise.resolve();

  constructor(
    private readonly coordinatorUrl: string,
    private readonly wallet: Wallet,
    private readonly gpu: GpuClient,
    private readonly events: MinerEvents,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.finished = this.run().catch((err: unknown) => {
      this.running = false;
      this.events.phase('failed', (err as Error).message);
    });
  }

  /** Stops after the unit in hand is returned (at most one unit), then closes the link. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.events.phase('stopping');
    await this.finished;
  }

  private async run(): Promise<void> {
    this.events.phase('starting-gpu');
    this.events.gpu(await this.gpu.init());
    let backoffMs = RECONNECT_FIRST_MS;
    while (this.running) {
      try {
        this.events.phase('connecting');
        this.link = await CoordinatorLink.open(this.coordinatorUrl, Peer);
        await this.hello(this.link);
        backoffMs = RECONNECT_FIRST_MS;
        await this.mine(this.link);
      } catch (err) {
        if (!this.running) break;
        const reason = err instanceof LinkClosedError ? `connection lost: ${err.message}` : (err as Error).message;
        this.events.phase('reconnecting', `${reason}; retrying in ${Math.round(backoffMs / 1000)} s`);
        await sleep(backoffMs);
        backoffMs = Math.min(RECONNECT_MAX_MS, backoffMs * 2);
      } finally {
        this.link?.close();
        this.link = undefined;
      }
    }
    this.events.phase('idle');
  }

  private async hello(link: CoordinatorLink): Promise<void> {
    const { nonce, coordinatorKey } = link.challenge;
    const gpu = await this.gpu.init();
    link.send({
      type: 'hello',
      minerKey: this.wallet.publicKey,
      signature: await this.wallet.signChallenge(nonce, coordinatorKey),
      adapter: gpu.adapter,
      kinds: ['gemm'],
    });
    const reply = await link.next(['welcome', 'error'], 30_000);
    if (reply.type === 'error') throw new Error(`the coordinator refused this wallet: ${reply.message}`);
  }

  private async mine(link: CoordinatorLink): Promise<void> {
    const coordinatorKey = toHex(link.challenge.coordinatorKey);
    while (this.running) {
      link.send({ type: 'work-request' });
      const offer = await link.next(['lease', 'no-work', 'error']);
      if (offer.type === 'no-work') {
        this.events.phase('waiting-for-work');
        await sleep(offer.retryAfterMs);
        continue;
      }
      if (offer.type === 'error') throw new Error(`the coordinator refused work: ${offer.code}: ${offer.message}`);
      this.events.phase('mining');

      const [rows, depth] = offer.a.shape;
      const cols = offer.b.shape[1];
      if (offer.a.shape.length !== 2 || offer.b.shape.length !== 2 || offer.b.shape[0] !== depth) {
        throw new Error(`lease ${offer.leaseId} has operands of incompatible shapes`);
      }
      const run = await this.gpu.gemm(rows, depth, cols, f32Values(offer.a), f32Values(offer.b));
      link.send({
        type: 'result',
        leaseId: offer.leaseId,
        unitId: offer.unitId,
        gpuSeconds: run.gpuSeconds,
        output: f32Tensor([rows, cols], run.c),
      });
      const ops = 2n * BigInt(rows) * BigInt(cols) * BigInt(depth);
      const verdict = await link.next(['receipt', 'rejected']);
      if (verdict.type === 'rejected') {
        this.events.unit({ unitId: offer.unitId, ops, gpuSeconds: run.gpuSeconds, accepted: false, reason: verdict.message });
        continue;
      }
      if (toHex(verdict.receipt.coordinatorKey) !== coordinatorKey) {
        throw new Error('the coordinator sent a receipt signed by another key');
      }
      const receipt = await this.wallet.addReceipt(verdict.receipt);
      this.events.unit({ unitId: offer.unitId, ops, gpuSeconds: run.gpuSeconds, accepted: true });
      this.events.receipt(receipt);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
