// The in-memory queue: holds jobs and their units, leases units to miners that can run them with deadlines, and
// takes them back on expiry or failure. Kind-neutral: each job's kind splits, sizes and assembles its work.
import { canRun, type MinerCapabilities, type Requirements, type UnitBase } from '../work/kind.ts';
import { BlocksLeased, blocksOf, pickUnit, type UnitCandidate } from './unit-ranking.ts';
import type { EndedLease, JobState, JobStatus, Lease, LeaseEnd, NewJob, QueueCounts, WorkQueue } from './queue.ts';
import { LeaseIds } from './lease-ids.ts';

/** Every lease gets this much time, plus time for its ops at a slow miner's speed. */
export const LEASE_BASE_MS = 30_000;
/** The slowest speed a lease allows for: SwiftShader multiplies matrices at about 1 GFLOP/s. */
const SLOWEST_OPS_PER_MS = 100_000; // 0.1 GFLOP/s
export const LEASE_MAX_MS = 600_000;
/** A finished job's output is kept this long for its requester to fetch, unless deleted sooner. */
export const RESULT_RETENTION_MS = 60 * 60_000;
/** How many ended leases are remembered; older ones are simply unknown. */
const ENDED_LEASES_KEPT = 20_000;

/** How long a lease of a unit of this many ops lasts, whichever queue leases it. */
export function leaseDurationMs(ops: bigint): number {
  return Math.min(LEASE_MAX_MS, LEASE_BASE_MS + Number(ops / BigInt(SLOWEST_OPS_PER_MS)));
}

interface QueuedJob {
  state: JobState;
  needs: Requirements;
}

export class Scheduler implements WorkQueue {
  private readonly jobs = new Map<string, QueuedJob>();
  /** Units waiting for a miner, oldest job first. */
  private readonly pending: UnitBase[] = [];
  private readonly leases = new Map<string, Lease>();
  /** unit id -> lease id, so that a unit has at most one live lease */
  private readonly leaseOfUnit = new Map<string, string>();
  private readonly ended = new Map<string, EndedLease>();
  /** Units whose results are held until an audit settles or forfeits their credit: neither waiting nor done. */
  private readonly held = new Map<string, UnitBase>();
  private readonly blocksLeased = new BlocksLeased();

  /** `leaseIds` mints ids this coordinator still knows for its own after a restart (lease-ids.ts). */
  constructor(private readonly leaseIds = LeaseIds.random()) {}

  async submit(job: NewJob, done: ReadonlyMap<string, { result: unknown; minerKey: string }>, nowMs: number, held: ReadonlySet<string> = new Set()): Promise<JobState> {
    const { kind } = job;
    const units = kind.split(job.job);
    const state: JobState = {
      id: job.id,
      kind,
      job: job.job,
      owner: job.owner,
      operands: job.operands,
      view: kind.describe(job.job),
      heldBytes: job.heldBytes,
      units: new Map(units.map((u) => [u.id, u])),
      results: new Map(),
      doneBy: new Map(),
      createdAtMs: job.createdAtMs,
      finishedAtMs: null,
      output: null,
    };
    for (const [unitId, { result, minerKey }] of done) {
      if (!state.units.has(unitId)) continue;
      state.results.set(unitId, result);
      state.doneBy.set(unitId, minerKey);
    }
    this.jobs.set(job.id, { state, needs: kind.requirements(job.job) });
    if (state.results.size === state.units.size) this.finish(state, nowMs);
    else {
      for (const unit of units) {
        if (state.results.has(unit.id)) continue;
        if (held.has(unit.id)) this.held.set(unit.id, unit);
        else this.pending.push(unit);
      }
    }
    return state;
  }

  async jobIds(): Promise<string[]> {
    return [...this.jobs.keys()];
  }

  async job(id: string): Promise<JobState | undefined> {
    return this.jobs.get(id)?.state;
  }

  async status(state: JobState): Promise<JobStatus> {
    if (state.output) return 'done';
    const started = state.results.size > 0 || [...state.units.keys()].some((u) => this.leaseOfUnit.has(u) || this.held.has(u));
    return started ? 'running' : 'queued';
  }

