// Holds jobs and their units, leases units to miners with deadlines, and takes them back on expiry or failure.
import { randomUUID } from 'node:crypto';
import type { Precision } from '../protocol/messages.ts';
import { gemmKind, type GemmJob, type GemmUnit } from '../work/gemm/gemm.ts';

/** Every lease gets this much time, plus time for its ops at a slow miner's speed. */
export const LEASE_BASE_MS = 30_000;
/** The slowest speed a lease allows for: SwiftShader runs GEMM at about 1 GFLOP/s. */
const SLOWEST_OPS_PER_MS = 100_000; // 0.1 GFLOP/s
export const LEASE_MAX_MS = 600_000;
/** A finished job's product is kept this long for its requester to fetch, unless deleted sooner. */
export const RESULT_RETENTION_MS = 60 * 60_000;

export type JobStatus = 'queued' | 'running' | 'done';

export interface JobState {
  job: GemmJob;
  /** id of the API key that submitted it: only its owner may read or delete it */
  owner: string;
  /** sha256 of the operands in the operand store */
  operandsSha256: string;
  units: Map<string, GemmUnit>;
  results: Map<string, Float32Array>;
  /** unit id -> the wallet key (hex) of the miner whose result was accepted */
  doneBy: Map<string, string>;
  createdAtMs: number;
  finishedAtMs: number | null;
  output: Float32Array | null;
}

export interface Lease {
  id: string;
  unit: GemmUnit;
  sessionId: string;
  leasedAtMs: number;
  deadlineAtMs: number;
}

/** Why a lease is no longer live; remembered for a while so that a late or replayed result gets the right answer. */
export type LeaseEnd = 'completed' | 'released' | 'expired' | 'removed';
/** How many ended leases are remembered; older ones are simply unknown. */
const ENDED_LEASES_KEPT = 20_000;

export interface EndedLease {
  sessionId: string;
  unitId: string;
  end: LeaseEnd;
}

export interface JobMeta {
  owner: string;
  operandsSha256: string;
}

export class Scheduler {
  private readonly jobs = new Map<string, JobState>();
  /** Units waiting for a miner, oldest job first. */
  private readonly pending: GemmUnit[] = [];
  private readonly leases = new Map<string, Lease>();
  /** unit id -> lease id, so that a unit has at most one live lease */
  private readonly leaseOfUnit = new Map<string, string>();
  private readonly ended = new Map<string, EndedLease>();

  submit(job: GemmJob, nowMs: number, meta: JobMeta = { owner: '', operandsSha256: '' }): JobState {
    return this.restore(job, meta, nowMs, new Map(), nowMs);
  }

  /**
   * Puts back a job from storage with the units already verified before a restart; only the others are queued.
   * A job whose every unit is done is assembled at once (its operands may then be empty).
   */
  restore(
    job: GemmJob,
    meta: JobMeta,
    createdAtMs: number,
    done: ReadonlyMap<string, { result: Float32Array; minerKey: string }>,
    nowMs: number,
  ): JobState {
    const units = gemmKind.split(job);
    const state: JobState = {
      job,
      ...meta,
      units: new Map(units.map((u) => [u.id, u])),
      results: new Map(),
      doneBy: new Map(),
      createdAtMs,
      finishedAtMs: null,
      output: null,
    };
    for (const [unitId, { result, minerKey }] of done) {
      if (!state.units.has(unitId)) continue;
      state.results.set(unitId, result);
      state.doneBy.set(unitId, minerKey);
    }
    this.jobs.set(job.id, state);
    if (state.results.size === state.units.size) this.finish(state, nowMs);
    else this.pending.push(...units.filter((u) => !state.results.has(u.id)));
    return state;
  }

  jobIds(): string[] {
    return [...this.jobs.keys()];
  }

  job(id: string): JobState | undefined {
    return this.jobs.get(id);
  }

  status(state: JobState): JobStatus {
    if (state.output) return 'done';
    const started = state.results.size > 0 || [...state.units.keys()].some((u) => this.leaseOfUnit.has(u));
    return started ? 'running' : 'queued';
  }

