// The gemm kind on the miner: C = A·B for a leased tile, on the GPU kernel (f32, or f16 operands with shader-f16)
// or on the CPU fallback (f32).
import { CodedError } from '../../protocol/errors.ts';
import { UnitCancelledError } from '../cancelled.ts';
import type { GpuClient, GpuRun } from '../gpu-client.ts';
import type { WorkerTensor } from '../worker-messages.ts';
import type { Execution, MinerKind } from './kind.ts';

const NAME = 'gemm';

export const gemmMinerKind: MinerKind = {
  name: NAME,

  async execute(payload, engines, signal): Promise<Execution> {
    const { a, b } = payload.operands;
    if (!a || !b || a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0] || a.dtype !== b.dtype) {
      throw new CodedError('shape-mismatch', 'a gemm lease needs operands a (rows x depth) and b (depth x cols) of one dtype');
    }
    const [m, k] = a.shape;
    const n = b.shape[1];
    if (engines.backend === 'wasm') {
      if (a.dtype !== 'f32') throw new CodedError('unsupported-precision', 'the CPU engine runs f32 units only');
      if (signal.aborted) throw new UnitCancelledError();
      const { c, computeSeconds } = await (await engines.cpu()).gemm.run(m, k, n, new Float32Array(a.data), new Float32Array(b.data));
      return { output: f32Output([m, n], c), gpuSeconds: computeSeconds, submitSeconds: computeSeconds, dispatches: 1 };
    }
    // Operands named by hash may stay on the GPU for the next unit that names them (a column's B, a row's A).
    const keys = { a: a.sha256, b: b.sha256 };
    const run = await engines.onGpu((gpu) => (a.dtype === 'f16'
      ? gpu.gemm.run(m, k, n, new Uint16Array(a.data), new Uint16Array(b.data), signal, keys)
      : gpu.gemm.run(m, k, n, new Float32Array(a.data), new Float32Array(b.data), signal, keys)));
    const { c, ...timing } = run;
    return { output: f32Output([m, n], c), ...timing };
  },
};

function f32Output(shape: number[], values: Float32Array<ArrayBuffer>): WorkerTensor {
  return { dtype: 'f32', shape, data: values.buffer };
}

/** C = A·B through the GPU worker, as a gemm unit (benchmarks and the kernel harness call this). */
export async function runGemm(
  client: GpuClient, m: number, k: number, n: number, a: Float32Array | Uint16Array, b: Float32Array | Uint16Array,
): Promise<GpuRun & { c: Float32Array }> {
  const dtype = a instanceof Uint16Array ? 'f16' : 'f32';
  const tensor = (shape: number[], values: Float32Array | Uint16Array): WorkerTensor => ({ dtype, shape, data: values.slice().buffer });
  const run = await client.run(NAME, { operands: { a: tensor([m, k], a), b: tensor([k, n], b) }, params: {} });
  return { ...run, c: new Float32Array(run.output.data) };
}
