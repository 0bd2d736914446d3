// The gemm kind: C = A·B in f32, or with f16 operands summed in f32, split into output tiles, verified by Freivalds,
// assembled row-major.
import type { Precision } from '../../protocol/messages.ts';
import type { RandomBytes, Verdict, WorkKind } from '../kind.ts';
import { freivalds } from './freivalds.ts';

/** The largest M, N or K a job may have; 4096 is the promise, 16384 leaves room. */
export const MAX_GEMM_DIM = 16_384;
/** Output tile edge of one unit: 256x256 keeps a unit's operands at 2 MiB per 1024 of K. */
export const UNIT_TILE = 256;

interface GemmJobOf<P extends Precision> {
  id: string;
  m: number;
  n: number;
  k: number;
  /** f32: A and B are the job's operands. f16: they are halves, in `halves`; `a` and `b` hold their exact f32 values. */
  precision: P;
  /** m x k, row-major */
  a: Float32Array;
  /** k x n, row-major */
  b: Float32Array;
}

/**
 * An f16 job: its operands as IEEE halves, what miners are sent. A product of two halves is exact in f32, so the
 * result is checked as an f32 product of `a` and `b`, their f32 values, with f32's tolerance.
 */
export interface GemmF16Job extends GemmJobOf<'f16'> {
  halves: { a: Uint16Array; b: Uint16Array };
}

export type GemmJob = GemmJobOf<'f32'> | GemmF16Job;

/** One output tile: rows [row0, row0 + rows) and cols [col0, col0 + cols) of C. */
export interface GemmUnit {
  id: string;
  jobId: string;
  row0: number;
  col0: number;
  rows: number;
  cols: number;
  depth: number;
}

/** rows x cols, row-major: the miner's claimed tile of C. */
export type GemmResult = Float32Array;

export const gemmKind: WorkKind<GemmJob, GemmUnit, GemmResult, Float32Array> = {
  name: 'gemm',

  split(job: GemmJob): GemmUnit[] {
    return splitTiles(job.id, job.m, job.n, job.k, UNIT_TILE);
  },

  ops(unit: GemmUnit): bigint {
    return 2n * BigInt(unit.rows) * BigInt(unit.cols) * BigInt(unit.depth);
  },

  verify(job: GemmJob, unit: GemmUnit, result: GemmResult, random: RandomBytes): Verdict {
    const { a, b } = unitOperands(job, unit);
    return freivalds({ a, b, c: result, rows: unit.rows, depth: unit.depth, cols: unit.cols }, random);
  },

  assemble(job: GemmJob, results: ReadonlyMap<string, GemmResult>): Float32Array {
    const c = new Float32Array(job.m * job.n);
    for (const unit of gemmKind.split(job)) {
      const tile = results.get(unit.id);
      if (!tile) throw new Error(`assemble: no result for unit ${unit.id}`);
      for (let i = 0; i < unit.rows; i++) {
        c.set(tile.subarray(i * unit.cols, (i + 1) * unit.cols), (unit.row0 + i) * job.n + unit.col0);
      }
    }
    return c;
  },
};

export function splitTiles(jobId: string, m: number, n: number, k: number, tile: number): GemmUnit[] {
  const units: GemmUnit[] = [];
  for (let row0 = 0; row0 < m; row0 += tile) {
    for (let col0 = 0; col0 < n; col0 += tile) {
      units.push({
        id: `${jobId}.${row0 / tile}.${col0 / tile}`,
        jobId,
        row0,
        col0,
        rows: Math.min(tile, m - row0),
        cols: Math.min(tile, n - col0),
        depth: k,
      });
    }
  }
  return units;
}

/** The slices of A (rows x K) and B (K x cols) that a unit needs, as f32 values. A's rows are contiguous: no copy. */
export function unitOperands(job: GemmJob, unit: GemmUnit): { a: Float32Array; b: Float32Array } {
  return sliceOperands(job, unit, job.a, job.b);
}

/** The same slices of an f16 job's halves: what its leases carry. */
export function unitHalves(job: GemmF16Job, unit: GemmUnit): { a: Uint16Array; b: Uint16Array } {
  return sliceOperands(job, unit, job.halves.a, job.halves.b);
}

function sliceOperands<T extends Float32Array | Uint16Array>(job: GemmJob, unit: GemmUnit, jobA: T, jobB: T): { a: T; b: T } {
  const a = jobA.subarray(unit.row0 * job.k, (unit.row0 + unit.rows) * job.k) as T;
  if (unit.cols === job.n) return { a, b: jobB };
  const b = new (jobB.constructor as new (length: number) => T)(job.k * unit.cols);
  for (let kk = 0; kk < job.k; kk++) {
    b.set(jobB.subarray(kk * job.n + unit.col0, kk * job.n + unit.col0 + unit.cols), kk * unit.cols);
  }
  return { a, b };
}
