import { describe, expect, it } from 'vitest';
import { elementSigma, freivalds, freivaldsCheck, ROW_TAIL } from '../../../src/work/gemm/freivalds.ts';
import { EXACT_MAX_DEPTH } from '../../../src/work/gemm/spot-checks.ts';
import { fromHalves, toHalves } from '../../../src/work/gemm/halves.ts';
import { matmulF32, mulberry32, randomMatrix, seededBytes } from '../../helpers/random.ts';
import { CHEATS, DISTRIBUTIONS, HONEST_ORDERS, operands, product, type Distribution } from './products.ts';

describe('freivalds', () => {
  const m = 512, k = 512, n = 512;
  const a = randomMatrix(m * k, 1);
  const b = randomMatrix(k * n, 2);
  const c = matmulF32(a, b, m, k, n);

  it('accepts a correct 512x512 f32 product', () => {
    expect(freivalds({ a, b, c, rows: m, depth: k, cols: n }, seededBytes(3))).toEqual({ ok: true });
  });

  it('rejects a product with one wrong element', () => {
    for (const [i, j] of [[0, 0], [511, 511], [137, 402]]) {
      const wrong = c.slice();
      wrong[i * n + j] += 1;
      const verdict = freivalds({ a, b, c: wrong, rows: m, depth: k, cols: n }, seededBytes(i + j));
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) expect(verdict.error.code).toBe('verification-failed');
    }
  });

  it('rejects an element off by 5% of its value', () => {
    const wrong = c.slice();
    const at = 300 * n + 17;
    wrong[at] *= 1.05;
    expect(Math.abs(c[at])).toBeGreaterThan(1);
    expect(freivalds({ a, b, c: wrong, rows: m, depth: k, cols: n }, seededBytes(9)).ok).toBe(false);
  });

  it('rejects all zeros, NaN and a wrong shape', () => {
    expect(freivalds({ a, b, c: new Float32Array(m * n), rows: m, depth: k, cols: n }, seededBytes(4)).ok).toBe(false);
    const nan = c.slice();
    nan[5] = NaN;
    const v = freivalds({ a, b, c: nan, rows: m, depth: k, cols: n }, seededBytes(4));
    expect(v.ok ? '' : v.error.code).toBe('non-finite');
    const short = freivalds({ a, b, c: c.subarray(1), rows: m, depth: k, cols: n }, seededBytes(4));
    expect(short.ok ? '' : short.error.code).toBe('shape-mismatch');
  });

  it('accepts correct f32 products at K=4096, with magnitudes far from 1', () => {
    const rows = 48, depth = 4096, cols = 40;
    for (const [seed, scale] of [[10, 1], [20, 1e3], [30, 1e-3]] as const) {
      const a2 = randomMatrix(rows * depth, seed, scale);
      const b2 = randomMatrix(depth * cols, seed + 1, scale);
      // Worst case for rounding: all positive operands, so partial sums grow without cancelling.
      const a3 = a2.map(Math.abs);
      const b3 = b2.map(Math.abs);
      for (const [x, y] of [[a2, b2], [a3, b3]]) {
        const c2 = matmulF32(x, y, rows, depth, cols);
        expect(freivalds({ a: x, b: y, c: c2, rows, depth, cols }, seededBytes(seed))).toEqual({ ok: true });
      }
    }
  });

  it('accepts an exact zero product of zero operands', () => {
    const z = new Float32Array(16);
    expect(freivalds({ a: z, b: z, c: z, rows: 4, depth: 4, cols: 4 }, seededBytes(1))).toEqual({ ok: true });
  });
});

