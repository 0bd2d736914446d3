// Freivalds' check of a float32 product C = A·B in float64, with a tolerance from f32 rounding theory.
import type { RandomBytes, Verdict } from '../kind.ts';
import { rowSums } from './row-sums.ts';

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
/**
 * The second vector's multipliers: magnitudes MIN_MULTIPLIER + (byte & 127), with a sign, so 256 distinct nonzero
 * values per random byte. 128..255 rather than 1..128 keeps every multiplier within 2x of the largest, which the
 * tolerance is scaled by. Products x * r stay exact in f64 (24 + 8 bits).
 */
const MIN_MULTIPLIER = 128;
const MAX_MULTIPLIER = MIN_MULTIPLIER + 127;

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
 * element whose error exceeds the row's tolerance. Two random vectors check every row at once, (C r)_i against
 * (A (B r))_i:
 * - signs, r1 in {-1, 1}^N: the tolerance is tightest for them, so one wrong element beyond
 *     SAFETY * sqrt(K + 1) * u32 * ||a_i||_2 * ||B||_F   (plus the f64 error of the check, derived below)
 *   is always caught (r1_j e_j = ±e_j); errors that cancel in a row escape with probability up to 1/2;
 * - multipliers, r2 in ±{128..255}^N: 256 values per coordinate, so for any nonzero errors e of a row,
 *   P(e · r2 = 0) <= 1/256 (fix a j with e_j != 0: whatever the others are, at most one value of r2_j zeroes the
 *   sum), at a tolerance MAX_MULTIPLIER times the first.
 * Costs O(rows*depth + depth*cols + rows*cols) against O(rows*depth*cols) for the product: one pass over each of
 * C, B and A (row-sums.ts, WebAssembly SIMD), which gathers the tolerance's norms and both vectors' products.
 */
export function freivalds(p: Product, random: RandomBytes): Verdict {
  const { a, b, c, rows, depth, cols } = p;
  if (c.length !== rows * cols) {
    return reject('shape-mismatch', `result has ${c.length} values, expected ${rows}x${cols}`);
  }

  // Two random bytes per column: the sign of r1 from the first, r2's sign (bit 7) and magnitude from the second.
  const randomBytes = new Uint8Array(2 * cols);
  random(randomBytes);
  const r1 = new Float64Array(cols);
  const r2 = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    r1[j] = randomBytes[2 * j] & 1 ? 1 : -1;
    const byte = randomBytes[2 * j + 1];
    const magnitude = MIN_MULTIPLIER + (byte & 0x7f);
    r2[j] = byte & 0x80 ? -magnitude : magnitude;
  }

  // C first: a non-finite element makes its row's sum of |c| non-finite (a sum of finite |f32| cannot overflow f64),
  // so the check for one costs nothing on a correct product.
  const cSums = rowSums(c, rows, cols, r1, r2);
  for (let i = 0; i < rows; i++) {
    if (Number.isFinite(cSums.abs[i])) continue;
    for (let at = i * cols; at < (i + 1) * cols; at++) {
      if (!Number.isFinite(c[at])) return reject('non-finite', `result element ${at} is ${c[at]}`);
    }
  }

  // B: B·r1 and B·r2, ||B||_F^2 (as the sum of its rows' squares), and its rows' absolute sums.
  const bSums = rowSums(b, depth, cols, r1, r2);
  let bFrobeniusSquared = 0;
  let bRowAbsSumSquared = 0;
  for (let kk = 0; kk < depth; kk++) {
    bFrobeniusSquared += bSums.square[kk];
    bRowAbsSumSquared += bSums.abs[kk] * bSums.abs[kk];
  }
  const bFrobenius = Math.sqrt(bFrobeniusSquared);
  const bRowAbsSumNorm = Math.sqrt(bRowAbsSumSquared);

  // A: A·(B·r1), A·(B·r2) and the rows' norms.
  const aSums = rowSums(a, rows, depth, bSums.dotU, bSums.dotV);

  for (let i = 0; i < rows; i++) {
    const aNorm = Math.sqrt(aSums.square[i]);
    // The residual is sum_j r_j delta_ij, delta_ij = c_ij - (A·B)_ij, with |delta_ij| <= lambda * sqrt(K) * u32 *
    // sum_k |a_ik||b_kj| (Higham & Mary). The signs are independent Rademacher (for r2 given its magnitudes, each
    // at most MAX_MULTIPLIER), so Hoeffding bounds |sum_j r1_j delta_ij| by t * sqrt(sum_j delta_ij^2); with
    // sum_k |a_ik||b_kj| <= ||a_i|| * ||b_:j|| (Cauchy-Schwarz) that is at most lambda * t * sqrt(K) * u32 *
    // ||a_i|| * ||B||_F, and SAFETY = lambda * t. For r2, MAX_MULTIPLIER times that.
    const f32Rounding = SAFETY * Math.sqrt(depth + 1) * U32 * aNorm * bFrobenius;
    // The check's own sums, accumulated in f64, are of x * r1_j (|r1_j| = 1).
    // sum_k |a_ik| * (sum_j |b_kj|) <= ||a_i|| * ||row sums of |B|||, by Cauchy-Schwarz: no extra pass over A.
    const f64Rounding = 4 * (depth + cols) * U64 * (aNorm * bRowAbsSumNorm + cSums.abs[i]);
    const bound = f32Rounding + f64Rounding;
    const residual1 = Math.abs(cSums.dotU[i] - aSums.dotU[i]);
    const residual2 = Math.abs(cSums.dotV[i] - aSums.dotV[i]) / MAX_MULTIPLIER;
    const residual = Math.max(residual1, residual2);
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
