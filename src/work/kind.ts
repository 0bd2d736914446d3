// The one interface every kind of useful work implements: a new kind is a folder beside gemm/ and a line in registry.ts.
// The coordinator drives jobs, leases, settlement and storage through it alone, and names no kind itself.
import type { Parsed, ProtocolError } from '../protocol/errors.ts';
import type { Engine, LeasePayload } from '../protocol/messages.ts';
import type { Dtype, Tensor } from '../protocol/tensor.ts';

export type Verdict = { ok: true } | { ok: false; error: ProtocolError };

/** Fills a byte array with unpredictable bytes: crypto.getRandomValues in production, a seeded stream in tests. */
export type RandomBytes = (into: Uint8Array<ArrayBuffer>) => void;

export const cryptoRandomBytes: RandomBytes = (into) => {
  // getRandomValues fills at most 65536 bytes per call.
  for (let at = 0; at < into.byteLength; at += 65_536) crypto.getRandomValues(into.subarray(at, at + 65_536));
};

/**
 * What a verifier gets besides the job, unit and result: the random source, and the runtimes the coordinator
 * injects by name for kinds that re-run work (e.g. onnxruntime-node). A kind checks for the runtime it needs.
 */
export interface VerifyContext {
  random: RandomBytes;
  runtimes: Readonly<Record<string, unknown>>;
}

/** What a miner declared in its hello: a unit is leased to it only if it runs the unit's kind, precision and features. */
export interface MinerCapabilities {
  kinds: readonly string[];
  precisions: readonly string[];
  features: readonly string[];
}

/** What a job's units need of a miner, besides running the kind. */
export interface Requirements {
  precision: string;
  features: readonly string[];
}

/** Every unit names itself and its job; the rest is the kind's. */
export interface UnitBase {
  id: string;
  jobId: string;
}

/**
 * An operand a lease names by the sha256 of its bytes instead of carrying it: the coordinator hashes it, serves it
 * over HTTP to the miners whose leases name it, and may drop and recompute it, so `bytes` must be deterministic.
 */
export interface OperandBlock {
  /** Names these bytes within their job, the same for every unit that shares them (e.g. `b:512:256`). */
  key: string;
  dtype: Dtype;
  shape: number[];
  /** The bytes exactly as the miner uses them, computed when asked. */
  bytes(): Uint8Array;
}

/** What a kind puts in a lease: carried operands, operands named by hash (`blocks`), scalar parameters. */
export interface KindLeasePayload {
  operands: Record<string, Tensor>;
  params: LeasePayload['params'];
  blocks?: Record<string, OperandBlock>;
}

/** A job's cost in bytes: what its requester's quota is charged for it. */
export interface JobFootprint {
  /** the request body: exactly this many bytes */
  bodyBytes: number;
  /** the assembled output, held until fetched and deleted or expired */
  outputBytes: number;
  /** memory the job holds while open: its operands as kept, and its output */
  heldBytes: number;
}

/** A job's output as the requester fetches it. */
export interface EncodedOutput {
  contentType: string;
  headers: Readonly<Record<string, string>>;
  body: Uint8Array;
}

/**
 * A kind of work, from the requester's submission to the assembled output. Pure: no browser, no Node. Its miner
 * side, `execute` in the GPU worker, lives under src/miner/kinds/ because it needs the browser.
 *
 * Params: what a job is, besides its operands (JSON, persisted with the job). Job: params and operands in memory.
 */
export interface WorkKind<Params, Job, Unit extends UnitBase, Result, Output> {
  /** The name requesters submit to (`POST /api/jobs/NAME`) and miners declare in hello. */
  readonly name: string;
  /** One line for the coordinator's start-up banner: how a requester submits this kind. */
  readonly usage: string;

  // ---- submission ----
  /** A job's parameters from the request's query string, with their limits checked. */
  parseParams(query: Readonly<Record<string, unknown>>): Parsed<Params>;
  /**
   * What a job with these parameters costs the coordinator, known before any body byte is read: the exact body
   * length, its output, and the memory it holds while open. Refused (job-too-large, product-too-large) over the
   * kind's limits.
   */
  footprint(params: Params): Parsed<JobFootprint>;
  /** The job from its parameters and body, with the operands to store content-addressed (each checked). */
  createJob(id: string, params: Params, body: Uint8Array<ArrayBuffer>): Parsed<{ job: Job; operands: Uint8Array[] }>;
  /**
   * Optional: asynchronous work on the body before createJob (e.g. measuring a model on the inputs' shapes), with a
   * refusal the requester reads like createJob's.
   */
  prepare?(params: Params, body: Uint8Array<ArrayBuffer>): Promise<Parsed<void>>;
  /** Rebuilds a stored job after a restart from its saved parameters and operands; throws when they are not its own. */
  restoreJob(id: string, params: unknown, operands: readonly Uint8Array[]): Job;
  /** What is persisted of a job besides its operands: JSON. */
  params(job: Job): Params;
  /** A job's public description for the API's job view (shape, precision, ...). */
  describe(job: Job): Record<string, string | number>;

