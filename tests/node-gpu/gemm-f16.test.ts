// The f16 GEMM kernels on a real WebGPU adapter with shader-f16 (Dawn on Mesa's lavapipe; SwiftShader in Chromium
// has no shader-f16): f16 operands, f32 accumulation, correct for any shape, and next to f32 units in one kernel.
// The helper comes first: it installs WebGPU's globals, which gemm.ts reads when it loads.
import { useNodeDevice } from '../helpers/node-gpu.ts';
import { describe, expect, test } from 'vitest';
import { GemmKernel, NoShaderF16Error } from '../../src/miner/gpu/gemm.ts';
import { CANDIDATES, configName, f16Config, SMALL_M_CONFIGS, unfitReason, type KernelConfig } from '../../src/miner/gpu/kernel-config.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { ODD_SHAPES } from '../helpers/kernel-shapes.ts';
import { productError, randomMatrix } from '../helpers/random.ts';

/** Every config the miner may run, each once by the direct kernel it runs as at f16 (tiled and subgroup map onto direct). */
const F16_CONFIGS: readonly KernelConfig[] = [...CANDIDATES, ...SMALL_M_CONFIGS.map((small) => small.config)].filter(
  (config, i, all) => all.findIndex((other) => configName(f16Config(other)) === configName(f16Config(config))) === i,
);

/** An f32 operand rounded to f16: the half bits a unit carries, and their values (exact in f32). */
interface Halves {
  bits: Uint16Array<ArrayBuffer>;
  values: Float32Array;
}

/** Rounds as the coordinator does for an f16 job. */
function halvesOf(values: Float32Array): Halves {
  const bits = toHalves(values);
  return { bits, values: fromHalves(bits) };
}

/** Seeded operands of a shape, in f32 and rounded to f16. */
function operands(m: number, k: number, n: number): { a: Float32Array<ArrayBuffer>; b: Float32Array<ArrayBuffer>; a16: Halves; b16: Halves } {
  const a = Float32Array.from(randomMatrix(m * k, m * 31 + n));
  const b = Float32Array.from(randomMatrix(k * n, m * 31 + n + 1));
  return { a, b, a16: halvesOf(a), b16: halvesOf(b) };
}

describe('f16 GEMM kernels on Dawn in Node', () => {
  const gpu = useNodeDevice();

  // Like the f32 test: the first run compiles each kernel with LLVM (seconds each); later runs hit Mesa's cache.
  for (const config of F16_CONFIGS) {
    test(`${configName(f16Config(config))} at f16 computes the f32 product of the f16 operands for any shape`, async ({ skip }) => {
      const { device } = gpu();
      const reason = unfitReason(config, device);
      if (reason !== null) skip(reason);
      const kernel = await GemmKernel.create(device, config, ['vec4', 'scalar'], [], ['f16']);
      try {
        for (const [m, k, n] of ODD_SHAPES) {
          const { a16, b16 } = operands(m, k, n);
          const { c } = await kernel.run(m, k, n, a16.bits, b16.bits);
          const shape = `${configName(f16Config(config))} ${kernel.variant} f16 at ${m}x${k}x${n}`;
          expect(configName(kernel.activeConfig), shape).toBe(configName(f16Config(config)));
          expect(kernel.variant, shape).toBe(k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');
          // Products of halves are exact in f32, so only f32 summation separates C from the f64 reference.
          expect(productError(c, a16.values, b16.values, m, k, n), shape).toBeLessThan(1e-5);
        }
      } finally {
        kernel.destroy();
      }
    });
  }

  test('rounding the operands to f16 costs 1e-4 to 1e-3 against the f32 product, a hundred times the kernel\'s own error', async () => {
    const kernel = await GemmKernel.create(gpu().device, undefined, ['vec4', 'scalar'], undefined, ['f16']);
    try {
      for (const [m, k, n] of [[67, 45, 33], [131, 97, 257], [64, 64, 64], [130, 96, 260]] as const) {
        const { a, b, a16, b16 } = operands(m, k, n);
        const { c } = await kernel.run(m, k, n, a16.bits, b16.bits);
        const ownError = productError(c, a16.values, b16.values, m, k, n);
        const f16Error = productError(c, a, b, m, k, n);
        // Measured 2.6e-4 to 3.3e-4 here (a half's significand is 11 bits, 2^-11 = 4.9e-4). The two references are
        // that far apart, so the test above, at 1e-5, fails for a kernel that does not compute on the halves.
        expect(f16Error, `${m}x${k}x${n}`).toBeGreaterThan(1e-4);
        expect(f16Error, `${m}x${k}x${n}`).toBeLessThan(2e-3);
        expect(ownError * 100, `${m}x${k}x${n}`).toBeLessThan(f16Error);
      }
    } finally {
      kernel.destroy();
    }
  });

  test('f16 and f32 units in flight together each get their own product', async () => {
    const kernel = await GemmKernel.create(gpu().device, undefined, ['vec4', 'scalar'], undefined, ['f32', 'f16']);
    // More units than slots, so that each slot holds f32 and f16 operands in turn, of growing and shrinking size.
    const units = ([[67, 45, 33, 'f32'], [68, 36, 44, 'f16'], [130, 96, 260, 'f32'], [131, 97, 257, 'f16'], [1, 4096, 37, 'f16'], [64, 64, 64, 'f32'], [3, 200, 5, 'f16']] as const).map(
      ([m, k, n, precision]) => ({ m, k, n, precision, ...operands(m, k, n) }),
    );
    try {
      const runs = await Promise.all(
        units.map((u) => (u.precision === 'f16' ? kernel.run(u.m, u.k, u.n, u.a16.bits, u.b16.bits) : kernel.run(u.m, u.k, u.n, u.a, u.b))),
      );
      units.forEach((u, i) => {
        const [a, b] = u.precision === 'f16' ? [u.a16.values, u.b16.values] : [u.a, u.b];
        // Either reference is 1e-3 from the other: a unit run at the wrong precision, or on another's operands, fails.
        expect(productError(runs[i].c, a, b, u.m, u.k, u.n), `${u.precision} ${u.m}x${u.k}x${u.n}`).toBeLessThan(1e-5);
      });
    } finally {
      kernel.destroy();
    }
  });

  test('a device without shader-f16 compiles no f16 kernel, runs f32, and refuses f16 with NoShaderF16Error', async () => {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('no second adapter');
    const device = await adapter.requestDevice();
    try {
      device.pushErrorScope('validation');
      const kernel = await GemmKernel.create(device);
      expect(kernel.supportsF16).toBe(false);
      const { a, b, a16, b16 } = operands(9, 8, 4);
      expect(productError((await kernel.run(9, 8, 4, a, b)).c, a, b, 9, 8, 4)).toBeLessThan(1e-5);
      await expect(kernel.run(9, 8, 4, a16.bits, b16.bits)).rejects.toThrow(NoShaderF16Error);
      expect(() => kernel.upload(9, 8, 4, a16.bits, b16.bits)).toThrow(NoShaderF16Error);
      await expect(GemmKernel.create(device, undefined, ['vec4'], [], ['f16'])).rejects.toThrow(NoShaderF16Error);
      // An f16 shader compiled here would fail validation: none was.
      expect(await device.popErrorScope()).toBeNull();
      kernel.destroy();
    } finally {
      device.destroy();
    }
  });
});
