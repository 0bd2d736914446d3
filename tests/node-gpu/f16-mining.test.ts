// An f16 job mined over the real protocol by the miner's own GPU kernel, on a device with shader-f16 (Dawn on
// lavapipe): halves in, f32 out, verified and paid as gemm-f16. The browser cannot show this here: SwiftShader has
// no shader-f16.
// The helper comes first: it installs WebGPU's globals, which gemm.ts reads when it loads.
import { useNodeDevice } from '../helpers/node-gpu.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GemmKernel } from '../../src/miner/gpu/gemm.ts';
import { f16Halves } from '../../src/protocol/tensor.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

describe('f16 mining on a GPU kernel', () => {
  const gpu = useNodeDevice();
  let stack: TestStack | undefined;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('mines an f16 job: the kernel takes the lease\'s halves as they come, and every unit is paid as gemm-f16', async () => {
    if (!stack) throw new Error('no stack: beforeAll failed');
    const kernel = await GemmKernel.create(gpu().device);
    expect(kernel.supportsF16).toBe(true);
    const [m, n, k] = [384, 300, 128];
    const a = randomMatrix(m * k, 71);
    const b = randomMatrix(k * n, 72);
    const job = await submitGemm(stack.url, m, n, k, a, b, TEST_API_KEY, 'f16');

    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello(undefined, ['f32', 'f16']);
    for (let unit = 0; unit < job.unitsTotal; unit++) {
      const lease = await miner.lease();
      const operands = ScriptedMiner.operands(lease);
      const [rows, depth] = operands.a.shape;
      const cols = operands.b.shape[1];
      const { c, gpuSeconds } = await kernel.run(rows, depth, cols, Uint16Array.from(f16Halves(operands.a)), Uint16Array.from(f16Halves(operands.b)));
      const verdict = await miner.verdict(lease, c, gpuSeconds);
      if (verdict.type !== 'receipt') throw new Error(`unit ${lease.unitId} rejected: ${verdict.code}: ${verdict.message}`);
      expect(verdict.receipt.kind).toBe('gemm-f16');
    }
    miner.close();
    kernel.destroy();

    const product = await fetchProduct(stack.url, job.id);
    const rounded = matmulF64(fromHalves(toHalves(a)), fromHalves(toHalves(b)), m, k, n);
    expect(maxRelativeError(product, rounded)).toBeLessThan(1e-5);
  });
});
