// Seeded operands for a shape, and the f64 CPU reference every implementation's product is checked against.
import { mulberry32, randomMatrix } from '../../tests/helpers/random.ts';
import type { CheckResult, Shape } from './bench-api.ts';

/**
 * Products up to this many multiply-adds are checked in full (1024^3 takes about 1-3 s in V8 here);
 * larger ones on a seeded sample of whole rows holding about REFERENCE_SAMPLE_MACS multiply-adds.
 */
const REFERENCE_FULL_MACS = 2 ** 30;
const REFERENCE_SAMPLE_MACS = 2 ** 28;

export interface Operands {
  shape: Shape;
  a: Float32Array<ArrayBuffer>;
  b: Float32Array<ArrayBuffer>;
}

export function makeOperands(shape: Shape, seed: number): Operands {
  const { m, k, n } = shape;
  return { shape, a: toOwned(randomMatrix(m * k, seed)), b: toOwned(randomMatrix(k * n, seed + 1)) };
}

function toOwned(x: Float32Array): Float32Array<ArrayBuffer> {
  return new Float32Array(x);
}

export interface Reference {
  reference: CheckResult['reference'];
  /** Row indices of C that `values` holds, ascending. */
  rows: number[];
  /** rows.length x n, f64. */
  values: Float64Array;
  maxAbs: number;
}

/** f64 reference rows of C = A·B: all rows when affordable, else a seeded sample (always the first and last). */
export function referenceRows(ops: Operands, seed: number): Reference {
  const { m, k, n } = ops.shape;
  const macs = m * k * n;
  let rows: number[];
  if (macs <= REFERENCE_FULL_MACS) {
    rows = Array.from({ length: m }, (_, i) => i);
  } else {
    const want = Math.min(m, Math.max(2, Math.floor(REFERENCE_SAMPLE_MACS / (k * n))));
    const chosen = new Set<number>([0, m - 1]);
    const next = mulberry32(seed ^ 0x5eed);
    while (chosen.size < want) chosen.add(Math.floor(next() * m));
    rows = [...chosen].sort((x, y) => x - y);
  }
  const values = new Float64Array(rows.length * n);
  const acc = new Float64Array(n);
  let maxAbs = 0;
  rows.forEach((i, r) => {
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const x = ops.a[i * k + p];
      const bRow = p * n;
      for (let j = 0; j < n; j++) acc[j] += x * ops.b[bRow + j];
    }
    values.set(acc, r * n);
    for (let j = 0; j < n; j++) maxAbs = Math.max(maxAbs, Math.abs(acc[j]));
  });
  return { reference: rows.length === m ? 'full' : 'sampled-rows', rows, values, maxAbs };
}

/** Compares a claimed C (m x n) with the reference rows; a non-finite element makes the error infinite. */
export function compare(c: Float32Array, ref: Reference, shape: Shape): CheckResult {
  const { m, n } = shape;
  if (c.length !== m * n) throw new Error(`product has ${c.length} values, expected ${m}x${n}`);
  let maxAbsError = 0;
  ref.rows.forEach((i, r) => {
    for (let j = 0; j < n; j++) {
      const err = Math.abs(c[i * n + j] - ref.values[r * n + j]);
      maxAbsError = Number.isNaN(err) ? Infinity : Math.max(maxAbsError, err);
    }
  });
  return {
    maxAbsError,
    maxRelError: ref.maxAbs > 0 ? maxAbsError / ref.maxAbs : maxAbsError,
    checkedElements: ref.rows.length * n,
    reference: ref.reference,
    checkedRows: ref.rows.length,
  };
}
