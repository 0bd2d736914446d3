// A job's life across memory and disk, whatever its kind: accepted only once stored, results credited with the
// ledger, resumed after a restart.
import { randomUUID } from 'node:crypto';
import type { KindRegistry } from '../work/registry.ts';
import type { AnyWorkKind } from '../work/kind.ts';
import { LedgerError, type CreditEntry, type Ledger, type PendingCredit } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { OperandStore } from './operand-store.ts';
import type { JobState, Lease, WorkQueue } from './queue.ts';

/** What a job of these parameters holds while open; 0 for one stored under limits since lowered (it is let run). */
function heldBytes(kind: AnyWorkKind, params: unknown): number {
  const footprint = kind.footprint(params);
  return footprint.ok ? footprint.value.heldBytes : 0;
}

export class Jobs {
  /**
   * Operands (by hash) of jobs being submitted: stored, but not in the queue yet. An identical job that finishes
   * meanwhile must not delete them.
   */
  private readonly submitting = new Map<string, number>();

  constructor(
    readonly queue: WorkQueue,
    readonly kinds: KindRegistry,
    private readonly ledger: Ledger,
    private readonly operands: OperandStore,
  ) {}

  /** Stores the job's operands (content-addressed) and the job, then queues its units. */
  async submit(owner: string, kind: AnyWorkKind, job: { id: string; job: unknown; operands: readonly Uint8Array[] }, nowMs: number): Promise<JobState> {
    const hashes: string[] = [];
    try {
      for (const bytes of job.operands) {
        const hash = await this.operands.put(bytes);
        this.submitting.set(hash, (this.submitting.get(hash) ?? 0) + 1);
        hashes.push(hash);
      }
      const params = kind.params(job.job);
      await this.ledger.saveJob({ id: job.id, owner, kind: kind.name, params, operands: hashes, createdAtMs: nowMs, finishedAtMs: null });
      return await this.queue.submit({ id: job.id, kind, job: job.job, owner, operands: hashes, heldBytes: heldBytes(kind, params), createdAtMs: nowMs }, new Map(), nowMs);
    } finally {
      for (const hash of hashes) {
        const left = (this.submitting.get(hash) ?? 1) - 1;
        if (left > 0) this.submitting.set(hash, left);
        else this.submitting.delete(hash);
      }
    }
  }

  /** A fresh job id. */
  newId(): string {
    return randomUUID();
  }

  /** The job, if it exists and belongs to this owner: another requester's job is as good as missing. */
  async find(id: string, owner: string): Promise<JobState | undefined> {
    const state = await this.queue.job(id);
    return state && state.owner === owner ? state : undefined;
  }

  /**
   * Records a verified result: the credit and the result in one ledger transaction, then the queue.
   * False when the unit had been credited already (nothing is paid twice).
   */
  async complete(lease: Lease, kind: AnyWorkKind, entry: CreditEntry, result: unknown, nowMs: number): Promise<boolean> {
    const credited = await this.ledger.credit(entry, kind.encodeResult(result));
    const finished = await this.queue.complete(lease, result, nowMs, entry.minerKey);
    if (finished) await this.finished(finished, nowMs);
    return credited;
  }

  /**
   * Records a span's verified results, one per part: each part's credit and result in its own ledger transaction, then
   * the queue once, which queues again any part left without a result. Returns which parts were credited (false: it
   * had been credited already), and the storage error that stopped the rest, if one did: the parts credited before it
   * stay credited and done.
   */
  async completeSpan(lease: Lease, kind: AnyWorkKind, entries: readonly CreditEntry[], results: ReadonlyMap<string, unknown>, nowMs: number): Promise<{ credited: boolean[]; error?: LedgerError }> {
    const credited: boolean[] = [];
    const recorded = new Map<string, unknown>();
    let error: LedgerError | undefined;
    for (const entry of entries) {
      try {
        credited.push(await this.ledger.credit(entry, kind.encodeResult(results.get(entry.unitId))));
      } catch (err) {
        if (!(err instanceof LedgerError)) throw err;
        error = err;
        break;
      }
      recorded.set(entry.unitId, results.get(entry.unitId));
    }
    const finished = await this.queue.completeSpan(lease, recorded, nowMs, entries[0].minerKey);
    if (finished) await this.finished(finished, nowMs);
    return error ? { credited, error } : { credited };
  }

  /**
   * Holds a result that passed its kind's cheap checks, its credit pending until an audit of its miner: in the
   * ledger (with the result), then the queue. False when the unit was already credited or pending.
   */
  async hold(lease: Lease, kind: AnyWorkKind, entry: CreditEntry, result: unknown, nowMs: number): Promise<boolean> {
    const held = await this.ledger.hold(entry, kind.encodeResult(result));
    if (held) await this.queue.hold(lease, nowMs);
    return held;
  }

