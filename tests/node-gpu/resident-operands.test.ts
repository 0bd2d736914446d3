// Operands kept on the GPU across units (Dawn in Node): a unit naming a resident B uploads only its A, products
// stay right, and the budget bounds what stays.
// The helper comes first: it installs WebGPU's globals, which gemm.ts reads when it loads.
import { useNodeDevice } from '../helpers/node-gpu.ts';
import { describe, expect, test } from 'vitest';
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import { productError, randomMatrix } from '../helpers/random.ts';

describe('resident operands on Dawn in Node', () => {
  const gpu = useNodeDevice();
  const [m, k, n] = [64, 96, 64];
  const BLOCK_BYTES = k * n * 4;

  test('units down one column upload B once and compute every product right, two in flight at once', async () => {
    const kernel = await GemmKernel.create(gpu().device);
    kernel.resident.budgetBytes = 16 * BLOCK_BYTES;
    try {
      const b = Float32Array.from(randomMatrix(k * n, 2));
      const as = [0, 1, 2, 3].map((i) => Float32Array.from(randomMatrix(m * k, 10 + i)));
      const runs = await Promise.all(as.map((a, i) => kernel.run(m, k, n, a, b, undefined, { a: `a${i}`, b: 'b-column-0' })));
      runs.forEach(({ c }, i) => expect(productError(c, as[i], b, m, k, n)).toBeLessThan(1e-5));
      // Four A blocks and one B uploaded; three units found B resident.
      expect(kernel.resident.uploads).toBe(5);
      expect(kernel.resident.hits).toBe(3);
    } finally {
      kernel.destroy();
    }
  });

  test('past its budget the least recently used operand is dropped and uploaded again when named', async () => {
    const kernel = await GemmKernel.create(gpu().device);
    kernel.resident.budgetBytes = 2 * BLOCK_BYTES;
    try {
      const a = Float32Array.from(randomMatrix(m * k, 3));
      const bs = [0, 1, 2].map((i) => Float32Array.from(randomMatrix(k * n, 20 + i)));
      for (const [i, b] of bs.entries()) await kernel.run(m, k, n, a, b, undefined, { b: `b${i}` });
      // Only two blocks fit: b0 was dropped, so naming it again uploads it; b2 is still resident.
      const again = await kernel.run(m, k, n, a, bs[0], undefined, { b: 'b0' });
      expect(productError(again.c, a, bs[0], m, k, n)).toBeLessThan(1e-5);
      expect(kernel.resident.uploads).toBe(4);
      await kernel.run(m, k, n, a, bs[2], undefined, { b: 'b2' });
      expect(kernel.resident.hits).toBe(1);
    } finally {
      kernel.destroy();
    }
  });
});
