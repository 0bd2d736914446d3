// Freivalds' check of a float32 product C = A·B in float64, against a per-element model of f32 rounding error.
import type { RandomBytes, Verdict } from '../kind.ts';
import { columnSquares, rowSums } from './row-sums.ts';
import { spotCheck } from './spot-checks.ts';

// The model, derived once here; the constants below refer to it.
//
// 1. One element. A miner computes c_ij = fl(sum_k p_k), p_k = a_ik b_kj, in an order of its choosing: K products
//    (rounded, or fused into the adds by FMA) and K - 1 additions, each forming a partial sum s. Round to nearest
//    leaves an error in [-ulp/2, ulp/2] of the operation's result, and ulp <= 2 u |result| (u = 2^-24), so taking the
//    errors as independent and mean zero (the probabilistic model of Higham & Mary, SISC 2019) with the error
//    uniform over that range,
//        Var(c_ij - (A·B)_ij) <= (u^2 / 3) (sum_s s^2 + sum_k p_k^2).
//    The partial sums depend on the order and the data. For products that are exchangeable along k (their
//    distribution does not change when k is permuted: independent operands, or K shuffled), t of the K products
//    drawn without replacement have E s^2 = (t/K)^2 c^2 + t (K - t) / (K (K - 1)) (sum p^2 - c^2 / K), so a sequential
//    order's partial sums give E sum_s s^2 <= (K + 2) c^2 / 3 + (K + 1) sum p^2 / 6: a drift term from the final value
//    c and a random-walk term. Other orders (pairwise, tiled, split-K, strided, reversed) sum fewer terms per partial
//    sum and stay under the same bound (pairwise: <= 2 c^2 + log2(K) sum p^2). We take
//        V_ij = (u^2 / 3) (K + 2) (c_ij^2 / 3 + sum_k a_ik^2 b_kj^2 / 2),
//    the walk term 3x its expectation: it covers large products early in k (at most K sum p^2), the products' own
//    roundings, and the spread of one matrix around the expectation. Same-sign data are where the drift term rules,
//    random signs the walk term.
//    Outside the model: products whose sign runs are sorted along k (a Haar row against a smooth positive column:
//    the partial sums climb to half of sum |p| and come back to c), and products below f32's normal range (2^-126)
//    on a device that flushes them. Shuffling K when a job is submitted would bring the first under the model.

