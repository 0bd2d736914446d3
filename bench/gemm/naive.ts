// "naive": one thread per element of C (shaders/gemm-naive-f32.wgsl), operands resident, one dispatch a run.
import naiveSource from '../../shaders/gemm-naive-f32.wgsl?raw';
import type { Operands } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';

/** 16 x 16 = 256 threads, the most a workgroup may have on the baseline WebGPU limits. */
const WORKGROUP_EDGE = 16;
const DIMS_BYTES = 16;

export async function naiveRunner(device: GPUDevice, ops: Operands): Promise<Runner> {
  const { m, k, n } = ops.shape;
  const module = device.createShaderModule({ label: 'gemm-naive-f32', code: naiveSource });
  const pipeline = await device.createComputePipelineAsync({
    label: 'gemm-naive-f32',
    layout: 'auto',
    compute: { module, entryPoint: 'main', constants: { WG_X: WORKGROUP_EDGE, WG_Y: WORKGROUP_EDGE } },
  });
  const cBytes = m * n * 4;
  const make = (label: string, size: number, usage: number) => device.createBuffer({ label, size: Math.max(16, size), usage });
  const bufA = make('naive A', ops.a.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const bufB = make('naive B', ops.b.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const bufC = make('naive C', cBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const readback = make('naive C read-back', cBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const dims = make('naive dims', DIMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(bufA, 0, ops.a);
  device.queue.writeBuffer(bufB, 0, ops.b);
  device.queue.writeBuffer(dims, 0, new Uint32Array([m, n, k, 0]));
  await device.queue.onSubmittedWorkDone();
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [bufA, bufB, bufC, dims].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });

  const readBack = async (): Promise<Float32Array> => {
    const encoder = device.createCommandEncoder({ label: 'naive read-back' });
    encoder.copyBufferToBuffer(bufC, 0, readback, 0, cBytes);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ, 0, cBytes);
    const c = new Float32Array(readback.getMappedRange(0, cBytes).slice(0));
    readback.unmap();
    return c;
  };
  let last: Float32Array | undefined;

  return {
    info: {
      timing:
        'seconds = submit -> onSubmittedWorkDone of one dispatch, A, B and C resident on the GPU (uploaded once); '
        + 'wallSeconds adds the copy of C back to JavaScript.',
      details: { workgroup: `${WORKGROUP_EDGE}x${WORKGROUP_EDGE}`, dispatches: 1 },
    },
    async time() {
      const encoder = device.createCommandEncoder({ label: 'naive gemm' });
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil(n / WORKGROUP_EDGE), Math.ceil(m / WORKGROUP_EDGE));
      pass.end();
      const commands = encoder.finish();
      const started = nowSeconds();
      device.queue.submit([commands]);
      await device.queue.onSubmittedWorkDone();
      const seconds = nowSeconds() - started;
      last = await readBack();
      return { seconds, wallSeconds: nowSeconds() - started, dispatches: 1 };
    },
    async product() {
      last ??= await readBack();
      return last;
    },
    async release() {
      for (const buffer of [bufA, bufB, bufC, readback, dims]) buffer.destroy();
    },
  };
}
