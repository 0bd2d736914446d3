import { describe, expect, it } from 'vitest';
import { gemmKind, MAX_SPAN_BLOCK_BYTES, splitTiles, unitOperands, type GemmJob, type GemmUnit } from '../../../src/work/gemm/gemm.ts';
import { matmulF32, randomMatrix, seededBytes } from '../../helpers/random.ts';
import { operands, product } from './products.ts';

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

  it('cuts rows in equal shares, so no unit is left a few rows', () => {
    expect(splitTiles('j', 300, 10, 4, 256).map((u) => u.rows)).toEqual([150, 150]);
    expect(splitTiles('j', 257, 10, 4, 256).map((u) => u.rows)).toEqual([129, 128]);
    expect(splitTiles('j', 1000, 10, 4, 256).map((u) => u.rows)).toEqual([250, 250, 250, 250]);
    expect(splitTiles('j', 40, 10, 4, 256).map((u) => u.rows)).toEqual([40]);
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

  it('sums the depth in a random order, so sign-sorted data honestly summed in order is not rejected', async () => {
    // A Haar-like row (+ then -) against smooth positive columns: summed in order, the partial sums climb to half of
    // sum |p| and come back, which the rounding model (exchangeable terms) does not cover.
    const [m, n, k] = [32, 32, 4096];
    const a = new Float32Array(m * k).map((_, at) => ((at % k) < k / 2 ? 1 : -1) * (1 + Math.floor(at / k) / m));
    const b = new Float32Array(k * n).map((_, at) => 1 + 0.001 * Math.sin(Math.floor(at / n) / 100 + (at % n)) + 0.001 * (Math.floor(at / n) % 7));
    const body = new Uint8Array(Float32Array.from([...a, ...b]).buffer);
    const created = gemmKind.createJob('sorted', { m, n, k, precision: 'f32' }, body);
    if (!created.ok) throw new Error(created.error.message);
    const shuffled = created.value.job;
    expect([...shuffled.a.subarray(0, k)].sort()).toEqual([...a.subarray(0, k)].sort());
    expect(shuffled.a.subarray(0, k)).not.toEqual(a.subarray(0, k));
    const [unit] = gemmKind.split(shuffled);
    expect(await gemmKind.verify(ctx(3), shuffled, unit, matmulF32(shuffled.a, shuffled.b, m, k, n))).toEqual({ ok: true });
    // The same honest sum over the requester's own order is outside the model: why the job is shuffled.
    const inOrder: GemmJob = { id: 'sorted', m, n, k, precision: 'f32', a, b };
    expect((await gemmKind.verify(ctx(3), inOrder, unit, matmulF32(a, b, m, k, n))).ok).toBe(false);
  });

  it('joins tiles down one column into a span, stopping at a gap, at the count, and at the block limit', () => {
    const j = job(1000, 512, 16);
    const units = gemmKind.split(j); // 4 row tiles of 250 x 2 column tiles of 256, row-major
    const span = (first: GemmUnit, waiting: GemmUnit[], count: number) => gemmKind.span?.(j, first, waiting, count);
    const column0 = units.filter((u) => u.col0 === 0);
    const joined = span(column0[0], units.slice(1), 16);
    expect(joined?.parts.map((u) => u.id)).toEqual(column0.map((u) => u.id));
    expect(joined?.unit).toMatchObject({ row0: 0, rows: 1000, col0: 0, cols: 256, depth: 16 });
    expect(gemmKind.ops(joined?.unit as GemmUnit)).toBe(column0.reduce((s, u) => s + gemmKind.ops(u), 0n));
    // Its lease names each tile's own A block, as the tile's lease would, and the column's B.
    const blocks = gemmKind.leasePayload(j, joined?.unit as GemmUnit).blocks ?? {};
    expect(Object.keys(blocks).sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'b']);
    for (const [i, tile] of column0.entries()) {
      const own = gemmKind.leasePayload(j, tile).blocks?.a;
      expect(blocks[`a${i}`].key).toBe(own?.key);
      expect(blocks[`a${i}`].bytes()).toEqual(own?.bytes());
    }
    expect(blocks.b.key).toBe(gemmKind.leasePayload(j, column0[0]).blocks?.b.key);
    expect(span(column0[0], units.slice(1), 2)?.parts.map((u) => u.row0)).toEqual([0, 250]);
    // A tile leased elsewhere breaks the span there; a tile with none below it joins nothing.
    expect(span(column0[0], units.filter((u) => u !== column0[2]), 16)?.parts.map((u) => u.row0)).toEqual([0, 250]);
    expect(span(column0[3], units, 16)).toBeUndefined();
    // At K = 16384 a 256-row f32 block is 16 MiB: two make the largest span block.
    const deep = job(1024, 256, 16_384);
    const tiles = gemmKind.split(deep);
    const limited = gemmKind.span?.(deep, tiles[0], tiles.slice(1), 16);
    expect(limited?.parts).toHaveLength(MAX_SPAN_BLOCK_BYTES / (256 * 16_384 * 4));
  });

  it('verifies a span as one product and cuts it into each tile\'s result, which assemble exactly', async () => {
    const j = job(1000, 300, 24);
    const units = gemmKind.split(j);
    const results = new Map<string, Float32Array>();
    for (const first of units.filter((u) => u.row0 === 0)) {
      const joined = gemmKind.span?.(j, first, units, 16);
      if (!joined) throw new Error(`no span below ${first.id}`);
      const { a, b } = unitOperands(j, joined.unit);
      const product = matmulF32(a, b, joined.unit.rows, joined.unit.depth, joined.unit.cols);
      expect(await gemmKind.verify(ctx(3), j, joined.unit, product)).toEqual({ ok: true });
      const wrong = product.slice();
      wrong[wrong.length - 1] += 1;
      expect((await gemmKind.verify(ctx(3), j, joined.unit, wrong)).ok).toBe(false);
      for (const part of joined.parts) results.set(part.id, gemmKind.partResult?.(j, joined.unit, product, part) as Float32Array);
    }
    expect(gemmKind.assemble(j, results)).toEqual(matmulF32(j.a, j.b, 1000, 24, 300));
  });

  it('checks a span tile by tile: one tile of sixteen computed from f16 operands is rejected, and named', async () => {
    // ReLU-like operands at K = 16384: where f16 operands come closest to honest f32, and where averaging a span's
    // rows together would dilute the aggregate tests.
    const [tiles, cols, depth] = [16, 8, 16_384];
    const rows = tiles * 256;
    const j: GemmJob = { id: 'j', m: rows, n: cols, k: depth, precision: 'f32', a: operands('relu', rows * depth, 1), b: operands('relu', depth * cols, 2) };
    const units = gemmKind.split(j);
    const span: GemmUnit = { ...units[0], id: 'j.0.0:16', rows, tileRows: 256 };
    const c = product(j.a, j.b, rows, depth, cols, 'sequential');
    expect(await gemmKind.verify(ctx(5), j, span, c)).toEqual({ ok: true });
    c.set(product(j.a.subarray(15 * 256 * depth), j.b, 256, depth, cols, 'f16-operands'), 15 * 256 * cols);
    const verdict = await gemmKind.verify(ctx(5), j, span, c);
    expect(verdict).toMatchObject({ ok: false, error: { code: 'verification-failed' } });
    expect(verdict.ok ? '' : verdict.error.message).toMatch(/^tile 3840: /);
  }, 120_000);
});