  /**
   * Leases the oldest waiting unit that the miner can run (its job's precision is one of `precisions`) to a miner
   * session, or undefined when there is no such work.
   */
  lease(sessionId: string, nowMs: number, precisions: readonly Precision[] = ['f32']): Lease | undefined {
    const at = this.pending.findIndex((u) => {
      const precision = this.jobs.get(u.jobId)?.job.precision;
      return precision !== undefined && precisions.includes(precision);
    });
    if (at < 0) return undefined;
    const [unit] = this.pending.splice(at, 1);
    const durationMs = Math.min(LEASE_MAX_MS, LEASE_BASE_MS + Number(gemmKind.ops(unit) / BigInt(SLOWEST_OPS_PER_MS)));
    const lease: Lease = { id: randomUUID(), unit, sessionId, leasedAtMs: nowMs, deadlineAtMs: nowMs + durationMs };
    this.leases.set(lease.id, lease);
    this.leaseOfUnit.set(unit.id, lease.id);
    return lease;
  }

  /** The live lease with this id, if it belongs to this session. */
  leaseFor(leaseId: string, sessionId: string): Lease | undefined {
    const lease = this.leases.get(leaseId);
    return lease && lease.sessionId === sessionId ? lease : undefined;
  }

  /** How a lease that is no longer live ended, if it is still remembered. */
  endedLease(leaseId: string): EndedLease | undefined {
    return this.ended.get(leaseId);
  }

  /** Records a verified result; assembles the job's output when it was the last unit, and then returns the job. */
  complete(lease: Lease, result: Float32Array, nowMs: number, minerKey: string): JobState | undefined {
    this.endLease(lease, 'completed');
    const state = this.jobs.get(lease.unit.jobId);
    if (!state || state.output || state.results.has(lease.unit.id)) return undefined;
    state.results.set(lease.unit.id, result);
    state.doneBy.set(lease.unit.id, minerKey);
    if (state.results.size < state.units.size) return undefined;
    this.finish(state, nowMs);
    return state;
  }

  private finish(state: JobState, nowMs: number): void {
    state.output = gemmKind.assemble(state.job, state.results);
    state.results.clear();
    state.finishedAtMs = nowMs;
    // The operands are no longer needed: keep only the product.
    const none = { a: new Float32Array(0), b: new Float32Array(0) };
    state.job = state.job.precision === 'f16' ? { ...state.job, ...none, halves: { a: new Uint16Array(0), b: new Uint16Array(0) } } : { ...state.job, ...none };
  }

  /** Puts a lease's unit back at the front of the queue: its miner failed, left or ran out of time. */
  release(lease: Lease, end: LeaseEnd = 'released'): void {
    if (!this.leases.has(lease.id)) return;
    this.endLease(lease, end);
    this.pending.unshift(lease.unit);
  }

  releaseSession(sessionId: string): Lease[] {
    const dropped = [...this.leases.values()].filter((l) => l.sessionId === sessionId);
    for (const lease of dropped) this.release(lease);
    return dropped;
  }

  expire(nowMs: number): Lease[] {
    const expired = [...this.leases.values()].filter((l) => l.deadlineAtMs <= nowMs);
    for (const lease of expired) this.release(lease, 'expired');
    return expired;
  }

  /** Forgets a job: its units leave the queue and its leases end. False when there is no such job. */
  remove(jobId: string): boolean {
    const state = this.jobs.get(jobId);
    if (!state) return false;
    this.jobs.delete(jobId);
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].jobId === jobId) this.pending.splice(i, 1);
    for (const lease of [...this.leases.values()]) if (lease.unit.jobId === jobId) this.endLease(lease, 'removed');
    return true;
  }

  /** Forgets finished jobs whose product has been kept for RESULT_RETENTION_MS. */
  evictFinished(nowMs: number): string[] {
    const evicted: string[] = [];
    for (const [id, state] of this.jobs) {
      if (state.finishedAtMs !== null && nowMs - state.finishedAtMs > RESULT_RETENTION_MS) {
        this.jobs.delete(id);
        evicted.push(id);
      }
    }
    return evicted;
  }

  counts(): { jobs: number; jobsOpen: number; unitsPending: number; unitsLeased: number } {
    let jobsOpen = 0;
    for (const s of this.jobs.values()) if (!s.output) jobsOpen++;
    return { jobs: this.jobs.size, jobsOpen, unitsPending: this.pending.length, unitsLeased: this.leases.size };
  }

  private endLease(lease: Lease, end: LeaseEnd): void {
    this.leases.delete(lease.id);
    this.ended.set(lease.id, { sessionId: lease.sessionId, unitId: lease.unit.id, end });
    if (this.ended.size > ENDED_LEASES_KEPT) {
      const oldest = this.ended.keys().next();
      if (!oldest.done) this.ended.delete(oldest.value);
    }
    if (this.leaseOfUnit.get(lease.unit.id) === lease.id) this.leaseOfUnit.delete(lease.unit.id);
  }
}
