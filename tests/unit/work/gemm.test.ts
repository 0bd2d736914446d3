import { describe, expect, it } from 'vitest';
import { gemmKind, splitTiles, unitOperands, type GemmJob } from '../../../src/work/gemm/gemm.ts';
import { matmulF32, randomMatrix, seededBytes } from '../../helpers/random.ts';

function job(m: number, n: number, k: number): GemmJob {
  return { id: 'job1', m, n, k, precision: 'f32', a: randomMatrix(m * k, m), b: randomMatrix(k * n, n) };
}

const ctx = (seed: number) => ({ random: seededBytes(seed), runtimes: {} });

describe('gemm kind', () => {
  it('tiles an odd shape so every output element is covered exactly once', () => {
    const units = splitTiles('j', 1000, 700, 900, 256);
    expect(units).toHaveLength(4 * 3);
    const covered = new Uint8Array(1000 * 700);
    for (const u of units) for (let i = 0; i < u.rows; i++) for (let j = 0; j < u.cols; j++) covered[(u.row0 + i) * 700 + u.col0 + j]++;
    expect(covered.every((x) => x === 1)).toBe(true);
    expect(new Set(units.map((u) => u.id)).size).toBe(units.length);
  });

  it('counts 2*M*N*K ops over all units', () => {
    const units = splitTiles('j', 1000, 700, 900, 256);
    expect(units.reduce((s, u) => s + gemmKind.ops(u), 0n)).toBe(2n * 1000n * 700n * 900n);
  });

  it('handles 1x1x1 and primes', async () => {
    for (const [m, n, k] of [[1, 1, 1], [257, 263, 269], [1, 300, 7]]) {
      const j = job(m, n, k);
      const results = new Map<string, Float32Array>();
      for (const u of gemmKind.split(j)) {
        const { a, b } = unitOperands(j, u);
        const tile = matmulF32(a, b, u.rows, u.depth, u.cols);
        expect(await gemmKind.verify(ctx(1), j, u, tile)).toEqual({ ok: true });
        results.set(u.id, tile);
      }
      expect(gemmKind.assemble(j, results)).toEqual(matmulF32(j.a, j.b, m, k, n));
    }
  });

  it('rejects a tile computed for the wrong unit', async () => {
    const j = job(300, 300, 64);
    const [u0, u1] = gemmKind.split(j);
    const { a, b } = unitOperands(j, u1);
    const other = matmulF32(a, b, u1.rows, u1.depth, u1.cols);
    expect((await gemmKind.verify(ctx(2), j, u0, other)).ok).toBe(false);
  });

  it('refuses to assemble with a unit missing', () => {
    const j = job(300, 10, 4);
    expect(() => gemmKind.assemble(j, new Map())).toThrow(/no result/);
  });
});
