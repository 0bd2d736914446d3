// Exact spot checks of a claimed f32 product: randomly chosen elements recomputed in float64, each against its own
// honest f32 error bound, or at small depth every element. Freivalds' residuals mix a row's elements; these see single
// elements and thin results.
import type { RandomBytes } from '../kind.ts';
import type { Product } from './freivalds.ts';
import { rowSums } from './row-sums.ts';

// Why, beside Freivalds' check (freivalds.ts, whose model and constants this shares):
// - A thin result (1-8 rows) gives the aggregate test only 2-16 row residuals, too few to tell f16 operands from f32
//   rounding where the two are within a few times of each other (ReLU-like operands at K = 16384). Its elements
//   recomputed exactly are S independent samples of the error instead: the mean of e^2 / V over them tells them apart.
// - A row residual weighs an element's error against the whole row's variance: an element whose own bound is far
//   below its row's others hides behind them. That happens where a few products make each element, so that their
//   sizes differ widely within a row: at small K. Measured on 256x256 units with rows and columns scaled 10^U[-2, 2]
//   (up to 1000 elements each off by 100 times its own bound), the rows alone catch every element above 17-33 times
//   its own bound with uniform or normal operands (66-87 at K = 4), and from K = 320 up above 82 times whatever the
//   operands; but only above 250-390 times with ReLU-like operands at K = 4-16 and six-decade ones at K = 4-128, and
//   180 times at K = 256. So up to EXACT_MAX_DEPTH every element is recomputed and held to its own bound; so is every
//   element of a result of at most SPOT_MIN.
//
// Cost: S dot products of length K, about S / (rows cols) of the product's own work, and one pass over B's rows to
// read the chosen run of B's columns. SPOT_SHARE keeps that a fraction of the rest of the check on a full unit; on a
// thin one (a few rows) the SPOT_MIN elements are a large share of the product, as reading B already is. Every element
// of a 256x256 unit is rows cols K multiply-adds, twice over (the sum and its squares for the bound), in row-sums.ts's
// WebAssembly kernel: the whole check took 1.8 ms at K = 16, 2.7 ms at K = 64 and 6.7 ms at K = 256, against 0.28 ms
// at K = 320 (bench:verify, Node 20 on a loaded 2-core machine). Two other ways were weighed and measured worse:
// asking of each element whether its row would catch it at 50 times its own bound (from the lower bound on its sigma
// that |c_ij| gives) and recomputing only the rest flagged 60-80% of the elements of uniform, normal or six-decade
// operands at every K, because a small c_ij says nothing of its products; and more vectors or column groups shrink
// the sqrt(cols) of a row but not the spread of sigmas within it, which is what hides an element.

/** Elements checked: every element of a result this small, at least this many of a larger one. */
export const SPOT_MIN = 64;
/**
 * ...and this share of a larger result's elements: 64 of a 256x256 unit. Measured side by side in Node on a loaded
 * machine, those 64 took a 256x16384x256 unit's check from 10.1 to 15.8 ms (1.4% of its compute at our kernel's
 * recorded SwiftShader rate, bench:verify); 1/256 (256 elements) took it to about 30 ms.
 */
const SPOT_SHARE = 1 / 1024;
/**
 * Every element is recomputed at depths up to this: the rows alone let an element pass at 180 times its own bound at
 * K = 256 (above), at most 82 from K = 320 up.
 */
export const EXACT_MAX_DEPTH = 256;
/**
 * When every element of a larger result is recomputed (up to 65536), each is held to this many of its own sigma rather
 * than ROW_TAIL: P(an honest element fails) <= 2 e^-40.5 = 5.2e-18, so at most 3.4e-13 for a 256x256 unit.
 */
const EXACT_TAIL = 9;
/** f32 and f64 unit roundoffs. */
const U32 = 2 ** -24;
const U64 = 2 ** -53;

export interface SpotCheck {
  /** Elements recomputed. */
  count: number;
  /** The largest |c - exact| less the f64 error over `tail` sigma of its own model: above 1, that element is wrong. */
  elementFraction: number;
  /** The element it came from, and its error and bound, for the verdict's sentence. */
  worst?: { row: number; col: number; error: number; bound: number };
  /** The mean of e^2 / V over the elements, over its limit at `aggregateTailLog` (as a square root). */
  aggregateFraction: number;
  meanRatio: number;
  limit: number;
}

