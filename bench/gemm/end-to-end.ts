// The miner's whole path for a stream of units, timed: lease encoding and framing, the GPU worker, result, Freivalds.
import { encodeMessage, parseCoordinatorMessage, parseMinerMessage } from '../../src/protocol/codec.ts';
import { frames, Reassembler } from '../../src/protocol/framing.ts';
import { f32Tensor, f32Values } from '../../src/protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { freivalds } from '../../src/work/gemm/freivalds.ts';
import { splitTiles, UNIT_TILE, unitOperands, type GemmJob } from '../../src/work/gemm/gemm.ts';
import { cryptoRandomBytes } from '../../src/work/kind.ts';
import { GpuClient } from '../../src/miner/gpu-client.ts';
import type { EndToEndResult, EndToEndSpec, EndToEndUnit } from './bench-api.ts';
import { compare, makeOperands, referenceRows } from './reference.ts';
import { nowSeconds } from './runner.ts';

/** Generous: the deadline is carried in the lease but nothing here enforces it. */
const LEASE_DEADLINE_MS = 600_000;

/** Pushes a message's frames through a Reassembler, as the receiving end of a data channel would. */
function transport(messageId: number, bytes: Uint8Array, receiver: Reassembler): Uint8Array {
  let whole: Uint8Array | null = null;
  for (const frame of frames(messageId, bytes)) {
    const pushed = receiver.push(frame, Date.now());
    if (!pushed.ok) throw new Error(`framing: ${pushed.error.code}: ${pushed.error.message}`);
    whole = pushed.value;
  }
  if (!whole) throw new Error(`message ${messageId} did not reassemble`);
  return whole;
}

/**
 * Runs a size^3 job unit by unit, strictly in sequence as the mining loop does (lease, compute, result, verdict),
 * with the real GpuClient and worker (src/miner) and the real protocol code. Frames pass in memory: no WebRTC.
 */
export async function endToEnd(spec: EndToEndSpec): Promise<EndToEndResult> {
  const { size, seed } = spec;
  const operands = makeOperands({ m: size, k: size, n: size }, seed);
  const job: GemmJob = { id: 'bench-e2e', m: size, n: size, k: size, a: operands.a, b: operands.b };
  const units = splitTiles(job.id, size, size, size, UNIT_TILE);

  const gpu = new GpuClient((message) => console.error(`bench e2e: device lost: ${message}`));
  try {
    const description = await gpu.init();
    // Warm-up: the first unit compiles the pipeline and sizes the kernel's buffer pool; not timed.
    const warm = unitOperands(job, units[0]);
    await gpu.gemm(units[0].rows, units[0].depth, units[0].cols, warm.a, warm.b);

    const minerSide = new Reassembler();
    const coordinatorSide = new Reassembler();
    const tiles = new Float32Array(size * size);
    const results: EndToEndUnit[] = [];
    let messageId = 1;

    const jobStarted = nowSeconds();
    for (const unit of units) {
      const started = nowSeconds();
      // Coordinator: cut the unit's operands and send the lease.
      const { a, b } = unitOperands(job, unit);
      const leaseId = `lease-${unit.id}`;
      const leaseBytes = encodeMessage({
        type: 'lease', v: PROTOCOL_VERSION, leaseId, unitId: unit.id, kind: 'gemm', deadlineMs: LEASE_DEADLINE_MS,
        a: f32Tensor([unit.rows, unit.depth], a), b: f32Tensor([unit.depth, unit.cols], b),
      });
      const leaseSent = nowSeconds();
      // Miner: reassemble, parse and check the lease, run it on the GPU worker, send the result.
      const lease = parseCoordinatorMessage(transport(messageId++, leaseBytes, minerSide));
      if (!lease.ok || lease.value.type !== 'lease') throw new Error(`lease did not parse: ${lease.ok ? lease.value.type : lease.error.message}`);
      const [rows, depth] = lease.value.a.shape;
      const cols = lease.value.b.shape[1];
      const workerStarted = nowSeconds();
      const run = await gpu.gemm(rows, depth, cols, f32Values(lease.value.a), f32Values(lease.value.b));
      const workerSeconds = nowSeconds() - workerStarted;
      const resultBytes = encodeMessage({
        type: 'result', v: PROTOCOL_VERSION, leaseId: lease.value.leaseId, unitId: lease.value.unitId,
        gpuSeconds: run.gpuSeconds, output: f32Tensor([rows, cols], run.c),
      });
      const resultSent = nowSeconds();
      // Coordinator: reassemble and parse the result, check its shape, verify.
      const result = parseMinerMessage(transport(messageId++, resultBytes, coordinatorSide));
      if (!result.ok || result.value.type !== 'result') throw new Error(`result did not parse: ${result.ok ? result.value.type : result.error.message}`);
      const c = f32Values(result.value.output);
      const verifyStarted = nowSeconds();
      const verdict = freivalds({ a, b, c, rows: unit.rows, depth: unit.depth, cols: unit.cols }, cryptoRandomBytes);
      const finished = nowSeconds();
      for (let i = 0; i < unit.rows; i++) tiles.set(c.subarray(i * unit.cols, (i + 1) * unit.cols), (unit.row0 + i) * size + unit.col0);

      results.push({
        unitId: unit.id, rows: unit.rows, depth: unit.depth, cols: unit.cols,
        wallSeconds: finished - started,
        gpuSeconds: run.gpuSeconds,
        workerSeconds,
        leaseBytes: leaseBytes.byteLength,
        resultBytes: resultBytes.byteLength,
        coordinatorSeconds: leaseSent - started + (finished - resultSent),
        minerSeconds: workerStarted - leaseSent + (resultSent - workerStarted - workerSeconds),
        freivaldsSeconds: finished - verifyStarted,
        accepted: verdict.ok,
      });
    }
    const wallSeconds = nowSeconds() - jobStarted;

    const ops = 2 * size * size * size;
    const gpuSeconds = results.reduce((s, u) => s + u.gpuSeconds, 0);
    const freivaldsSeconds = results.reduce((s, u) => s + u.freivaldsSeconds, 0);
    const check = compare(tiles, referenceRows(operands, seed), operands.shape);
    return {
      size, unitTile: UNIT_TILE, ops, wallSeconds, gpuSeconds, freivaldsSeconds,
      miningGflops: ops / wallSeconds / 1e9,
      kernelGflops: ops / gpuSeconds / 1e9,
      miningOverKernel: gpuSeconds / wallSeconds,
      freivaldsOverCompute: freivaldsSeconds / gpuSeconds,
      allAccepted: results.every((u) => u.accepted),
      maxRelError: check.maxRelError,
      units: results,
      worker: JSON.stringify(description),
    };
  } finally {
    gpu.terminate();
  }
}
