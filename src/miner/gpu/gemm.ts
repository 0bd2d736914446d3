// Runs the tiled f32 GEMM kernel on a GPUDevice: upload, one dispatch, read back, timed.
import shaderSource from '../../../shaders/gemm-tiled-f32.wgsl?raw';

/** Output tile of one workgroup, as fixed in the shader. */
const WORKGROUP_TILE = 64;

export interface GemmRun {
  c: Float32Array<ArrayBuffer>;
  /** From submit to the GPU finishing the dispatch: compute time, without upload or read-back. */
  gpuSeconds: number;
}

export class GemmKernel {
  private readonly pipeline: GPUComputePipeline;

  private constructor(private readonly device: GPUDevice, pipeline: GPUComputePipeline) {
    this.pipeline = pipeline;
  }

  static async create(device: GPUDevice): Promise<GemmKernel> {
    const module = device.createShaderModule({ label: 'gemm-tiled-f32', code: shaderSource });
    const pipeline = await device.createComputePipelineAsync({ label: 'gemm-tiled-f32', layout: 'auto', compute: { module, entryPoint: 'main' } });
    return new GemmKernel(device, pipeline);
  }

  /** C (m x n) = A (m x k) · B (k x n), all row-major f32. */
  async run(m: number, k: number, n: number, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>): Promise<GemmRun> {
    const { device } = this;
    const storage = (label: string, bytes: number, usage: number) => device.createBuffer({ label, size: Math.max(16, bytes), usage });
    const bufA = storage('A', a.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const bufB = storage('B', b.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const cBytes = m * n * 4;
    const bufC = storage('C', cBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const readback = storage('C readback', cBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const dims = device.createBuffer({ label: 'dims', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    try {
      device.queue.writeBuffer(bufA, 0, a);
      device.queue.writeBuffer(bufB, 0, b);
      device.queue.writeBuffer(dims, 0, new Uint32Array([m, n, k, 0]));
      await device.queue.onSubmittedWorkDone();

      const bindGroup = device.createBindGroup({
        layout: this.pipeline.getBindGroupLayout(0),
        entries: [bufA, bufB, bufC, dims].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      const encoder = device.createCommandEncoder({ label: 'gemm' });
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil(n / WORKGROUP_TILE), Math.ceil(m / WORKGROUP_TILE));
      pass.end();
      const started = performance.now();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      const gpuSeconds = (performance.now() - started) / 1000;

      const copy = device.createCommandEncoder({ label: 'gemm readback' });
      copy.copyBufferToBuffer(bufC, 0, readback, 0, cBytes);
      device.queue.submit([copy.finish()]);
      await readback.mapAsync(GPUMapMode.READ, 0, cBytes);
      const c = new Float32Array(readback.getMappedRange(0, cBytes).slice(0));
      readback.unmap();
      return { c, gpuSeconds };
    } finally {
      for (const buffer of [bufA, bufB, bufC, readback, dims]) buffer.destroy();
    }
  }
}
