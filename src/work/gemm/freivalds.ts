// Freivalds' check of a float32 product C = A·B in float64, with a tolerance from f32 rounding theory.
import type { RandomBytes, Verdict } from '../kind.ts';

/** f32 unit roundoff. */
const U32 = 2 ** -24;
/** f64 unit roundoff, for the error of the check's own sums. */
const U64 = 2 ** -53;
/**
 * Safety factor of the tolerance: 8 for the probabilistic per-element rounding bound
 * (Higham & Mary 2019: |error| <= lambda * sqrt(K) * u * sum|a||b| fails with probability
 * about 2K * exp(-lambda^2 / 2)), times 8 for Hoeffding's bound on a sum of errors with random
 * signs (fails with probability 2 * exp(-t^2 / 2)). Both are ~1e-10 or less even at K = 4096.
 */
const SAFETY = 8 * 8;
/** Each round misses a set of wrong elements that cancel with probability at most 1/2. */
export const FREIVALDS_ROUNDS = 2;

export interface Product {
  /** rows x depth, row-major */
  a: Float32Array;
  /** depth x cols, row-major */
  b: Float32Array;
  /** rows x cols, row-major: the claimed product */
  c: Float32Array;
  rows: number;
  depth: number;
  cols: number;
}

/**
 * Accepts a correct f32 product computed in any summation order, and rejects a product with a wrong
 * element whose error exceeds the row's tolerance. For row i the tolerance is
 *   SAFETY * sqrt(K + 1) * u32 * ||a_i||_2 * ||B||_F
 * because sum_j (sum_k |a_ik||b_kj|)^2 <= ||a_i||^2 * ||B||_F^2 (Cauchy-Schwarz), plus the f64 error of the check.
 * Costs O(rows*depth + depth*cols + rows*cols) per round, against O(rows*depth*cols) for the product.
 */
export function freivalds(p: Product, random: RandomBytes, rounds = FREIVALDS_ROUNDS): Verdict {
  const { a, b, c, rows, depth, cols } = p;
  if (c.length !== rows * cols) {
    return reject('shape-mismatch', `result has ${c.length} values, expected ${rows}x${cols}`);
  }
  for (let i = 0; i < c.length; i++) {
    if (!Number.isFinite(c[i])) return reject('non-finite', `result element ${i} is ${c[i]}`);
  }

  let bFrobeniusSquared = 0;
  const bRowAbsSum = new Float64Array(depth);
  for (let kk = 0; kk < depth; kk++) {
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const x = b[kk * cols + j];
      bFrobeniusSquared += x * x;
      s += Math.abs(x);
    }
    bRowAbsSum[kk] = s;
  }
  const bFrobenius = Math.sqrt(bFrobeniusSquared);
  const rowBound = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let normSquared = 0;
    let absDot = 0;
    let cAbs = 0;
    for (let kk = 0; kk < depth; kk++) {
      const x = a[i * depth + kk];
      normSquared += x * x;
      absDot += Math.abs(x) * bRowAbsSum[kk];
    }
    for (let j = 0; j < cols; j++) cAbs += Math.abs(c[i * cols + j]);
    const f32Rounding = SAFETY * Math.sqrt(depth + 1) * U32 * Math.sqrt(normSquared) * bFrobenius;
    const f64Rounding = 4 * (depth + cols) * U64 * (absDot + cAbs);
    rowBound[i] = f32Rounding + f64Rounding;
  }

  const signBytes = new Uint8Array(cols);
  const r = new Float64Array(cols);
  const br = new Float64Array(depth);
  for (let round = 0; round < rounds; round++) {
    random(signBytes);
    for (let j = 0; j < cols; j++) r[j] = signBytes[j] & 1 ? 1 : -1;
    for (let kk = 0; kk < depth; kk++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += b[kk * cols + j] * r[j];
      br[kk] = s;
    }
    for (let i = 0; i < rows; i++) {
      let abr = 0;
      for (let kk = 0; kk < depth; kk++) abr += a[i * depth + kk] * br[kk];
      let cr = 0;
      for (let j = 0; j < cols; j++) cr += c[i * cols + j] * r[j];
      const residual = Math.abs(cr - abr);
      if (!(residual <= rowBound[i])) {
        return reject(
          'verification-failed',
          `row ${i} of the result is off by ${residual.toPrecision(3)}; f32 rounding explains at most ${rowBound[i].toPrecision(3)}`,
        );
      }
    }
  }
  return { ok: true };
}

function reject(code: 'shape-mismatch' | 'non-finite' | 'verification-failed', message: string): Verdict {
  return { ok: false, error: { code, message } };
}