describe('freivalds with signs and 256-valued multipliers', () => {
  it('catches a two-element cancelling error in at least 240 of 256 trials', () => {
    // C[i][j] += d and C[i][k] -= d leaves a residual d * (r_j - r_k): for the signs zero half the time, for the
    // multipliers only when the two columns draw the same one (1 in 256), and far above their tolerance otherwise.
    // Misses per 256 trials are then about Poisson(0.5): 17 or more has probability ~1e-20, while ±1 signs alone miss
    // half the time in one round, a quarter in two.
    const rows = 32, depth = 48, cols = 40, d = 8;
    const a = randomMatrix(rows * depth, 11);
    const b = randomMatrix(depth * cols, 12);
    const c = matmulF32(a, b, rows, depth, cols);
    let caught = 0;
    for (let trial = 0; trial < 256; trial++) {
      const i = trial % rows;
      const j = (trial * 7) % cols;
      const k = (j + 1 + (trial % (cols - 1))) % cols;
      const wrong = c.slice();
      wrong[i * cols + j] += d;
      wrong[i * cols + k] -= d;
      const verdict = freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(1000 + trial));
      if (!verdict.ok && verdict.error.code === 'verification-failed') caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(240);
  });

  it('accepts odd shapes when correct and rejects them with one wrong element', () => {
    for (const [rows, depth, cols] of [[1, 1, 1], [7, 13, 5], [1, 4096, 3]]) {
      const a = randomMatrix(rows * depth, rows + depth);
      const b = randomMatrix(depth * cols, depth + cols);
      const c = matmulF32(a, b, rows, depth, cols);
      for (let seed = 0; seed < 8; seed++) {
        expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(seed))).toEqual({ ok: true });
        // First, last and a middle element, each off by 4: at least 3x the tolerance of 1x4096x3 for any multipliers.
        for (const at of [0, rows * cols - 1, Math.floor((rows * cols) / 2)]) {
          const wrong = c.slice();
          wrong[at] += 4;
          const verdict = freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(seed));
          expect(verdict.ok ? '' : verdict.error.code).toBe('verification-failed');
        }
      }
    }
  });

  it('reports the first non-finite element, even after rows that are wrong', () => {
    const rows = 7, depth = 13, cols = 5;
    const a = randomMatrix(rows * depth, 5);
    const b = randomMatrix(depth * cols, 6);
    for (const bad of [Infinity, -Infinity, NaN]) {
      const c = matmulF32(a, b, rows, depth, cols);
      c[0] += 100;
      c[4 * cols + 3] = bad;
      c[6 * cols + 1] = NaN;
      const verdict = freivalds({ a, b, c, rows, depth, cols }, seededBytes(7));
      expect(verdict).toEqual({ ok: false, error: { code: 'non-finite', message: `result element ${4 * cols + 3} is ${bad}` } });
    }
  });
});

/** Operands whose rows (A) and columns (B) have scales 10^U[-2, 2]. */
function scaledOperands(rows: number, depth: number, cols: number, seed: number): { a: Float32Array; b: Float32Array } {
  const next = mulberry32(seed);
  const rowScale = Array.from({ length: rows }, () => 10 ** (next() * 4 - 2));
  const colScale = Array.from({ length: cols }, () => 10 ** (next() * 4 - 2));
  const a = operands('normal', rows * depth, seed + 1).map((v, at) => v * rowScale[Math.floor(at / depth)]);
  const b = operands('normal', depth * cols, seed + 2).map((v, at) => v * colScale[at % cols]);
  return { a, b };
}

describe('freivalds against a cheaper precision', () => {
  // 64 rows: a quarter of a full unit, so the aggregate test has fewer rows to go on than it usually has.
  const rows = 64, cols = 16;

  it('accepts honest f32 products in every summation order, for every operand distribution, at K = 16 to 16384', () => {
    for (const depth of [16, 256, 4096, 16384]) {
      for (const distribution of DISTRIBUTIONS) {
        const a = operands(distribution, rows * depth, depth + 1);
        const b = operands(distribution, depth * cols, depth + 2);
        for (const order of HONEST_ORDERS) {
          const c = product(a, b, rows, depth, cols, order);
          expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(depth)), `${order}, ${distribution}, K = ${depth}`).toEqual({ ok: true });
        }
      }
    }
  });

  it('rejects f32 products computed from f16 or bf16 operands, or with f16 sums, at K = 16 to 16384', () => {
    for (const depth of [16, 256, 1024, 4096, 16384]) {
      for (const distribution of DISTRIBUTIONS) {
        const a = operands(distribution, rows * depth, depth + 1);
        const b = operands(distribution, depth * cols, depth + 2);
        for (const cheat of CHEATS) {
          const c = product(a, b, rows, depth, cols, cheat);
          const verdict = freivalds({ a, b, c, rows, depth, cols }, seededBytes(depth));
          // f16 sums of wide operands overflow to infinity: rejected as non-finite, which is as good.
          expect(verdict.ok, `${cheat}, ${distribution}, K = ${depth}`).toBe(false);
        }
      }
    }
  });

  it('accepts f16 jobs: halves summed in f32 in any order, checked as the f32 product of their exact values', () => {
    const depth = 4096;
    const a = fromHalves(toHalves(operands('normal', rows * depth, 5)));
    const b = fromHalves(toHalves(operands('relu', depth * cols, 6)));
    for (const order of HONEST_ORDERS) {
      const c = product(a, b, rows, depth, cols, order);
      expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(7)), order).toEqual({ ok: true });
    }
  });
});

