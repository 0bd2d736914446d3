// Freivalds' check against our own kernels on a real WebGPU adapter (Dawn on Mesa's lavapipe): their honest f32
// products pass with room to spare for every operand distribution up to K = 16384, and an f16 kernel's product of
// the rounded operands, passed off as the f32 product, is rejected.
// The helper comes first: it installs WebGPU's globals, which gemm.ts reads when it loads.
import { useNodeDevice } from '../helpers/node-gpu.ts';
import { describe, expect, test } from 'vitest';
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import { CANDIDATES, configName, unfitReason, type KernelConfig } from '../../src/miner/gpu/kernel-config.ts';
import { freivaldsCheck } from '../../src/work/gemm/freivalds.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { seededBytes } from '../helpers/random.ts';
import { DISTRIBUTIONS, operands } from '../unit/work/products.ts';

/** One config per family: the default direct kernel, a tiled one and a subgroup one (each sums k in its own order). */
const CONFIGS: readonly KernelConfig[] = ['direct', 'tiled', 'subgroup'].map((family) => {
  const config = CANDIDATES.find((c) => c.family === family);
  if (!config) throw new Error(`no ${family} config among the candidates`);
  return config;
});
const DEPTHS = [16, 1024, 16384];
/** Rows and columns of C: a vec4 shape and a scalar one (odd K and N), with enough rows for the aggregate test. */
const SHAPES = [[64, 64], [61, 37]] as const;
/**
 * Honest JavaScript products in seven summation orders measured at most 0.37 of the limits on 64-row results, 0.47
 * on 256-row ones (bench:verify), and every config here at most 0.36; a kernel whose rounding the model misses
 * would show here first.
 */
const HONEST_MAX_FRACTION = 0.5;

describe('Freivalds on our kernels, Dawn in Node', () => {
  const gpu = useNodeDevice();

  for (const config of CONFIGS) {
    test(`${configName(config)}: honest f32 products pass at under half the tolerance, every distribution, K = 16 to 16384`, async ({ skip }) => {
      const { device } = gpu();
      const reason = unfitReason(config, device);
      if (reason !== null) skip(reason);
      const kernel = await GemmKernel.create(device, config, ['vec4', 'scalar'], []);
      try {
        for (const [rows, cols] of SHAPES) {
          for (const depth of DEPTHS.map((k) => (cols % 2 ? k + 3 : k))) {
            for (const distribution of DISTRIBUTIONS) {
              const a = Float32Array.from(operands(distribution, rows * depth, depth + 1));
              const b = Float32Array.from(operands(distribution, depth * cols, depth + 2));
              const { c } = await kernel.run(rows, depth, cols, a, b);
              const what = `${configName(config)} ${kernel.variant}, ${distribution}, ${rows}x${depth}x${cols}`;
              const check = freivaldsCheck({ a, b, c, rows, depth, cols }, seededBytes(depth));
              expect(check.verdict, what).toEqual({ ok: true });
              expect(Math.max(check.rowFraction, check.aggregateFraction, check.elementFraction, check.spotAggregateFraction), what).toBeLessThan(HONEST_MAX_FRACTION);
            }
          }
        }
      } finally {
        kernel.destroy();
      }
    });
  }

  test('an f16 kernel\'s product of the operands rounded to halves is accepted for an f16 job and rejected as f32 work', async () => {
    const kernel = await GemmKernel.create(gpu().device, undefined, ['vec4', 'scalar'], [], ['f16']);
    const [rows, cols] = SHAPES[0];
    try {
      for (const depth of [256, 1024, 4096, 16384]) {
        for (const distribution of DISTRIBUTIONS) {
          const a = operands(distribution, rows * depth, depth + 1);
          const b = operands(distribution, depth * cols, depth + 2);
          const a16 = toHalves(a);
          const b16 = toHalves(b);
          const { c } = await kernel.run(rows, depth, cols, a16, b16);
          const what = `${distribution}, ${rows}x${depth}x${cols}`;
          const asF16Job = freivaldsCheck({ a: fromHalves(a16), b: fromHalves(b16), c, rows, depth, cols }, seededBytes(depth));
          expect(asF16Job.verdict, what).toEqual({ ok: true });
          const asF32Job = freivaldsCheck({ a, b, c, rows, depth, cols }, seededBytes(depth));
          expect(asF32Job.verdict, what).toMatchObject({ ok: false, error: { code: 'verification-failed' } });
        }
      }
    } finally {
      kernel.destroy();
    }
  });
});