// 2. A row. With a random vector x, r_i = (C x)_i - (A (B x))_i = sum_j x_j (c_ij - (A·B)_ij), a sum of independent
//    errors (every element has its own), with
//        Var(r_i) <= v_i = sum_j x_j^2 V_ij = (u^2 / 3) (K + 2) (sum_j x_j^2 c_ij^2 / 3 + sum_k a_ik^2 z_k / 2),
//    z_k = sum_j b_kj^2 x_j^2: squares the passes over C, B and A gather beside the products, so the check stays
//    O(rows depth + depth cols + rows cols). r_i sums (K + 1) cols bounded errors: Gaussian for this purpose (a
//    uniform error is sub-Gaussian with its variance as proxy).
//
// 3. Columns judged on their own scale. x_j = ±m_j / ||b_j||_2, m_j a random multiplier in 128..255. Since
//    c_ij^2 <= ||a_i||^2 ||b_j||^2 and sum_k a_ik^2 b_kj^2 <= ||a_i||^2 ||b_j||^2, column j adds at most
//    m_j^2 (5/6) (u^2 / 3) (K + 2) ||a_i||^2 to v_i whatever its scale: a large column cannot hide a small one, and
//    zeroing a column leaves x_j c_ij in every row, about 1 / (u sqrt(K)) times that column's share of the
//    tolerance. A wrong element is caught once it exceeds about ROW_TAIL sqrt(cols) (255 / 128) times its own sigma
//    when its row's columns have alike sigmas relative to their norms: measured on 256x256 units with rows and columns
//    scaled 10^U[-2, 2], 17-33 times its own 8-sigma bound with uniform and normal operands (66-87 at K = 4), at most
//    82 times with ReLU-like or six-decade ones from K = 320 up; but 180-390 times at K = 4-256, where a few products
//    make each element and sigmas differ widely within a row. There the spot checks recompute every element.
//
// 4. Two tests, each with its false-reject probability under the model:
//    - per row and vector, |r_i| <= ROW_TAIL sqrt(v_i) + the check's own f64 error: P(fail) = erfc(8 / sqrt 2)
//      = 1.2e-15. Catches errors in a few elements, rows or columns.
//    - over all N (row, vector) pairs, T = (1/N) sum r^2 / v <= 1 + 2 sqrt(2 L / N) + 4 L / N, L = AGGREGATE_TAIL_LOG:
//      T is a Gaussian quadratic form with E T <= 1 whose eigenvalues are at most 2/N (rows are independent, a row's
//      two vectors may be correlated) and whose squares sum to at most 2/N, so Laurent & Massart (Ann. Stat. 2000,
//      Lemma 1) give P(fail) <= e^-L = 6.9e-13. Catches small errors everywhere: a cheaper precision.
//    - spot checks (spot-checks.ts): S elements recomputed exactly in f64 (S = every element of a result of at most 64
//      or of depth K <= EXACT_MAX_DEPTH = 256, else max(64, rows cols / 1024)), each against ROW_TAIL of its own sigma
//      (9 when every element of a larger result is recomputed), P(fail) <= S * 2.5e-14 (a sum of few bounded roundings
//      is sub-Gaussian, not Gaussian: 2 e^-32; 2 e^-40.5 = 5.2e-18 at 9 sigma), and their mean e^2 / V against
//      Laurent & Massart's chi-square bound, P(fail) <= e^-L. They catch a cheaper precision on thin results, where the
//      row residuals are too few, and hold each chosen element to its own bound: at K <= 256 every element.
//    A 256-row unit: P(honest product rejected) <= 512 * 1.2e-15 + 64 * 2.5e-14 + 2 * 6.9e-13 = 3.6e-12 under the
//    model (K <= 256: 512 * 1.2e-15 + 65536 * 5.2e-18 + 2 * 6.9e-13 = 2.3e-12); a 1-row one (64 columns):
//    2 * 1.2e-15 + 64 * 2.5e-14 + 2 * 6.9e-13 = 3.0e-12.
//
// Measured (bench:verify, 256-row results, K = 1 to 16384, uniform, normal, ReLU-like and six-decade operands):
// honest products in seven summation orders reach at most 0.52 of a test's limit (the worst of every element
// recomputed at K = 256; 0.48 elsewhere), our kernels on lavapipe under 0.5 on 64-row results
// (tests/node-gpu/freivalds-kernels.test.ts); f16 operands score 1.8-3300 times the limit, bf16 15-26000, f16 sums
// 2100 or more (or overflow). The tightest is f16 operands with ReLU-like operands at K = 16384,
// where honest sequential f32 error is within ~4x of the operands' rounding and only the aggregate test tells them
// apart: 1.80 against honest 0.29. With fewer rows the aggregate limit rises (N small): on 1- and 8-row units that
// cheat passed the row residuals at K = 16384 (0.05 and 0.65); the spot checks reject it on 1, 2 and 8 rows at
// 1.2-1.6 (bench:verify; 1.25 the least of 100 random choices on one 8-row product), against honest products' 0.27.
// A single wrong element that its row hides (its own bound far below its row's others: K = 4-256 with ReLU-like or
// six-decade operands) is caught at K <= 256 just above its own bound, every element being recomputed; above that,
// its row catches it by about 82 times its own bound at worst (1000 random elements per K and distribution), and the
// spot checks in the share of checks that recompute it (1 in 1024 on a 256x256 unit).

/** f32 unit roundoff. */
const U32 = 2 ** -24;
/** f64 unit roundoff, for the error of the check's own sums. */
const U64 = 2 ** -53;
/** Per-row test: residuals beyond this many of the model's standard deviations are rejected. */
export const ROW_TAIL = 8;
/** Aggregate test: -ln of its false-reject probability under the model. */
const AGGREGATE_TAIL_LOG = 28;
/** Random vectors: a wrong result whose errors cancel for one escapes the other but with probability 1/256. */
const VECTORS = 2;
/**
 * Multipliers: magnitudes MIN_MULTIPLIER + (byte & 127) with a sign, so 256 distinct nonzero values per random byte,
 * within 2x of each other: for any nonzero errors e of a row, P(e · x = 0) <= 1/256 (fix a j with e_j != 0: whatever
 * the others are, at most one value of x_j zeroes the sum).
 */