describe('freivalds with columns and rows of different scales', () => {
  it('rejects zeros in place of the 65 smallest of 256 columns when their scales span 10^-2 to 10^2, at K = 1024 and 4096', () => {
    const rows = 64, cols = 256;
    for (const depth of [1024, 4096]) {
      const next = mulberry32(depth);
      const scale = Array.from({ length: cols }, () => 10 ** (next() * 4 - 2));
      const a = operands('normal', rows * depth, depth + 1);
      const b = operands('normal', depth * cols, depth + 2).map((v, at) => v * scale[at % cols]);
      const c = product(a, b, rows, depth, cols, 'sequential-fma');
      expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(1))).toEqual({ ok: true });
      const smallest = new Set([...scale.keys()].sort((x, y) => scale[x] - scale[y]).slice(0, 65));
      const skipped = c.map((v, at) => (smallest.has(at % cols) ? 0 : v));
      expect(freivalds({ a, b, c: skipped, rows, depth, cols }, seededBytes(1)).ok, `K = ${depth}`).toBe(false);
    }
  });

  it('rejects zeros in every other column when one column is 10^4 times the rest, at K = 4096', () => {
    const rows = 32, depth = 4096, cols = 256;
    const a = operands('normal', rows * depth, 11);
    const b = operands('normal', depth * cols, 12).map((v, at) => (at % cols === 100 ? v * 1e4 : v));
    const c = product(a, b, rows, depth, cols, 'sequential-fma');
    expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(2))).toEqual({ ok: true });
    const onlyTheLarge = c.map((v, at) => (at % cols === 100 ? v : 0));
    expect(freivalds({ a, b, c: onlyTheLarge, rows, depth, cols }, seededBytes(2)).ok).toBe(false);
  });

  it('rejects one element off by 24% of its row\'s RMS at K = 4096', () => {
    const rows = 32, depth = 4096, cols = 256;
    const a = operands('normal', rows * depth, 21);
    const b = operands('normal', depth * cols, 22);
    const c = product(a, b, rows, depth, cols, 'sequential-fma');
    for (const [i, j] of [[0, 0], [17, 200], [31, 255]]) {
      let squares = 0;
      for (let jj = 0; jj < cols; jj++) squares += c[i * cols + jj] ** 2;
      const wrong = c.slice();
      wrong[i * cols + j] += 0.24 * Math.sqrt(squares / cols);
      expect(freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(i + j)).ok, `element ${i}, ${j}`).toBe(false);
    }
  });

  it('rejects any element off by 100 times its own honest bound (8 sigma of the model), whatever the rows\' and columns\' scales', () => {
    const rows = 32, depth = 1024, cols = 256;
    const { a, b } = scaledOperands(rows, depth, cols, 31);
    const c = product(a, b, rows, depth, cols, 'sequential');
    expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(3))).toEqual({ ok: true });
    const next = mulberry32(32);
    for (let trial = 0; trial < 40; trial++) {
      const i = Math.floor(next() * rows);
      const j = Math.floor(next() * cols);
      const wrong = c.slice();
      wrong[i * cols + j] += (next() < 0.5 ? -1 : 1) * 100 * ROW_TAIL * elementSigma({ a, b, c, rows, depth, cols }, i, j);
      expect(freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(100 + trial)).ok, `element ${i}, ${j}`).toBe(false);
    }
  });

  it('rejects a zeroed row or column, whatever the rows\' and columns\' scales', () => {
    const rows = 32, depth = 1024, cols = 64;
    const { a, b } = scaledOperands(rows, depth, cols, 41);
    const c = product(a, b, rows, depth, cols, 'pairwise');
    for (let i = 0; i < rows; i++) {
      const wrong = c.map((v, at) => (Math.floor(at / cols) === i ? 0 : v));
      expect(freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(i)).ok, `row ${i}`).toBe(false);
    }
    for (let j = 0; j < cols; j++) {
      const wrong = c.map((v, at) => (at % cols === j ? 0 : v));
      expect(freivalds({ a, b, c: wrong, rows, depth, cols }, seededBytes(j)).ok, `column ${j}`).toBe(false);
    }
  });
});