/** How many elements of a rows x cols x depth result are spot-checked, and in what grid of distinct rows and columns. */
export function spotGrid(rows: number, cols: number, depth: number): { rows: number; cols: number } {
  if (depth <= EXACT_MAX_DEPTH) return { rows, cols };
  const wanted = Math.min(rows * cols, Math.max(SPOT_MIN, Math.ceil(rows * cols * SPOT_SHARE)));
  const gridRows = Math.min(rows, Math.ceil(Math.sqrt(wanted)));
  return { rows: gridRows, cols: Math.min(cols, Math.ceil(wanted / gridRows)) };
}

/**
 * Recomputes a random grid of C's elements (distinct rows x a run of columns, so every element is equally likely to
 * be chosen), or all of them (spotGrid), exactly, and scores each against the model's bound: tail * sqrt(V_ij) (EXACT_TAIL
 * when every element of a result larger than SPOT_MIN is recomputed), V_ij = (u^2/3)(K+2)(c^2/3 + sum p^2/2)
 * from the exact value, so that a wrong c cannot widen its own bound. Under the model an element's error is a sum of
 * independent, bounded, mean-zero roundings, sub-Gaussian with variance proxy at most V: P(|e| > 8 sqrt(V)) <=
 * 2 e^-32 = 2.5e-14 per element. Independent elements make sum e^2/V a sum of S such squares: the chi-square bound of
 * Laurent & Massart (its sub-Gaussian form, Hsu, Kakade & Zhang 2012) gives P(mean > 1 + 2 sqrt(L/S) + 2L/S) <= e^-L.
 */
export function spotCheck(p: Product, random: RandomBytes, tail: number, aggregateTailLog: number): SpotCheck {
  const { c, depth, cols } = p;
  const grid = spotGrid(p.rows, cols, depth);
  const every = grid.rows === p.rows && grid.cols === cols;
  // A small result at large depth (every element of at most SPOT_MIN) is faster by the loop: the kernel's passes would
  // each copy a pair of B's columns of length K.
  const { rowsChosen, colsChosen, sums, squareSums } = every && depth <= EXACT_MAX_DEPTH ? everyElement(p) : someElements(p, grid, random);
  const height = rowsChosen.length;
  const width = colsChosen.length;
  const elementTail = every && height * width > SPOT_MIN ? Math.max(tail, EXACT_TAIL) : tail;

  const modelScale = (U32 * U32 / 3) * (depth + 2);
  // The exact sum's own f64 error: at most gamma_K sum |p| <= gamma_K sqrt(K sum p^2) (Cauchy-Schwarz spares the
  // loop a third sum).
  const gamma = 1.01 * (depth + 1) * U64 * Math.sqrt(depth);
  let elementFraction = 0;
  let worst: SpotCheck['worst'];
  let sumOfRatios = 0;
  let samples = 0;
  for (let r = 0; r < height; r++) {
    const i = rowsChosen[r];
    for (let t = 0; t < width; t++) {
      const exact = sums[r * width + t];
      const squares = squareSums[r * width + t];
      const j = colsChosen[t];
      const variance = modelScale * (exact * exact / 3 + squares / 2);
      const error = Math.abs(c[i * cols + j] - exact);
      const f64Error = gamma * Math.sqrt(squares);
      const excess = Math.max(0, error - f64Error);
      const bound = elementTail * Math.sqrt(variance);
      // An element whose products are all zero has bound 0: any difference beyond the f64 error is wrong.
      const fraction = excess === 0 ? 0 : excess / bound;
      if (fraction > elementFraction || Number.isNaN(fraction)) {
        elementFraction = Number.isNaN(fraction) ? Infinity : fraction;
        worst = { row: i, col: j, error, bound: bound + f64Error };
      }
      if (variance > 0) {
        sumOfRatios += (excess * excess) / variance;
        samples++;
      }
    }
  }
  const meanRatio = samples === 0 ? 0 : sumOfRatios / samples;
  // Every element recomputed: judged as if SPOT_MIN were, a looser limit (3.2 against 1.04 for 65536) and so a false
  // reject no likelier. There the per-element test sees a cheaper precision anyway (f16 operands leave an element
  // hundreds of its sigmas off at K <= 256), and honest f32's mean e^2 / V, up to 0.37 measured at K = 4 (the model's
  // sigma is an upper bound), stays as far from the limit as on a sampled check.
  const n = Math.max(1, every ? Math.min(samples, SPOT_MIN) : samples);
  const limit = 1 + 2 * Math.sqrt(aggregateTailLog / n) + (2 * aggregateTailLog) / n;
  return { count: height * width, elementFraction, worst, aggregateFraction: Math.sqrt(meanRatio / limit), meanRatio, limit };
}

