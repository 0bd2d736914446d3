// A job's life across memory and disk: accepted only once stored, results credited with the ledger, resumed after a restart.
import { randomUUID } from 'node:crypto';
import type { GemmJob } from '../work/gemm/gemm.ts';
import { fromHalves } from '../work/gemm/halves.ts';
import type { Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { OperandStore } from './operand-store.ts';
import type { JobState, Lease, Scheduler } from './scheduler.ts';

/** A job's operands, A then B: f32 values, or halves (IEEE f16 bits) for an f16 job. */
export type Operands = { precision: 'f32'; values: Float32Array } | { precision: 'f16'; halves: Uint16Array };

/** The job over its operands; an f16 job also keeps their exact f32 values, for verification. */
function gemmJob(id: string, m: number, n: number, k: number, operands: Operands): GemmJob {
  if (operands.precision === 'f32') {
    const { values } = operands;
    return { id, m, n, k, precision: 'f32', a: values.subarray(0, m * k), b: values.subarray(m * k) };
  }
  const halves = { a: operands.halves.subarray(0, m * k), b: operands.halves.subarray(m * k) };
  return { id, m, n, k, precision: 'f16', halves, a: fromHalves(halves.a), b: fromHalves(halves.b) };
}

export class Jobs {
  constructor(
    readonly scheduler: Scheduler,
    private readonly ledger: Ledger,
    private readonly operands: OperandStore,
  ) {}

  /**
   * Stores the operands (A then B, little-endian: f32 values, or for an f16 job the halves its miners are sent) and
   * the job, then queues its units.
   */
  async submit(owner: string, m: number, n: number, k: number, operands: Operands, nowMs: number): Promise<JobState> {
    const data = operands.precision === 'f16' ? operands.halves : operands.values;
    const operandsSha256 = await this.operands.put(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const id = randomUUID();
    await this.ledger.saveJob({ id, owner, m, n, k, precision: operands.precision, operandsSha256, createdAtMs: nowMs, finishedAtMs: null });
    return this.scheduler.submit(gemmJob(id, m, n, k, operands), nowMs, { owner, operandsSha256 });
  }

  /** The job, if it exists and belongs to this owner: another requester's job is as good as missing. */
  find(id: string, owner: string): JobState | undefined {
    const state = this.scheduler.job(id);
    return state && state.owner === owner ? state : undefined;
  }

  /**
   * Records a verified result: the credit and the result in one ledger transaction, then the scheduler.
   * False when the unit had been credited already (nothing is paid twice).
   */
  async complete(lease: Lease, entry: Parameters<Ledger['credit']>[0], result: Float32Array, nowMs: number): Promise<boolean> {
    const credited = await this.ledger.credit(entry, new Uint8Array(result.buffer, result.byteOffset, result.byteLength));
    const finished = this.scheduler.complete(lease, result, nowMs, entry.minerKey);
    if (finished) {
      await this.ledger.finishJob(finished.job.id, nowMs);
      await this.freeOperands(finished);
      log('job-done', { job: finished.job.id, ms: nowMs - finished.createdAtMs });
    }
    return credited;
  }

  async remove(state: JobState): Promise<void> {
    this.scheduler.remove(state.job.id);
    await this.ledger.deleteJob(state.job.id);
    await this.freeOperands(state);
  }

  async evictFinished(nowMs: number): Promise<void> {
    for (const id of this.scheduler.evictFinished(nowMs)) {
      await this.ledger.deleteJob(id);
      log('job-evicted', { job: id });
    }
  }

  /** Reloads every stored job after a start: done units stay done, the rest are queued again. */
  async restore(nowMs: number): Promise<{ jobs: number; unitsDone: number; orphanedOperands: number }> {
    let unitsDone = 0;
    const referenced = new Set<string>();
    for (const stored of await this.ledger.jobs()) {
      const done = new Map<string, { result: Float32Array; minerKey: string }>();
      for (const [unitId, { result, minerKey }] of await this.ledger.unitResults(stored.id)) {
        done.set(unitId, { result: new Float32Array(Uint8Array.from(result).buffer), minerKey });
      }
      unitsDone += done.size;
      const { m, n, k, precision } = stored;
      let operands: Operands = precision === 'f16' ? { precision, halves: new Uint16Array(0) } : { precision, values: new Float32Array(0) };
      if (stored.finishedAtMs === null) {
        let bytes: Uint8Array<ArrayBuffer>;
        try {
          bytes = await this.operands.get(stored.operandsSha256);
        } catch (err) {
          // One job's lost or corrupt operands must not keep the coordinator from serving the others.
          log('job-unrecoverable', { job: stored.id, operands: stored.operandsSha256, error: String(err) });
          continue;
        }
        operands = precision === 'f16' ? { precision, halves: new Uint16Array(bytes.buffer) } : { precision, values: new Float32Array(bytes.buffer) };
        referenced.add(stored.operandsSha256);
      }
      const meta = { owner: stored.owner, operandsSha256: stored.operandsSha256 };
      const state = this.scheduler.restore(gemmJob(stored.id, m, n, k, operands), meta, stored.createdAtMs, done, stored.finishedAtMs ?? nowMs);
      if (state.output && stored.finishedAtMs === null) {
        // Every unit was credited but the crash came before the job was marked done.
        await this.ledger.finishJob(stored.id, nowMs);
        referenced.delete(stored.operandsSha256);
      }
    }
    const orphanedOperands = await this.operands.deleteAllBut(referenced);
    const jobs = this.scheduler.counts().jobs;
    log('jobs-restored', { jobs, unitsDone, orphanedOperands });
    return { jobs, unitsDone, orphanedOperands };
  }

  /** Deletes a job's operand file unless another open job has the same operands. */
  private async freeOperands(state: JobState): Promise<void> {
    for (const id of this.scheduler.jobIds()) {
      const other = this.scheduler.job(id);
      if (other && other !== state && !other.output && other.operandsSha256 === state.operandsSha256) return;
    }
    await this.operands.delete(state.operandsSha256);
  }
}