const MIN_MULTIPLIER = 128;

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

/** A check's verdict, and how close the result came to each test's limit: rejected iff either fraction exceeds 1. */
export interface FreivaldsCheck {
  verdict: Verdict;
  /** The largest |r_i| less the f64 error, over ROW_TAIL sqrt(v_i): at most 0.33 measured for honest products. */
  rowFraction: number;
  /** sqrt(T / its limit): the residuals' root mean square against the model, over the most f32 rounding explains. */
  aggregateFraction: number;
  /** Spot checks (spot-checks.ts): the worst recomputed element's error less the f64 error, over ROW_TAIL of its own sigma. */
  elementFraction: number;
  /** Spot checks: the recomputed elements' root mean square error against the model, over its limit. */
  spotAggregateFraction: number;
}

/**
 * Accepts a correct f32 product computed in any summation order, and rejects a product with errors that f32
 * rounding does not explain: in one element, row or column (whatever the columns' scales), or small ones everywhere
 * (a cheaper precision). `freivaldsCheck` says by how much; this is its verdict.
 */
export function freivalds(p: Product, random: RandomBytes): Verdict {
  return freivaldsCheck(p, random).verdict;
}

export function freivaldsCheck(p: Product, random: RandomBytes): FreivaldsCheck {
  const { a, b, c, rows, depth, cols } = p;
  if (c.length !== rows * cols) {
    return failed(reject('shape-mismatch', `result has ${c.length} values, expected ${rows}x${cols}`));
  }

  // Column weights from B, then the vectors: x_j = ±m_j / ||b_j|| (a zero column keeps weight 1: its elements must be 0).
  const bColumnSquares = columnSquares(b, depth, cols);
  const randomBytes = new Uint8Array(VECTORS * cols);
  random(randomBytes);
  const x1 = new Float64Array(cols);
  const x2 = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    const weight = bColumnSquares[j] > 0 ? 1 / Math.sqrt(bColumnSquares[j]) : 1;
    x1[j] = multiplier(randomBytes[2 * j]) * weight;
    x2[j] = multiplier(randomBytes[2 * j + 1]) * weight;
  }
  const vectors = { u: x1, v: x2, s: x1.map((x) => x * x), t: x2.map((x) => x * x) };

  // C first: a non-finite element makes its row's sum of c^2 x^2 non-finite (it cannot overflow: |c| < 2^128 and
  // |x| < 2^157), so the check for one costs nothing on a correct product.
  const cSums = rowSums(c, rows, cols, vectors);
  for (let i = 0; i < rows; i++) {
    if (Number.isFinite(cSums.squareS[i])) continue;
    for (let at = i * cols; at < (i + 1) * cols; at++) {
      if (!Number.isFinite(c[at])) return failed(reject('non-finite', `result element ${at} is ${c[at]}`));
    }
  }
  // B: B·x1, B·x2 and z = (B∘B)(x∘x) for each; then A: A·(B·x) and sum_k a_ik^2 z_k.
  const bSums = rowSums(b, depth, cols, vectors);
  const aSums = rowSums(a, rows, depth, { u: bSums.dotU, v: bSums.dotV, s: bSums.squareS, t: bSums.squareT });

  const modelScale = (U32 * U32 / 3) * (depth + 2);
  // The check's own f64 error: gamma_N sum_j |c_ij x_j| <= gamma_N sqrt(cols sum_j c_ij^2 x_j^2) for C·x, and
  // gamma_N sum_k |a_ik| sum_j |b_kj x_j| <= gamma_N sqrt(depth cols sum_k a_ik^2 z_k) for A·(B·x), by Cauchy-Schwarz.
  const gamma = 1.01 * (depth + cols + 2) * U64;
  const passes = [
    { cx: cSums.dotU, cSquares: cSums.squareS, abx: aSums.dotU, aSquares: aSums.squareS },
    { cx: cSums.dotV, cSquares: cSums.squareT, abx: aSums.dotV, aSquares: aSums.squareT },
  ];
  let rowFraction = 0;
  let worst: { row: number; residual: number; bound: number } | undefined;
  let sumOfRatios = 0;
  let checks = 0;
  for (const { cx, cSquares, abx, aSquares } of passes) {
    for (let i = 0; i < rows; i++) {
      const variance = modelScale * (cSquares[i] / 3 + aSquares[i] / 2);
      const f64Error = gamma * (Math.sqrt(cols * cSquares[i]) + Math.sqrt(depth * cols * aSquares[i]));
      const excess = Math.max(0, Math.abs(cx[i] - abx[i]) - f64Error);
      const bound = ROW_TAIL * Math.sqrt(variance);
      // An all-zero row of A and of C has variance 0 and must have no residual beyond the f64 error.
      const fraction = excess === 0 ? 0 : excess / bound;
      if (fraction > rowFraction || Number.isNaN(fraction)) {
        rowFraction = Number.isNaN(fraction) ? Infinity : fraction;
        worst = { row: i, residual: Math.abs(cx[i] - abx[i]), bound: bound + f64Error };
      }
      if (variance > 0) {
        sumOfRatios += (excess * excess) / variance;
        checks++;
      }
    }
  }
  const meanRatio = checks === 0 ? 0 : sumOfRatios / checks;
  const limit = 1 + 2 * Math.sqrt((2 * AGGREGATE_TAIL_LOG) / Math.max(checks, 1)) + (4 * AGGREGATE_TAIL_LOG) / Math.max(checks, 1);
  const aggregateFraction = Math.sqrt(meanRatio / limit);

  const spots = spotCheck(p, random, ROW_TAIL, AGGREGATE_TAIL_LOG);

  let verdict: Verdict = { ok: true };
  if (rowFraction > 1 && worst) {
    verdict = reject(
      'verification-failed',
      `row ${worst.row} of the result is off by ${worst.residual.toPrecision(3)}; f32 rounding explains at most ${worst.bound.toPrecision(3)}`,
    );
  } else if (spots.elementFraction > 1 && spots.worst) {
    const { row, col, error, bound } = spots.worst;
    verdict = reject(
      'verification-failed',
      `element (${row}, ${col}) of the result is off by ${error.toPrecision(3)}; f32 rounding explains at most ${bound.toPrecision(3)} there`,
    );
  } else if (aggregateFraction > 1) {
    verdict = reject(
      'verification-failed',
      `the result's residuals are ${Math.sqrt(meanRatio).toPrecision(3)} times f32 rounding's over ${checks} row checks, ` +
        `where f32 work stays under ${Math.sqrt(limit).toPrecision(3)}: small errors everywhere, as a cheaper precision leaves`,
    );
  } else if (spots.aggregateFraction > 1) {
    verdict = reject(
      'verification-failed',
      `${spots.count} elements recomputed exactly are off by ${Math.sqrt(spots.meanRatio).toPrecision(3)} times f32 rounding's, ` +
        `where f32 work stays under ${Math.sqrt(spots.limit).toPrecision(3)}: small errors everywhere, as a cheaper precision leaves`,
    );
  }
  return { verdict, rowFraction, aggregateFraction, elementFraction: spots.elementFraction, spotAggregateFraction: spots.aggregateFraction };
}

/**
 * The model's standard deviation of one element's honest error, sqrt(V_ij): O(depth), for tests and benches that
 * measure an element's error against its own bound (the check itself never forms it).
 */
export function elementSigma(p: Product, i: number, j: number): number {
  let walk = 0;
  for (let k = 0; k < p.depth; k++) walk += (p.a[i * p.depth + k] * p.b[k * p.cols + j]) ** 2;
  return Math.sqrt((U32 * U32 / 3) * (p.depth + 2) * (p.c[i * p.cols + j] ** 2 / 3 + walk / 2));
}

/** ±(MIN_MULTIPLIER + (byte & 127)), the sign from bit 7. */
function multiplier(byte: number): number {
  const magnitude = MIN_MULTIPLIER + (byte & 0x7f);
  return byte & 0x80 ? -magnitude : magnitude;
}

function failed(verdict: Verdict): FreivaldsCheck {
  return { verdict, rowFraction: Infinity, aggregateFraction: Infinity, elementFraction: Infinity, spotAggregateFraction: Infinity };
}

function reject(code: 'shape-mismatch' | 'non-finite' | 'verification-failed', message: string): Verdict {
  return { ok: false, error: { code, message } };
}