  // ---- units and leases ----
  split(job: Job): Unit[];
  /** Exact useful operations in a unit: the basis of pay and of ops per joule. */
  ops(unit: Unit): bigint;
  /** What a miner must have declared to be leased this job's units. */
  requirements(job: Job): Requirements;
  /** What a unit's lease carries to the miner, or names for it to fetch. */
  leasePayload(job: Job, unit: Unit): KindLeasePayload;
  /**
   * Optional: the keys of the blocks a unit's lease names (as its `blocks` give them), known without computing
   * them, so that the scheduler can prefer a miner that already holds them.
   */
  operandKeys?(unit: Unit): readonly string[];
  /**
   * Optional: several units leased as one, so that a fast miner gets work in pieces worth its time while the job
   * keeps its units. The units among `waiting` (this job's, in queue order) that continue `first`, up to `count` in
   * all with it, joined into one unit of this kind that is computed and returned as one, and checked by one call of
   * `verify` (its ops the sum of theirs); undefined when none continue it. `partResult` cuts the joined unit's verified result into each part's,
   * which is credited, stored and assembled as if it had been leased alone.
   */
  span?(job: Job, first: Unit, waiting: readonly Unit[], count: number): { unit: Unit; parts: Unit[] } | undefined;
  partResult?(job: Job, span: Unit, result: Result, part: Unit): Result;

  // ---- results ----
  /** The miner's output as the kind's result, after its dtype and shape are checked against the unit. */
  decodeResult(job: Job, unit: Unit, output: Tensor): Parsed<Result>;
  /** A verified result's bytes, kept so that a job resumes after a crash; and back. */
  encodeResult(result: Result): Uint8Array;
  decodeStoredResult(unit: Unit, bytes: Uint8Array): Result;
  /**
   * Checks a result before any credit; asynchronous. For a kind without `audit` this is the whole verification
   * (gemm: Freivalds checks every result); for one with `audit` it is the cheap check run on every result.
   */
  verify(ctx: VerifyContext, job: Job, unit: Unit, result: Result): Promise<Verdict>;
  /**
   * Optional: the expensive check (a re-run) that the coordinator runs on a sample of results that passed `verify`.
   * A kind that has it is paid through pending credits that settle only when an audit of its miner passes
   * (src/coordinator/audits.ts); one without it is paid on `verify` alone.
   */
  audit?(ctx: VerifyContext, job: Job, unit: Unit, result: Result): Promise<Verdict>;

  // ---- pay and output ----
  /**
   * Micro-credits per 10^9 verified ops of this job's units run on `engine` (what the result names, if anything):
   * integers, never floats. The coordinator cannot see which engine ran a unit, so a kind that pays engines
   * differently must bound the claim itself; one that does not may still name the engine in its receipts.
   */
  microCreditsPerGigaOp(job: Job, engine?: Engine): bigint;
  /** The kind a receipt for this job's unit run on `engine` names. */
  receiptKind(job: Job, engine?: Engine): string;
  /** Builds the job's output once every unit has a verified result. */
  assemble(job: Job, results: ReadonlyMap<string, Result>): Output;
  encodeOutput(job: Job, output: Output): EncodedOutput;
}

/**
 * Any kind, its types forgotten: what the registry holds and the coordinator drives. (The methods are declared as
 * methods, which TypeScript checks bivariantly, so every concrete kind is one of these.)
 */
export type AnyWorkKind = WorkKind<unknown, unknown, UnitBase, unknown, unknown>;

/** Pay for a unit: ops times the rate, in integer micro-credits. */
export function microCreditsFor(ops: bigint, microCreditsPerGigaOp: bigint): bigint {
  return (ops * microCreditsPerGigaOp) / 1_000_000_000n;
}

/** Whether a miner may be leased units of this kind that need `needs`. */
export function canRun(miner: MinerCapabilities, kind: string, needs: Requirements): boolean {
  return miner.kinds.includes(kind) && miner.precisions.includes(needs.precision) && needs.features.every((f) => miner.features.includes(f));
}
