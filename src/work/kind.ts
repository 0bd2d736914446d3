// The one interface every kind of useful work implements; a new kind is a new folder beside gemm/.
import type { ProtocolError } from '../protocol/errors.ts';

export type Verdict = { ok: true } | { ok: false; error: ProtocolError };

/** Fills a byte array with unpredictable bytes: crypto.getRandomValues in production, a seeded stream in tests. */
export type RandomBytes = (into: Uint8Array<ArrayBuffer>) => void;

export const cryptoRandomBytes: RandomBytes = (into) => {
  // getRandomValues fills at most 65536 bytes per call.
  for (let at = 0; at < into.byteLength; at += 65_536) crypto.getRandomValues(into.subarray(at, at + 65_536));
};

export interface WorkKind<Job, Unit, Result, Output> {
  readonly name: string;
  /** Coordinator: cuts a job into units that can be leased independently. */
  split(job: Job): Unit[];
  /** Exact useful operations in a unit: the basis of pay and of ops per joule. */
  ops(unit: Unit): bigint;
  /** Checks a miner's result for a unit before any credit. Pure apart from the random source. */
  verify(job: Job, unit: Unit, result: Result, random: RandomBytes): Verdict;
  /** Builds the job's output once every unit has a verified result. */
  assemble(job: Job, results: ReadonlyMap<string, Result>): Output;
}
