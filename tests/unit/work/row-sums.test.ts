import { describe, expect, it } from 'vitest';
import { columnSquares, rowSums, rowSumsModuleBytes, type RowWeights } from '../../../src/work/gemm/row-sums.ts';
import { mulberry32, randomMatrix } from '../../helpers/random.ts';

/** The same sums in plain f64, left to right, and each sum's scale (sum of |terms|) for a relative comparison. */
function reference(x: Float32Array, rows: number, cols: number, { u, v, s, t }: RowWeights) {
  const zeros = () => new Float64Array(rows);
  const [dotU, dotUScale, dotV, dotVScale, squareS, squareSScale, squareT, squareTScale] = [zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros()];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const value = x[i * cols + j];
      dotU[i] += value * u[j];
      dotUScale[i] += Math.abs(value * u[j]);
      dotV[i] += value * v[j];
      dotVScale[i] += Math.abs(value * v[j]);
      squareS[i] += value * value * s[j];
      squareSScale[i] += Math.abs(value * value * s[j]);
      squareT[i] += value * value * t[j];
      squareTScale[i] += Math.abs(value * value * t[j]);
    }
  }
  return { dotU, dotUScale, dotV, dotVScale, squareS, squareSScale, squareT, squareTScale };
}

describe('row sums and column squares in WebAssembly SIMD', () => {
  it('equal a plain f64 computation for odd, prime, single-row and single-column shapes', () => {
    // Big and small shapes interleaved, so that each call reuses memory left behind by a larger one; 257x263 and
    // 9x1031 take several chunks of rows, 2x9001 a chunk per row.
    const shapes = [[1, 1], [1, 7], [5, 1], [3, 2], [4, 3], [2, 4], [13, 17], [1, 4099], [6, 5], [257, 263], [1, 2], [64, 6], [1021, 1], [9, 1031], [2, 9001]];
    for (const [index, [rows, cols]] of shapes.entries()) {
      const next = mulberry32(100 + index);
      const x = randomMatrix(rows * cols, 200 + index, 10 ** Math.floor(next() * 6 - 3));
      const weight = (scale: number) => Float64Array.from({ length: cols }, () => (next() * 2 - 1) * scale);
      const weights = { u: weight(255), v: weight(65_025), s: weight(1e-3), t: weight(1e6) };
      const got = rowSums(x, rows, cols, weights);
      const want = reference(x, rows, cols, weights);
      for (let i = 0; i < rows; i++) {
        const where = `row ${i} of ${rows}x${cols}`;
        expect(Math.abs(got.dotU[i] - want.dotU[i]), where).toBeLessThanOrEqual(1e-12 * want.dotUScale[i]);
        expect(Math.abs(got.dotV[i] - want.dotV[i]), where).toBeLessThanOrEqual(1e-12 * want.dotVScale[i]);
        expect(Math.abs(got.squareS[i] - want.squareS[i]), where).toBeLessThanOrEqual(1e-12 * want.squareSScale[i]);
        expect(Math.abs(got.squareT[i] - want.squareT[i]), where).toBeLessThanOrEqual(1e-12 * want.squareTScale[i]);
      }
      const squares = columnSquares(x, rows, cols);
      expect(squares).toHaveLength(cols);
      for (let j = 0; j < cols; j++) {
        let want = 0;
        for (let i = 0; i < rows; i++) want += x[i * cols + j] ** 2;
        // Summed in f32: each square and add within 2^-24, so (rows + 1) 2^-24 of the sum at most.
        expect(Math.abs(squares[j] - want), `column ${j} of ${rows}x${cols}`).toBeLessThanOrEqual((rows + 1) * 2 ** -24 * want);
      }
    }
  });

  it('gives zeros for rows without columns and nothing for no rows', () => {
    const none = new Float64Array(0);
    const zeros = new Float64Array(3);
    const noWeights = { u: none, v: none, s: none, t: none };
    expect(rowSums(new Float32Array(0), 3, 0, noWeights)).toEqual({ dotU: zeros, dotV: zeros, squareS: zeros, squareT: zeros });
    const five = new Float64Array(5);
    expect(rowSums(new Float32Array(0), 0, 5, { u: five, v: five, s: five, t: five }).dotU).toHaveLength(0);
    expect(columnSquares(new Float32Array(0), 0, 5)).toEqual(new Float64Array(5));
    expect(columnSquares(new Float32Array(0), 3, 0)).toHaveLength(0);
  });

  it('starts every column sum from zero, whatever an earlier call left in the memory', () => {
    columnSquares(Float32Array.from({ length: 4 * 9 }, (_, i) => i + 1), 4, 9);
    expect(columnSquares(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3)).toEqual(new Float64Array([17, 29, 45]));
  });

  it('sums columns in f64 whose squares overflow or underflow f32, and keeps zero columns zero', () => {
    const rows = 5, cols = 6;
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      x[i * cols] = 1e30 * (i + 1); // squares beyond f32's range
      x[i * cols + 1] = 1e-30 * (i + 1); // squares below f32's smallest subnormal
      x[i * cols + 2] = i === 3 ? 1e20 : 1; // one square overflows
      x[i * cols + 4] = (i + 1) / 8; // exact
      x[i * cols + 5] = i === 0 ? 2 ** -64 : 0; // one subnormal square
    }
    const squares = columnSquares(x, rows, cols);
    const want = (j: number) => Array.from({ length: rows }, (_, i) => x[i * cols + j] ** 2).reduce((s, v) => s + v);
    for (const j of [0, 1, 2]) expect(Math.abs(squares[j] - want(j)), `column ${j}`).toBeLessThanOrEqual(1e-15 * want(j));
    expect(squares[3]).toBe(0);
    expect(squares[4]).toBe(want(4));
    expect(squares[5]).toBe(2 ** -128);
  });

  it('refuses a matrix or weights of the wrong length', () => {
    const three = new Float64Array(3);
    const weights = { u: three, v: three, s: three, t: three };
    expect(() => rowSums(new Float32Array(5), 2, 3, weights)).toThrow(/expected 2x3/);
    expect(() => rowSums(new Float32Array(6), 2, 3, { ...weights, t: new Float64Array(2) })).toThrow(/expected 3/);
    expect(() => columnSquares(new Float32Array(5), 2, 3)).toThrow(/expected 2x3/);
  });

  it('is a module small enough for a synchronous compile on a browser main thread (4 KB)', () => {
    expect(rowSumsModuleBytes().length).toBeLessThan(4096);
  });
});
