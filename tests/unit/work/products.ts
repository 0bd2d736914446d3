// Fixtures for Freivalds' tests and bench:verify: operand distributions, and f32 products as honest miners (in
// several summation orders) and cheating ones (in a cheaper precision) compute them.
import { mulberry32 } from '../../helpers/random.ts';

export const DISTRIBUTIONS = ['uniform', 'normal', 'relu', 'wide'] as const;
/**
 * uniform: U[-1, 1). normal: N(0, 1). relu: max(0, N(0, 1)), for both operands, so every product is >= 0: the partial
 * sums only grow, honest f32 error is largest, and a cheaper precision is hardest to tell apart. wide: ±10^U[-3, 3],
 * six decades (within f16's normal range, so that f16 cheats round rather than overflow).
 */
export type Distribution = (typeof DISTRIBUTIONS)[number];

export function operands(distribution: Distribution, count: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (distribution === 'uniform') out[i] = next() * 2 - 1;
    else if (distribution === 'normal') out[i] = normal();
    else if (distribution === 'relu') out[i] = Math.max(0, normal());
    else out[i] = (next() < 0.5 ? -1 : 1) * 10 ** (next() * 6 - 3);
  }
  return out;
}

export const HONEST_ORDERS = ['sequential', 'sequential-fma', 'reversed', 'vec4', 'pairwise', 'split-k', 'strided'] as const;
/**
 * How an honest miner sums the K products of an element, all in f32. sequential: k = 0..K-1, each product rounded
 * before its add; sequential-fma: the same with fused multiply-adds (one rounding), as our direct kernels compile on
 * many devices; reversed: k = K-1..0; vec4: our vec4 kernels, four products summed then added to the accumulator;
 * pairwise: a binary tree; split-k: 8 sequential slices of K, then their sum; strided: 32 interleaved accumulators
 * (lane l sums k = l mod 32, as a subgroup reduction does), then their sum.
 */
export type HonestOrder = (typeof HONEST_ORDERS)[number];

export const CHEATS = ['f16-operands', 'bf16-operands', 'f16-accumulation'] as const;
/**
 * A cheaper product passed off as f32. f16-operands and bf16-operands: A and B rounded to nearest (ties to even) f16
 * or bf16, the products summed pairwise in f32 (the most accurate sum, so the hardest cheat to see); f16-accumulation:
 * f16 operands, every product and sum rounded to f16.
 */
export type Cheat = (typeof CHEATS)[number];

/** C = A·B (A m x k, B k x n, row-major) as an honest miner in `order` or a cheat computes it. */
export function product(a: Float32Array, b: Float32Array, m: number, k: number, n: number, how: HonestOrder | Cheat): Float32Array {
  let dot: Dot = DOTS[how as HonestOrder] ?? pairwise;
  let left = a;
  let right = b;
  if (how === 'f16-operands' || how === 'bf16-operands') {
    const round = how === 'f16-operands' ? roundToHalf : roundToBfloat16;
    left = a.map(round);
    right = b.map(round);
  } else if (how === 'f16-accumulation') {
    dot = halfAccumulation;
  }
  const bt = new Float32Array(k * n);
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = right[p * n + j];
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[i * n + j] = dot(left, i * k, bt, j * k, k);
  return c;
}

const VELTKAMP_HALF = 2 ** 42 + 1; // splits an f64 at 53 - 42 = 11 significant bits: f16's precision
const ROUND_TO_INTEGER = 1.5 * 2 ** 52;

/** x rounded to the nearest f16 (ties to even), as an f64: subnormals keep 2^-24 steps, beyond 65504 it is infinite. */
export function roundToHalf(x: number): number {
  const magnitude = Math.abs(x);
  if (!Number.isFinite(x) || magnitude >= 65_520) return x > 0 ? Infinity : x < 0 ? -Infinity : x;
  if (magnitude < 2 ** -14) return (x * 2 ** 24 + ROUND_TO_INTEGER - ROUND_TO_INTEGER) / 2 ** 24;
  const split = x * VELTKAMP_HALF;
  return split - (split - x);
}

const bfloat = new Float32Array(1);
const bfloatBits = new Uint32Array(bfloat.buffer);

/** x (an f32) rounded to the nearest bfloat16 (ties to even), as an f32 value. */
export function roundToBfloat16(x: number): number {
  bfloat[0] = x;
  const bits = bfloatBits[0];
  bfloatBits[0] = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  return bfloat[0];
}

type Dot = (a: Float32Array, aAt: number, bt: Float32Array, bAt: number, k: number) => number;
const f = Math.fround;

const sequential: Dot = (a, aAt, bt, bAt, k) => {
  let s = 0;
  for (let p = 0; p < k; p++) s = f(s + f(a[aAt + p] * bt[bAt + p]));
  return s;
};
// The product of two f32 is exact in f64, so one f32 rounding of (s + a * b) is a fused multiply-add.
const sequentialFma: Dot = (a, aAt, bt, bAt, k) => {
  let s = 0;
  for (let p = 0; p < k; p++) s = f(s + a[aAt + p] * bt[bAt + p]);
  return s;
};
const reversed: Dot = (a, aAt, bt, bAt, k) => {
  let s = 0;
  for (let p = k - 1; p >= 0; p--) s = f(s + f(a[aAt + p] * bt[bAt + p]));
  return s;
};
const vec4: Dot = (a, aAt, bt, bAt, k) => {
  let s = 0;
  let p = 0;
  for (; p + 4 <= k; p += 4) {
    const x = aAt + p;
    const y = bAt + p;
    const group = f(f(f(f(a[x] * bt[y]) + f(a[x + 1] * bt[y + 1])) + f(a[x + 2] * bt[y + 2])) + f(a[x + 3] * bt[y + 3]));
    s = f(s + group);
  }
  for (; p < k; p++) s = f(s + a[aAt + p] * bt[bAt + p]);
  return s;
};
function tree(a: Float32Array, aAt: number, bt: Float32Array, bAt: number, lo: number, hi: number): number {
  if (hi - lo === 1) return f(a[aAt + lo] * bt[bAt + lo]);
  if (hi === lo) return 0;
  const mid = (lo + hi) >> 1;
  return f(tree(a, aAt, bt, bAt, lo, mid) + tree(a, aAt, bt, bAt, mid, hi));
}
const pairwise: Dot = (a, aAt, bt, bAt, k) => tree(a, aAt, bt, bAt, 0, k);
const SPLITS = 8;
const splitK: Dot = (a, aAt, bt, bAt, k) => {
  const slice = Math.ceil(k / SPLITS);
  let total = 0;
  for (let start = 0; start < k; start += slice) total = f(total + sequentialFma(a, aAt + start, bt, bAt + start, Math.min(slice, k - start)));
  return total;
};
const LANES = 32;
const lanes = new Float64Array(LANES);
const strided: Dot = (a, aAt, bt, bAt, k) => {
  lanes.fill(0);
  for (let p = 0; p < k; p++) lanes[p % LANES] = f(lanes[p % LANES] + a[aAt + p] * bt[bAt + p]);
  let s = 0;
  for (let l = 0; l < LANES; l++) s = f(s + lanes[l]);
  return s;
};
const halfAccumulation: Dot = (a, aAt, bt, bAt, k) => {
  let s = 0;
  for (let p = 0; p < k; p++) s = roundToHalf(s + roundToHalf(roundToHalf(a[aAt + p]) * roundToHalf(bt[bAt + p])));
  return s;
};

const DOTS: Record<HonestOrder, Dot> = {
  sequential, 'sequential-fma': sequentialFma, reversed, vec4, pairwise, 'split-k': splitK, strided,
};