/** The chosen elements' exact sums and sums of squared products, row-major over rowsChosen x colsChosen. */
interface Recomputed {
  rowsChosen: Uint32Array;
  colsChosen: Uint32Array;
  sums: Float64Array;
  squareSums: Float64Array;
}

/**
 * A random grid of elements (distinct rows x a run of columns, so every element is equally likely to be chosen), in
 * one pass over B's rows (its memory order): the run of columns shares cache lines, and the sums (at most a few
 * hundred) stay in L1.
 */
function someElements(p: Product, grid: { rows: number; cols: number }, random: RandomBytes): Recomputed {
  const { a, b, depth, cols } = p;
  const rowsChosen = choose(p.rows, grid.rows, random);
  // Columns in a run from a random start (cyclic): each column as likely as any other, and the run shares cache lines
  // of B. Columns chosen apart touched every line of B: twice as slow at K = 16384 (measured with 256 elements).
  const start = choose(cols, 1, random)[0];
  const colsChosen = Uint32Array.from({ length: grid.cols }, (_, t) => (start + t) % cols);
  const height = rowsChosen.length;
  const width = colsChosen.length;
  const sums = new Float64Array(height * width);
  const squareSums = new Float64Array(height * width);
  for (let k = 0; k < depth; k++) {
    const bAt = k * cols;
    for (let r = 0; r < height; r++) {
      const x = a[rowsChosen[r] * depth + k];
      const out = r * width;
      for (let t = 0; t < width; t++) {
        const product = x * b[bAt + colsChosen[t]]; // exact: two f32 make at most 48 bits
        sums[out + t] += product;
        squareSums[out + t] += product * product;
      }
    }
  }
  return { rowsChosen, colsChosen, sums, squareSums };
}

/**
 * Every element, a pair of B's columns at a time: row-sums.ts's kernel sums each row of A against the two columns
 * (exact products: an f32 times an f32 held in f64) and against their squares. 7x faster than a loop like the one
 * above on a 256x256 unit at K = 256 (6.3 against 44 ms, Node 20).
 */
function everyElement(p: Product): Recomputed {
  const { a, b, rows, depth, cols } = p;
  const sums = new Float64Array(rows * cols);
  const squareSums = new Float64Array(rows * cols);
  const u = new Float64Array(depth);
  const v = new Float64Array(depth);
  const s = new Float64Array(depth);
  const t = new Float64Array(depth);
  for (let j = 0; j < cols; j += 2) {
    const pair = j + 1 < cols;
    for (let k = 0; k < depth; k++) {
      const first = b[k * cols + j];
      const second = pair ? b[k * cols + j + 1] : 0;
      u[k] = first;
      v[k] = second;
      s[k] = first * first;
      t[k] = second * second;
    }
    const { dotU, dotV, squareS, squareT } = rowSums(a, rows, depth, { u, v, s, t });
    for (let i = 0; i < rows; i++) {
      sums[i * cols + j] = dotU[i];
      squareSums[i * cols + j] = squareS[i];
      if (!pair) continue;
      sums[i * cols + j + 1] = dotV[i];
      squareSums[i * cols + j + 1] = squareT[i];
    }
  }
  const all = (n: number) => Uint32Array.from({ length: n }, (_, at) => at);
  return { rowsChosen: all(rows), colsChosen: all(cols), sums, squareSums };
}

/** `count` distinct indices of 0..n-1, uniformly (a partial Fisher-Yates shuffle on 32-bit random draws). */
function choose(n: number, count: number, random: RandomBytes): Uint32Array {
  const indices = Uint32Array.from({ length: n }, (_, at) => at);
  if (count >= n) return indices;
  const draws = new Uint32Array(count);
  random(new Uint8Array(draws.buffer));
  for (let at = 0; at < count; at++) {
    // Modulo bias: n <= 2^16 here (a unit's rows or columns), so at most 2^-16 relative, which changes nothing.
    const pick = at + (draws[at] % (n - at));
    [indices[at], indices[pick]] = [indices[pick], indices[at]];
  }
  return indices.subarray(0, count);
}
