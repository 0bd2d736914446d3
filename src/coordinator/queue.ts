// The queue of units and their leases, as the coordinator uses it: one interface, so that a database-backed queue
// (a fleet's PostgreSQL, leasing with FOR UPDATE SKIP LOCKED) can replace the in-memory one in scheduler.ts.
import type { AnyWorkKind, EncodedOutput, MinerCapabilities, UnitBase } from '../work/kind.ts';

export type JobStatus = 'queued' | 'running' | 'done';

export interface JobState {
  id: string;
  kind: AnyWorkKind;
  /** The kind's job, operands included; null once finished, when only the output is kept. */
  job: unknown;
  /** id of the API key that submitted it: only its owner may read or delete it */
  owner: string;
  /** sha256 of each operand in the operand store */
  operands: readonly string[];
  /** What the API shows of the job (the kind's description), kept after its operands are dropped. */
  view: Readonly<Record<string, string | number>>;
  /** Memory the job holds while open (its kind's footprint), charged to its owner's quota. */
  heldBytes: number;
  units: Map<string, UnitBase>;
  results: Map<string, unknown>;
  /** unit id -> the wallet key (hex) of the miner whose result was accepted */
  doneBy: Map<string, string>;
  createdAtMs: number;
  finishedAtMs: number | null;
  output: EncodedOutput | null;
}

export interface Lease {
  id: string;
  /** What the miner computes: one unit, or a span of several joined by its kind (`parts`). */
  unit: UnitBase;
  /** A span's units, in order: each is credited, stored and assembled on its own; none for a lease of one unit. */
  parts?: readonly UnitBase[];
  sessionId: string;
  leasedAtMs: number;
  deadlineAtMs: number;
}

/** Why a lease is no longer live; remembered for a while so that a late or replayed result gets the right answer. */
export type LeaseEnd = 'completed' | 'released' | 'expired' | 'removed';

export interface EndedLease {
  sessionId: string;
  unitId: string;
  end: LeaseEnd;
}

/** A job as submitted or restored: the kind's job and what the coordinator keeps beside it. */
export interface NewJob {
  id: string;
  kind: AnyWorkKind;
  job: unknown;
  owner: string;
  operands: readonly string[];
  heldBytes: number;
  createdAtMs: number;
}

export interface QueueCounts {
  jobs: number;
  jobsOpen: number;
  unitsPending: number;
  unitsLeased: number;
}

export interface WorkQueue {
  /**
   * Queues a job's units, except those already verified (after a restart: unit id -> result and miner) and those
   * whose results are held pending an audit. A job whose every unit is done is assembled at once (its operands may
   * then be empty).
   */
  submit(job: NewJob, done: ReadonlyMap<string, { result: unknown; minerKey: string }>, nowMs: number, held?: ReadonlySet<string>): Promise<JobState>;
  job(id: string): Promise<JobState | undefined>;
  jobIds(): Promise<string[]>;
  status(state: JobState): Promise<JobStatus>;
  /**
   * Leases the oldest waiting unit this miner can run, or undefined when there is none. With `units` over 1, up to
   * that many waiting units are joined into one lease where the unit's kind can (WorkKind.span).
   */
  lease(sessionId: string, nowMs: number, miner: MinerCapabilities, units?: number): Promise<Lease | undefined>;
  /** How many live leases these sessions hold together. */
  leaseCount(sessionIds: readonly string[]): Promise<number>;
  /** The live lease with this id, if it belongs to this session. */
  leaseFor(leaseId: string, sessionId: string): Promise<Lease | undefined>;
  /** How a lease that is no longer live ended, if it is still remembered. */
  endedLease(leaseId: string): Promise<EndedLease | undefined>;
  /**
   * A shared queue (a fleet's): whether this lease went out from another coordinator of the fleet, live or ended.
   * A page whose coordinator died sends its results to another, which cannot tell whose they were: no blame.
   */
  leasedElsewhere?(leaseId: string): Promise<boolean>;
  /**
   * An in-memory queue: whether this lease id is one this coordinator gave out before it restarted (or long enough
   * ago that it is forgotten), with no record of it now. A page that kept its result across the restart: no blame.
   */
  leasedBeforeRestart?(leaseId: string): Promise<boolean>;
  /** Records a verified result; assembles the job's output when it was the last unit, and then returns the job. */
  complete(lease: Lease, result: unknown, nowMs: number, minerKey: string): Promise<JobState | undefined>;
  /**
   * A span's verified results (unit id -> result): complete() for each part that has one, its lease ended once; a part
   * without one (its credit failed to store) goes back to the front of the queue. Parts credited after the lease ended
   * (expired while they were stored) are done all the same, unless leased again meanwhile.
   */
  completeSpan(lease: Lease, results: ReadonlyMap<string, unknown>, nowMs: number, minerKey: string): Promise<JobState | undefined>;
  /**
   * Holds a result that passed the cheap checks of a kind that audits (src/coordinator/audits.ts): its lease ends as
   * completed, and the unit is neither waiting nor done until settle() or requeue() says which.
   */
  hold(lease: Lease, nowMs: number): Promise<void>;
  /**
   * A held unit's credit settled: the unit is done with this result; assembles the job's output when it was the last
   * unit, and then returns the job. Nothing for a unit that is not held (its job removed meanwhile).
   */
  settle(unit: UnitBase, result: unknown, nowMs: number, minerKey: string): Promise<JobState | undefined>;
  /** Held units whose credit was forfeited: their results are discarded and they go back to the front of the queue. */
  requeue(units: readonly UnitBase[]): Promise<void>;
  /** How many of an open job's units wait for a miner, are leased, or are held. */
  unitCounts(jobId: string): Promise<{ waiting: number; leased: number; held: number }>;
  /** Puts a lease's unit back at the front of the queue: its miner failed, left or ran out of time. */
  release(lease: Lease, end?: LeaseEnd): Promise<void>;
  releaseSession(sessionId: string): Promise<Lease[]>;
  expire(nowMs: number): Promise<Lease[]>;
  /** Forgets a job: its units leave the queue and its leases end. False when there is no such job. */
  remove(jobId: string): Promise<boolean>;
  /** Forgets finished jobs whose output has been kept long enough; returns their ids. */
  evictFinished(nowMs: number): Promise<string[]>;
  counts(): Promise<QueueCounts>;
}