  async lease(sessionId: string, nowMs: number, miner: MinerCapabilities, units = 1): Promise<Lease | undefined> {
    const at = this.pick(sessionId, miner);
    if (at < 0) return undefined;
    const [first] = this.pending.splice(at, 1);
    const state = this.jobs.get(first.jobId)?.state;
    const kind = state?.kind;
    const span = units > 1 && state && state.job !== null && kind?.span && kind.partResult && !kind.audit
      ? kind.span(state.job, first, this.pending.filter((u) => u.jobId === first.jobId), units)
      : undefined;
    if (span) {
      const joined = new Set(span.parts.map((part) => part.id));
      for (let i = this.pending.length - 1; i >= 0; i--) if (joined.has(this.pending[i].id)) this.pending.splice(i, 1);
    }
    const unit = span?.unit ?? first;
    const durationMs = leaseDurationMs(kind ? kind.ops(unit) : 0n);
    const lease: Lease = { id: this.leaseIds.mint(), unit, ...(span ? { parts: span.parts } : {}), sessionId, leasedAtMs: nowMs, deadlineAtMs: nowMs + durationMs };
    this.leases.set(lease.id, lease);
    for (const part of unitsOf(lease)) this.leaseOfUnit.set(part.id, lease.id);
    this.blocksLeased.remember(sessionId, blocksOf(kind, unit));
    return lease;
  }

  /**
   * The pending unit to lease this miner: among the units of the oldest job it can run, the one unit-ranking.ts
   * prefers (the most blocks it holds); -1 when there is none.
   */
  private pick(sessionId: string, miner: MinerCapabilities): number {
    const first = this.pending.findIndex((u) => {
      const queued = this.jobs.get(u.jobId);
      return queued !== undefined && canRun(miner, queued.state.kind.name, queued.needs);
    });
    if (first < 0 || !this.blocksLeased.held(sessionId)) return first;
    const jobId = this.pending[first].jobId;
    const kind = this.jobs.get(jobId)?.state.kind;
    if (!kind?.operandKeys) return first;
    const positions: number[] = [];
    const candidates: UnitCandidate[] = [];
    for (let i = first; i < this.pending.length; i++) {
      const unit = this.pending[i];
      if (unit.jobId !== jobId) continue;
      positions.push(i);
      candidates.push(this.blocksLeased.candidate(sessionId, kind, unit));
    }
    return positions[pickUnit(candidates)];
  }

  async leaseCount(sessionIds: readonly string[]): Promise<number> {
    let count = 0;
    for (const lease of this.leases.values()) if (sessionIds.includes(lease.sessionId)) count++;
    return count;
  }

  async leaseFor(leaseId: string, sessionId: string): Promise<Lease | undefined> {
    const lease = this.leases.get(leaseId);
    return lease && lease.sessionId === sessionId ? lease : undefined;
  }

  async endedLease(leaseId: string): Promise<EndedLease | undefined> {
    return this.ended.get(leaseId);
  }

  async leasedBeforeRestart(leaseId: string): Promise<boolean> {
    return this.leaseIds.minted(leaseId) && !this.leases.has(leaseId) && !this.ended.has(leaseId);
  }

  async complete(lease: Lease, result: unknown, nowMs: number, minerKey: string): Promise<JobState | undefined> {
    return this.completeSpan(lease, new Map([[lease.unit.id, result]]), nowMs, minerKey);
  }

  async completeSpan(lease: Lease, results: ReadonlyMap<string, unknown>, nowMs: number, minerKey: string): Promise<JobState | undefined> {
    // The lease may have ended while its results were verified or stored (a span's parts one transaction each): its
    // units went back to the queue, maybe out again to another miner. Those credited are paid, and a miner leased
    // them again would compute them for nothing: they are taken back and done.
    const live = this.leases.has(lease.id);
    if (live) this.endLease(lease, 'completed');
    let finished: JobState | undefined;
    const left: UnitBase[] = [];
    for (const part of unitsOf(lease)) {
      if (results.has(part.id)) {
        if (!live) this.takeBack(part);
        finished = this.done(part, results.get(part.id), nowMs, minerKey) ?? finished;
      } else if (live && this.jobs.has(part.jobId)) left.push(part);
    }
    this.pending.unshift(...left);
    return finished;
  }

  /**
   * A unit whose result was credited after its lease ended: out of the queue, and out of the lease it went out in
   * again, whose miner is told its lease ended (without blame) when it returns; that lease's other units wait again.
   */
  private takeBack(unit: UnitBase): void {
    const again = this.leases.get(this.leaseOfUnit.get(unit.id) ?? '');
    if (again) this.putBack(again, 'released');
    const waiting = this.pending.findIndex((u) => u.id === unit.id);
    if (waiting >= 0) this.pending.splice(waiting, 1);
  }

