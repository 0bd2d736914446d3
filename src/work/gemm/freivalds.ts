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
 * Costs O(rows*depth + depth*cols + rows*cols) against O(rows*depth*cols) for the product: one pass over each of
 * B, A and C, which gathers the tolerance's norms and both rounds' products at once (memory traffic, not
 * arithmetic, is what a pass costs in JavaScript).
 */
export function freivalds(p: Product, random: RandomBytes): Verdict {
  const { a, b, c, rows, depth, cols } = p;
  if (c.length !== rows * cols) {
    return reject('shape-mismatch', `result has ${c.length} values, expected ${rows}x${cols}`);
  }
  for (let i = 0; i < c.length; i++) {
    if (!Number.isFinite(c[i])) return reject('non-finite', `result element ${i} is ${c[i]}`);
  }

  // Two rounds, each with its own random signs: a round misses wrong elements of a row that cancel with
  // probability at most 1/2, so both miss with at most 1/4; a single wrong element is never missed.
  const signBytes = new Uint8Array(cols);
  random(signBytes);
  const r1 = new Float64Array(cols);
  const r2 = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    r1[j] = signBytes[j] & 1 ? 1 : -1;
    r2[j] = signBytes[j] & 2 ? 1 : -1;
  }

  // B: its Frobenius norm, the norm of its rows' absolute sums (for the f64 error), and B·r for both rounds.
  let bFrobeniusSquared = 0;
  let bRowAbsSumSquared = 0;
  const br1 = new Float64Array(depth);
  const br2 = new Float64Array(depth);
  for (let kk = 0; kk < depth; kk++) {
    let abs = 0;
    let s1 = 0;
    let s2 = 0;
    const row = kk * cols;
    for (let j = 0; j < cols; j++) {
      const x = b[row + j];
      bFrobeniusSquared += x * x;
      abs += Math.abs(x);
      s1 += x * r1[j];
      s2 += x * r2[j];
    }
    bRowAbsSumSquared += abs * abs;
    br1[kk] = s1;
    br2[kk] = s2;
  }
  const bFrobenius = Math.sqrt(bFrobeniusSquared);
  const bRowAbsSumNorm = Math.sqrt(bRowAbsSumSquared);

  // Each row of A and C: the row's tolerance and the residual of both rounds.
  for (let i = 0; i < rows; i++) {
    let normSquared = 0;
    let abr1 = 0;
    let abr2 = 0;
    const aRow = i * depth;
    for (let kk = 0; kk < depth; kk++) {
      const x = a[aRow + kk];
      normSquared += x * x;
      abr1 += x * br1[kk];
      abr2 += x * br2[kk];
    }
    let cAbs = 0;
    let cr1 = 0;
    let cr2 = 0;
    const cRow = i * cols;
    for (let j = 0; j < cols; j++) {
      const x = c[cRow + j];
      cAbs += Math.abs(x);
      cr1 += x * r1[j];
      cr2 += x * r2[j];
    }
    const aNorm = Math.sqrt(normSquared);
    const f32Rounding = SAFETY * Math.sqrt(depth + 1) * U32 * aNorm * bFrobenius;
    // sum_k |a_ik| * (sum_j |b_kj|) <= ||a_i|| * ||row sums of |B|||, by Cauchy-Schwarz: no extra pass over A.
    const f64Rounding = 4 * (depth + cols) * U64 * (aNorm * bRowAbsSumNorm + cAbs);
    const bound = f32Rounding + f64Rounding;
    const residual = Math.max(Math.abs(cr1 - abr1), Math.abs(cr2 - abr2));
    if (!(residual <= bound)) {
      return reject(
        'verification-failed',
        `row ${i} of the result is off by ${residual.toPrecision(3)}; f32 rounding explains at most ${bound.toPrecision(3)}`,
      );
    }
  }
  return { ok: true };
}

function reject(code: 'shape-mismatch' | 'non-finite' | 'verification-failed', message: string): Verdict {
  return { ok: false, error: { code, message } };
}