  /**
   * An audit of this miner's unit `audited` passed: that credit and those older than its bond are paid and their units
   * done (jobs finish); its newest bondUnits(n) others stay pending (src/coordinator/audits.ts).
   */
  async settlePending(minerKey: string, audited: string, bondUnits: (auditsPassed: number) => number, nowMs: number): Promise<PendingCredit[]> {
    const settled = await this.ledger.settlePending(minerKey, audited, bondUnits);
    for (const credit of settled) {
      const state = await this.queue.job(credit.jobId);
      const unit = state?.units.get(credit.unitId);
      // A job removed meanwhile: the work was done and is paid, but there is nothing left to assemble.
      if (!state || !unit || state.job === null) continue;
      const finished = await this.queue.settle(unit, state.kind.decodeStoredResult(unit, credit.result), nowMs, minerKey);
      if (finished) await this.finished(finished, nowMs);
    }
    return settled;
  }

  /** An audit of this miner failed: all its pending credits are forfeited, their results dropped, their units queued again. */
  async forfeitPending(minerKey: string, reason: string, nowMs: number): Promise<PendingCredit[]> {
    const forfeited = await this.ledger.forfeitPending(minerKey, reason, nowMs);
    await this.queue.requeue(forfeited.map((credit) => ({ id: credit.unitId, jobId: credit.jobId })));
    return forfeited;
  }

  private async finished(state: JobState, nowMs: number): Promise<void> {
    await this.ledger.finishJob(state.id, nowMs);
    await this.freeOperands(state);
    log('job-done', { job: state.id, kind: state.kind.name, ms: nowMs - state.createdAtMs });
  }

  async remove(state: JobState): Promise<void> {
    await this.queue.remove(state.id);
    await this.ledger.deleteJob(state.id);
    await this.freeOperands(state);
  }

  async evictFinished(nowMs: number): Promise<void> {
    for (const id of await this.queue.evictFinished(nowMs)) {
      await this.ledger.deleteJob(id);
      log('job-evicted', { job: id });
    }
  }

  /** Reloads every stored job after a start: done units stay done, the rest are queued again. */
  async restore(nowMs: number): Promise<{ jobs: number; unitsDone: number; orphanedOperands: number }> {
    let unitsDone = 0;
    const referenced = new Set<string>();
    for (const stored of await this.ledger.jobs()) {
      const kind = this.kinds.get(stored.kind);
      if (!kind) {
        // Its operands are kept: a build that knows the kind again resumes it.
        log('job-unrecoverable', { job: stored.id, kind: stored.kind, error: 'this coordinator does not serve that kind of work' });
        for (const hash of stored.operands) referenced.add(hash);
        continue;
      }
      let job: unknown;
      try {
        const operands: Uint8Array[] = [];
        if (stored.finishedAtMs === null) for (const hash of stored.operands) operands.push(await this.operands.get(hash));
        job = kind.restoreJob(stored.id, stored.params, operands);
      } catch (err) {
        // One job's lost or corrupt operands must not keep the coordinator from serving the others.
        log('job-unrecoverable', { job: stored.id, operands: stored.operands.join(','), error: String(err) });
        continue;
      }
      const units = new Map(kind.split(job).map((u) => [u.id, u]));
      const done = new Map<string, { result: unknown; minerKey: string }>();
      for (const [unitId, { result, minerKey }] of await this.ledger.unitResults(stored.id)) {
        const unit = units.get(unitId);
        if (unit) done.set(unitId, { result: kind.decodeStoredResult(unit, result), minerKey });
      }
      unitsDone += done.size;
      if (stored.finishedAtMs === null) for (const hash of stored.operands) referenced.add(hash);
      // Units whose credit is pending stay held: an audit of their miner settles or forfeits them.
      const held = new Set((await this.ledger.pendingCredits({ jobId: stored.id })).map((credit) => credit.unitId));
      const state = await this.queue.submit(
        { id: stored.id, kind, job, owner: stored.owner, operands: stored.operands, heldBytes: heldBytes(kind, kind.params(job)), createdAtMs: stored.createdAtMs },
        done,
        stored.finishedAtMs ?? nowMs,
        held,
      );
      if (state.output && stored.finishedAtMs === null) {
        // Every unit was credited but the crash came before the job was marked done.
        await this.ledger.finishJob(stored.id, nowMs);
        for (const hash of stored.operands) referenced.delete(hash);
      }
    }
    const orphanedOperands = await this.operands.deleteAllBut(referenced);
    const { jobs } = await this.queue.counts();
    log('jobs-restored', { jobs, unitsDone, orphanedOperands });
    return { jobs, unitsDone, orphanedOperands };
  }

  /** Deletes a job's operand files, except those another open job also uses. */
  private async freeOperands(state: JobState): Promise<void> {
    const inUse = new Set<string>(this.submitting.keys());
    for (const id of await this.queue.jobIds()) {
      const other = await this.queue.job(id);
      if (other && other !== state && !other.output) for (const hash of other.operands) inUse.add(hash);
    }
    for (const hash of state.operands) if (!inUse.has(hash)) await this.operands.delete(hash);
  }
}
