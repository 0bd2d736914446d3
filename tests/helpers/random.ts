// Seeded randomness for fixtures: the same seed gives the same operands on every run.
import type { RandomBytes } from '../../src/work/kind.ts';

export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seededBytes(seed: number): RandomBytes {
  const next = mulberry32(seed);
  return (into) => {
    for (let i = 0; i < into.length; i++) into[i] = Math.floor(next() * 256);
  };
}

/** Uniform values in [-1, 1). */
export function randomMatrix(count: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/** C = A·B accumulated in f32, as a GPU kernel would. */
export function matmulF32(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  const row = new Float32Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) row[j] = Math.fround(row[j] + Math.fround(x * b[p * n + j]));
    }
    c.set(row, i * n);
  }
  return c;
}

/** C = A·B accumulated in f64: the reference a requester would check against. */
export function matmulF64(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

/** Largest |got - want| relative to the largest |want| (absolute when want is all zeros). */
export function maxRelativeError(got: Float32Array, want: Float64Array): number {
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return maxRef === 0 ? maxErr : maxErr / maxRef;
}

/** A claimed product's error against A·B accumulated in f64. */
export function productError(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number): number {
  return maxRelativeError(c, matmulF64(a, b, m, k, n));
}