  private done(unit: UnitBase, result: unknown, nowMs: number, minerKey: string): JobState | undefined {
    const state = this.jobs.get(unit.jobId)?.state;
    if (!state || state.output || state.results.has(unit.id)) return undefined;
    state.results.set(unit.id, result);
    state.doneBy.set(unit.id, minerKey);
    if (state.results.size < state.units.size) return undefined;
    this.finish(state, nowMs);
    return state;
  }

  async hold(lease: Lease): Promise<void> {
    this.endLease(lease, 'completed');
    if (this.jobs.has(lease.unit.jobId)) this.held.set(lease.unit.id, lease.unit);
  }

  async settle(unit: UnitBase, result: unknown, nowMs: number, minerKey: string): Promise<JobState | undefined> {
    if (!this.held.delete(unit.id)) return undefined;
    return this.done(unit, result, nowMs, minerKey);
  }

  async requeue(units: readonly UnitBase[]): Promise<void> {
    for (const unit of units) {
      const known = this.held.get(unit.id);
      if (!known || !this.held.delete(unit.id)) continue;
      this.pending.unshift(known);
    }
  }

  async unitCounts(jobId: string): Promise<{ waiting: number; leased: number; held: number }> {
    const count = (units: Iterable<UnitBase>) => [...units].filter((u) => u.jobId === jobId).length;
    return { waiting: count(this.pending), leased: count([...this.leases.values()].flatMap(unitsOf)), held: count(this.held.values()) };
  }

  private finish(state: JobState, nowMs: number): void {
    state.output = state.kind.encodeOutput(state.job, state.kind.assemble(state.job, state.results));
    state.results.clear();
    state.finishedAtMs = nowMs;
    // The operands are no longer needed: keep only the output.
    state.job = null;
  }

  async release(lease: Lease, end: LeaseEnd = 'released'): Promise<void> {
    this.putBack(lease, end);
  }

  private putBack(lease: Lease, end: LeaseEnd): void {
    if (!this.leases.has(lease.id)) return;
    this.endLease(lease, end);
    this.pending.unshift(...unitsOf(lease));
  }

  async releaseSession(sessionId: string): Promise<Lease[]> {
    this.blocksLeased.forget(sessionId);
    const dropped = [...this.leases.values()].filter((l) => l.sessionId === sessionId);
    for (const lease of dropped) await this.release(lease);
    return dropped;
  }

  async expire(nowMs: number): Promise<Lease[]> {
    const expired = [...this.leases.values()].filter((l) => l.deadlineAtMs <= nowMs);
    for (const lease of expired) await this.release(lease, 'expired');
    return expired;
  }

  async remove(jobId: string): Promise<boolean> {
    if (!this.jobs.delete(jobId)) return false;
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].jobId === jobId) this.pending.splice(i, 1);
    for (const [unitId, unit] of this.held) if (unit.jobId === jobId) this.held.delete(unitId);
    for (const lease of [...this.leases.values()]) if (lease.unit.jobId === jobId) this.endLease(lease, 'removed');
    return true;
  }

  async evictFinished(nowMs: number): Promise<string[]> {
    const evicted: string[] = [];
    for (const [id, { state }] of this.jobs) {
      if (state.finishedAtMs !== null && nowMs - state.finishedAtMs > RESULT_RETENTION_MS) {
        this.jobs.delete(id);
        evicted.push(id);
      }
    }
    return evicted;
  }

  async counts(): Promise<QueueCounts> {
    let jobsOpen = 0;
    for (const { state } of this.jobs.values()) if (!state.output) jobsOpen++;
    let unitsLeased = 0;
    for (const lease of this.leases.values()) unitsLeased += unitsOf(lease).length;
    return { jobs: this.jobs.size, jobsOpen, unitsPending: this.pending.length, unitsLeased };
  }

  private endLease(lease: Lease, end: LeaseEnd): void {
    this.leases.delete(lease.id);
    this.ended.set(lease.id, { sessionId: lease.sessionId, unitId: lease.unit.id, end });
    if (this.ended.size > ENDED_LEASES_KEPT) {
      const oldest = this.ended.keys().next();
      if (!oldest.done) this.ended.delete(oldest.value);
    }
    for (const unit of unitsOf(lease)) if (this.leaseOfUnit.get(unit.id) === lease.id) this.leaseOfUnit.delete(unit.id);
  }
}

/** The units a lease holds in the queue: a span's parts, or its one unit. */
function unitsOf(lease: Lease): readonly UnitBase[] {
  return lease.parts ?? [lease.unit];
}