describe('freivalds on thin results and single elements: elements recomputed exactly', () => {
  const cols = 64;

  it('rejects f16 or bf16 operands and f16 sums on 1- and 8-row results at K = 16 to 16384, and accepts honest f32 in every order', () => {
    // Two to sixteen row residuals leave the aggregate test too little to go on: with ReLU-like operands at K = 16384,
    // f16 operands used to pass on such results. The recomputed elements tell them apart.
    for (const rows of [1, 8]) {
      for (const depth of [16, 256, 4096, 16384]) {
        for (const distribution of DISTRIBUTIONS) {
          const a = operands(distribution, rows * depth, depth + rows);
          const b = operands(distribution, depth * cols, depth + 2);
          const what = `${rows} rows, ${distribution}, K = ${depth}`;
          for (const order of HONEST_ORDERS) {
            const c = product(a, b, rows, depth, cols, order);
            expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(depth + rows)), `${order}, ${what}`).toEqual({ ok: true });
          }
          for (const cheat of CHEATS) {
            const c = product(a, b, rows, depth, cols, cheat);
            expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(depth + rows)).ok, `${cheat}, ${what}`).toBe(false);
          }
        }
      }
    }
  });

  it('holds every element of a small result to its own bound, where its row would hide it, whatever the operands', () => {
    // K = 16 and six-decade or ReLU-like operands: an element's own bound can be thousands of times below its row's
    // others, so its row's residual alone lets it be off by that much. 64 elements are each recomputed.
    const depth = 16;
    for (const [rows, width] of [[1, 64], [4, 16]]) {
      for (const distribution of ['wide', 'relu', 'normal'] as const) {
        const a = operands(distribution, rows * depth, rows + 50);
        const b = operands(distribution, depth * width, rows + 51);
        const p = { a, b, c: product(a, b, rows, depth, width, 'sequential'), rows, depth, cols: width };
        expect(freivalds(p, seededBytes(rows)), distribution).toEqual({ ok: true });
        for (let at = 0; at < rows * width; at++) {
          const sigma = elementSigma(p, Math.floor(at / width), at % width);
          if (sigma === 0) continue; // all its products are 0: off by anything is off beyond the f64 error
          const c = p.c.slice();
          c[at] += (at % 2 ? -1 : 1) * 2 * ROW_TAIL * sigma;
          const verdict = freivalds({ ...p, c }, seededBytes(at));
          expect(verdict.ok ? '' : verdict.error.message, `${distribution}, ${rows}x${width}, element ${at}`).toMatch(/off by/);
        }
      }
    }
  });

  it('recomputes a random share of a larger result\'s elements above EXACT_MAX_DEPTH, so any element off by its own bound is caught that often', () => {
    // 32x256 at K = 320, just above the depth to which every element is recomputed: 64 of 8192 elements recomputed per
    // check. An element of a six-decade product that its row hides at 50 times its own bound, off by 3 times it:
    // caught when chosen, about 1 check in 128.
    const rows = 32, depth = EXACT_MAX_DEPTH + 64, width = 256;
    const a = operands('wide', rows * depth, 61);
    const b = operands('wide', depth * width, 62);
    const p = { a, b, c: product(a, b, rows, depth, width, 'pairwise'), rows, depth, cols: width };
    let hidden = -1;
    for (let at = 0; at < rows * width && hidden < 0; at++) {
      const c = p.c.slice();
      c[at] += 50 * ROW_TAIL * elementSigma(p, Math.floor(at / width), at % width);
      if (elementSigma(p, Math.floor(at / width), at % width) > 0 && freivalds({ ...p, c }, seededBytes(0)).ok) hidden = at;
    }
    expect(hidden, 'an element its row hides at 50 times its bound').toBeGreaterThanOrEqual(0);
    const c = p.c.slice();
    c[hidden] += 3 * ROW_TAIL * elementSigma(p, Math.floor(hidden / width), hidden % width);
    let caught = 0;
    for (let seed = 0; seed < 2048; seed++) if (!freivalds({ ...p, c }, seededBytes(seed)).ok) caught++;
    // Binomial(2048, 1/128): mean 16; 4 or fewer, or 40 or more, each have probability below 1e-4.
    expect(caught).toBeGreaterThan(4);
    expect(caught).toBeLessThan(40);
  });
});

