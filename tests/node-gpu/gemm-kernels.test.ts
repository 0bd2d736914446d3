// The GEMM kernels on a real WebGPU adapter in Node (Dawn on Mesa's lavapipe): every family and config correct
// for any shape, and the features the next kernels need are there.
// The helper comes first: it installs WebGPU's globals, which gemm.ts reads when it loads.
import { useNodeDevice } from '../helpers/node-gpu.ts';
import { describe, expect, test } from 'vitest';
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import { CANDIDATES, configName, SMALL_M_CONFIGS, unfitReason, type KernelConfig } from '../../src/miner/gpu/kernel-config.ts';
import { ODD_SHAPES } from '../helpers/kernel-shapes.ts';
import { productError, randomMatrix } from '../helpers/random.ts';

/** Every config the miner may run: the autotuner's candidates, then the small-M ones. */
const ALL_CONFIGS: readonly KernelConfig[] = [...CANDIDATES, ...SMALL_M_CONFIGS.map((small) => small.config)];

describe('GEMM kernels on Dawn in Node', () => {
  const gpu = useNodeDevice();

  test('the adapter offers shader-f16, subgroups and timestamp-query, and the miner\'s device gets them', () => {
    const { adapter, features, device } = gpu();
    // f16 kernels need shader-f16, which SwiftShader in Chromium lacks: this lane is where they are tested.
    const offered = ['shader-f16', 'subgroups', 'timestamp-query'];
    expect(offered.filter((feature) => !features.includes(feature)), `adapter ${JSON.stringify(adapter)}`).toEqual([]);
    expect(offered.filter((feature) => !device.features.has(feature))).toEqual([]);
  });

  test('every kernel family can run here, subgroup included: lavapipe has subgroups', () => {
    const { device } = gpu();
    const runnable = ALL_CONFIGS.filter((config) => unfitReason(config, device) === null);
    const unfit = ALL_CONFIGS.filter((config) => !runnable.includes(config)).map((config) => `${configName(config)}: ${unfitReason(config, device)}`);
    expect([...new Set(runnable.map((config) => config.family))].sort(), unfit.join('; ')).toEqual(['direct', 'subgroup', 'tiled']);
  });

  // Every config over every shape: lavapipe compiles each kernel with LLVM at its first dispatch (0.2-6 s each on
  // 2 cores), so a first run took 34 s on a quiet machine and 38-50 s on a busy one; later runs find Mesa's shader
  // cache (~/.cache) and take 2-3 s. Running the kernels costs milliseconds, so fewer shapes would save nothing.
  for (const config of ALL_CONFIGS) {
    test(`${configName(config)} computes products of any shape: 1, primes, K = 1, edges that do not divide the tiles`, async ({ skip }) => {
      const { device } = gpu();
      const reason = unfitReason(config, device);
      if (reason !== null) skip(reason);
      const kernel = await GemmKernel.create(device, config, ['vec4', 'scalar'], []);
      try {
        for (const [m, k, n] of ODD_SHAPES) {
          const a = Float32Array.from(randomMatrix(m * k, m * 31 + n));
          const b = Float32Array.from(randomMatrix(k * n, m * 31 + n + 1));
          const { c } = await kernel.run(m, k, n, a, b);
          const shape = `${configName(config)} ${kernel.variant} at ${m}x${k}x${n}`;
          expect(configName(kernel.activeConfig), shape).toBe(configName(config));
          expect(kernel.variant, shape).toBe(k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');
          expect(productError(c, a, b, m, k, n), shape).toBeLessThan(1e-5);
        }
      } finally {
        kernel.destroy();
      }
    });
  }
});
