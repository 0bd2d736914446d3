import { describe, expect, it } from 'vitest';
import { rowSums, rowSumsModuleBytes } from '../../../src/work/gemm/row-sums.ts';
import { mulberry32, randomMatrix } from '../../helpers/random.ts';

/** The same sums in plain f64, left to right, and each sum's scale (sum of |terms|) for a relative comparison. */
function reference(x: Float32Array, rows: number, cols: number, u: Float64Array, v: Float64Array) {
  const zeros = () => new Float64Array(rows);
  const [dotU, dotUScale, dotV, dotVScale, square, abs] = [zeros(), zeros(), zeros(), zeros(), zeros(), zeros()];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const value = x[i * cols + j];
      dotU[i] += value * u[j];
      dotUScale[i] += Math.abs(value * u[j]);
      dotV[i] += value * v[j];
      dotVScale[i] += Math.abs(value * v[j]);
      square[i] += value * value;
      abs[i] += Math.abs(value);
    }
  }
  return { dotU, dotUScale, dotV, dotVScale, square, abs };
}

describe('row sums in WebAssembly SIMD', () => {
  it('equal a plain f64 computation for odd, prime, single-row and single-column shapes', () => {
    // Big and small shapes interleaved, so that each call reuses memory left behind by a larger one; 257x263 and
    // 9x1031 take several chunks of rows, 2x9001 a chunk per row.
    const shapes = [[1, 1], [1, 7], [5, 1], [3, 2], [4, 3], [2, 4], [13, 17], [1, 4099], [6, 5], [257, 263], [1, 2], [64, 6], [1021, 1], [9, 1031], [2, 9001]];
    for (const [index, [rows, cols]] of shapes.entries()) {
      const next = mulberry32(100 + index);
      const x = randomMatrix(rows * cols, 200 + index, 10 ** Math.floor(next() * 6 - 3));
      const u = Float64Array.from({ length: cols }, () => (next() * 2 - 1) * 255);
      const v = Float64Array.from({ length: cols }, () => (next() * 2 - 1) * 65_025);
      const got = rowSums(x, rows, cols, u, v);
      const want = reference(x, rows, cols, u, v);
      for (let i = 0; i < rows; i++) {
        const where = `row ${i} of ${rows}x${cols}`;
        expect(Math.abs(got.dotU[i] - want.dotU[i]), where).toBeLessThanOrEqual(1e-12 * want.dotUScale[i]);
        expect(Math.abs(got.dotV[i] - want.dotV[i]), where).toBeLessThanOrEqual(1e-12 * want.dotVScale[i]);
        expect(Math.abs(got.square[i] - want.square[i]), where).toBeLessThanOrEqual(1e-12 * want.square[i]);
        expect(Math.abs(got.abs[i] - want.abs[i]), where).toBeLessThanOrEqual(1e-12 * want.abs[i]);
      }
    }
  });

  it('gives zeros for rows without columns and nothing for no rows', () => {
    const none = new Float64Array(0);
    const zeros = new Float64Array(3);
    expect(rowSums(new Float32Array(0), 3, 0, none, none)).toEqual({ dotU: zeros, dotV: zeros, square: zeros, abs: zeros });
    expect(rowSums(new Float32Array(0), 0, 5, new Float64Array(5), new Float64Array(5)).dotU).toHaveLength(0);
  });

  it('refuses a matrix or vectors of the wrong length', () => {
    expect(() => rowSums(new Float32Array(5), 2, 3, new Float64Array(3), new Float64Array(3))).toThrow(/expected 2x3/);
    expect(() => rowSums(new Float32Array(6), 2, 3, new Float64Array(2), new Float64Array(3))).toThrow(/expected 3/);
  });

  it('is a module small enough for a synchronous compile on a browser main thread (4 KB)', () => {
    expect(rowSumsModuleBytes().length).toBeLessThan(4096);
  });
});
