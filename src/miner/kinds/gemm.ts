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
    const { b } = payload.operands;
    const a = payload.operands.a ?? joinRows(payload.operands);
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

/**
 * A span's A: its tiles' row blocks a0, a1, ... (each also a tile's own A, so the miner fetches and keeps them
 * once), stacked into one operand for one product. Undefined when the lease names none.
 */
function joinRows(operands: Readonly<Record<string, WorkerTensor>>): WorkerTensor | undefined {
  const blocks: WorkerTensor[] = [];
  for (let i = 0; operands[`a${i}`]; i++) blocks.push(operands[`a${i}`]);
  const [first] = blocks;
  if (!first || first.shape.length !== 2) return undefined;
  const depth = first.shape[1];
  if (blocks.some((block) => block.shape.length !== 2 || block.shape[1] !== depth || block.dtype !== first.dtype)) {
    throw new CodedError('shape-mismatch', 'a span\'s row blocks a0, a1, ... need one depth and one dtype');
  }
  const joined = new Uint8Array(blocks.reduce((sum, block) => sum + block.data.byteLength, 0));
  let at = 0;
  for (const block of blocks) {
    joined.set(new Uint8Array(block.data), at);
    at += block.data.byteLength;
  }
  return { dtype: first.dtype, shape: [blocks.reduce((sum, block) => sum + block.shape[0], 0), depth], data: joined.buffer };
}

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