describe('freivalds at small depth: every element held to its own bound, whatever the rows\' and columns\' scales', () => {
  // Issue 19 part 2: at small K a few products make each element, so their sizes, and their honest error bounds, differ
  // by orders of magnitude within a row, and a row's residual let one element pass at 250-390 times its own bound
  // (ReLU-like and six-decade operands, rows and columns scaled 10^U[-2, 2]). A full 256x256 unit, each element in turn
  // off by just over 100 times its own bound (8 sigma of the model) at random places: rejected every time.
  const rows = 256, cols = 256;
  const depths = [1, 4, 16, 32, 64, EXACT_MAX_DEPTH, 2 * EXACT_MAX_DEPTH];

  function scaled(distribution: Distribution, depth: number): { a: Float32Array; b: Float32Array } {
    const next = mulberry32(depth * 7 + DISTRIBUTIONS.indexOf(distribution));
    const rowScale = Array.from({ length: rows }, () => 10 ** (next() * 4 - 2));
    const colScale = Array.from({ length: cols }, () => 10 ** (next() * 4 - 2));
    const a = operands(distribution, rows * depth, depth + 11).map((v, at) => v * rowScale[Math.floor(at / depth)]);
    const b = operands(distribution, depth * cols, depth + 12).map((v, at) => v * colScale[at % cols]);
    return { a, b };
  }

  it('rejects one element off by 101 times its own bound at K = 1 to 512, at 40 random places each, and accepts the honest products', () => {
    for (const depth of depths) {
      for (const distribution of ['wide', 'relu', 'normal'] as const) {
        const { a, b } = scaled(distribution, depth);
        const what = `${distribution}, K = ${depth}`;
        for (const order of ['sequential', 'sequential-fma', 'pairwise', 'strided'] as const) {
          const c = product(a, b, rows, depth, cols, order);
          expect(freivalds({ a, b, c, rows, depth, cols }, seededBytes(depth)), `${order}, ${what}`).toEqual({ ok: true });
        }
        const p = { a, b, c: product(a, b, rows, depth, cols, 'sequential-fma'), rows, depth, cols };
        const next = mulberry32(depth + 1000);
        for (let trial = 0; trial < 40; trial++) {
          const i = Math.floor(next() * rows);
          const j = Math.floor(next() * cols);
          const sigma = elementSigma(p, i, j);
          const c = p.c.slice();
          // An element whose products are all zero (ReLU-like operands at small K) has bound 0: any error is caught.
          c[i * cols + j] += (next() < 0.5 ? -1 : 1) * (sigma > 0 ? 101 * ROW_TAIL * sigma : 1e-30);
          const verdict = freivalds({ ...p, c }, seededBytes(trial));
          expect(verdict.ok ? '' : verdict.error.code, `element (${i}, ${j}), ${what}`).toBe('verification-failed');
        }
      }
    }
  });

  it('names the element that is off, held to its own bound rather than its row\'s, up to EXACT_MAX_DEPTH', () => {
    // Just over twice its own bound: far inside its row's tolerance, so only its own recomputation sees it.
    for (const depth of [4, EXACT_MAX_DEPTH]) {
      const { a, b } = scaled('wide', depth);
      const p = { a, b, c: product(a, b, rows, depth, cols, 'pairwise'), rows, depth, cols };
      const next = mulberry32(depth + 2000);
      for (let trial = 0; trial < 10; trial++) {
        const i = Math.floor(next() * rows);
        const j = Math.floor(next() * cols);
        const sigma = elementSigma(p, i, j);
        if (sigma === 0) continue;
        const c = p.c.slice();
        c[i * cols + j] += 2.5 * ROW_TAIL * sigma;
        const check = freivaldsCheck({ ...p, c }, seededBytes(trial));
        expect(check.rowFraction, `the row alone lets (${i}, ${j}) pass, K = ${depth}`).toBeLessThan(1);
        expect(check.verdict.ok ? '' : check.verdict.error.message, `K = ${depth}`).toMatch(`element (${i}, ${j}) of the result is off by`);
      }
    }
  });
});
