// The miner's whole path for a stream of units, timed: lease encoding and framing, the GPU worker, result, Freivalds.
import { encodeMessage, parseCoordinatorMessage, parseMinerMessage } from '../../src/protocol/codec.ts';
import { frames, Reassembler } from '../../src/protocol/framing.ts';
import { f32Tensor, f32Values } from '../../src/protocol/tensor.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { freivalds } from '../../src/work/gemm/freivalds.ts';
import { gemmKind, splitTiles, UNIT_TILE, unitOperands, type GemmJob, type GemmUnit } from '../../src/work/gemm/gemm.ts';
import { cryptoRandomBytes } from '../../src/work/kind.ts';
import { GpuClient, type GpuRun } from '../../src/miner/gpu-client.ts';
import { runGemm } from '../../src/miner/kinds/gemm.ts';
import type { EndToEndMode, EndToEndResult, EndToEndSpec, EndToEndUnit } from './bench-api.ts';
import { compare, makeOperands, referenceRows, type Operands } from './reference.ts';
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

interface Timed<T> {
  value: T;
  seconds: number;
}

function timed<T>(f: () => T): Timed<T> {
  const started = nowSeconds();
  const value = f();
  return { value, seconds: nowSeconds() - started };
}

/** One job's units through both ends of the protocol; the coordinator and miner halves share this page. */
class Session {
  private messageId = 1;
  private readonly minerSide = new Reassembler();
  private readonly coordinatorSide = new Reassembler();
  readonly tiles: Float32Array;

  constructor(private readonly job: GemmJob) {
    this.tiles = new Float32Array(job.m * job.n);
  }

  /** Coordinator cuts and sends a lease; the miner reassembles and parses it. */
  lease(unit: GemmUnit) {
    const coordinator = timed(() => {
      const { a, b } = unitOperands(this.job, unit);
      const bytes = encodeMessage({
        type: 'lease', v: PROTOCOL_VERSION, leaseId: `lease-${unit.id}`, unitId: unit.id, kind: gemmKind.name, ops: gemmKind.ops(unit),
        deadlineMs: LEASE_DEADLINE_MS, ...gemmKind.leasePayload(this.job, unit),
      });
      return { a, b, bytes };
    });
    const miner = timed(() => {
      const parsed = parseCoordinatorMessage(transport(this.messageId++, coordinator.value.bytes, this.minerSide));
      if (!parsed.ok || parsed.value.type !== 'lease') throw new Error(`lease did not parse: ${parsed.ok ? parsed.value.type : parsed.error.message}`);
      return parsed.value;
    });
    return { unit, a: coordinator.value.a, b: coordinator.value.b, bytes: coordinator.value.bytes.byteLength, lease: miner.value, coordinatorSeconds: coordinator.seconds, minerSeconds: miner.seconds };
  }

  /** Miner encodes and sends the result; the coordinator reassembles and parses it. */
  result(leaseId: string, unitId: string, gpuSeconds: number, c: Float32Array, rows: number, cols: number) {
    const miner = timed(() => encodeMessage({ type: 'result', v: PROTOCOL_VERSION, leaseId, unitId, gpuSeconds, output: f32Tensor([rows, cols], c) }));
    const coordinator = timed(() => {
      const parsed = parseMinerMessage(transport(this.messageId++, miner.value, this.coordinatorSide));
      if (!parsed.ok || parsed.value.type !== 'result') throw new Error(`result did not parse: ${parsed.ok ? parsed.value.type : parsed.error.message}`);
      return f32Values(parsed.value.output);
    });
    return { c: coordinator.value, bytes: miner.value.byteLength, minerSeconds: miner.seconds, coordinatorSeconds: coordinator.seconds };
  }

  /** Coordinator verifies with Freivalds and, as assemble() would, places the tile. */
  verify(unit: GemmUnit, a: Float32Array, b: Float32Array, c: Float32Array): Timed<boolean> {
    const verdict = timed(() => freivalds({ a, b, c, rows: unit.rows, depth: unit.depth, cols: unit.cols }, cryptoRandomBytes).ok);
    for (let i = 0; i < unit.rows; i++) this.tiles.set(c.subarray(i * unit.cols, (i + 1) * unit.cols), (unit.row0 + i) * this.job.n + unit.col0);
    return verdict;
  }
}

type Leased = ReturnType<Session['lease']>;

/**
 * serial: lease, compute, result, verdict, then the next lease: one unit at a time.
 * pipelined: as src/miner/mining-loop.ts does: two units in the worker's hands, so the next one uploads while this
 * one computes, and the previous result is verified by the coordinator meanwhile. Here both "sides" share the
 * page's thread while the worker and the GPU (SwiftShader: the same CPU cores) compute, so the overlap is real but
 * not free.
 */
async function mine(gpu: GpuClient, job: GemmJob, units: GemmUnit[], mode: EndToEndMode): Promise<{ rows: EndToEndUnit[]; tiles: Float32Array; wallSeconds: number }> {
  const session = new Session(job);
  const rows: EndToEndUnit[] = [];
  let pendingVerify: { leased: Leased; c: Float32Array; row: EndToEndUnit } | undefined;
  const verifyPending = () => {
    if (!pendingVerify) return;
    const { leased, c, row } = pendingVerify;
    const verdict = session.verify(leased.unit, leased.a, leased.b, c);
    row.freivaldsSeconds = verdict.seconds;
    row.coordinatorSeconds += verdict.seconds;
    row.accepted = verdict.value;
    pendingVerify = undefined;
  };
  const unitsInHand = mode === 'pipelined' ? 2 : 1;
  const inHand: { leased: Leased; computing: Promise<GpuRun>; workerStarted: number }[] = [];
  let handedOut = 0;
  const handOut = () => {
    const leased = session.lease(units[handedOut++]);
    // As the mining loop does: the lease's operands, copied once into buffers of their own, moved to the worker.
    const operands = Object.fromEntries(Object.entries(leased.lease.operands).map(([name, t]) => [name, { ...t, data: t.data.slice().buffer }]));
    const computing = gpu.run(leased.lease.kind, { operands, params: leased.lease.params });
    inHand.push({ leased, computing, workerStarted: nowSeconds() });
  };

  const started = nowSeconds();
  for (let i = 0; i < units.length; i++) {
    const unitStarted = nowSeconds();
    while (handedOut < units.length && inHand.length < unitsInHand) handOut();
    if (mode === 'pipelined') verifyPending();
    const oldest = inHand.shift();
    if (!oldest) throw new Error(`unit ${i} was never handed out`);
    const { leased, computing, workerStarted } = oldest;
    const run = await computing;
    const workerSeconds = nowSeconds() - workerStarted;
    const { rows: rowsOfA, depth, cols } = leased.unit;
    const result = session.result(leased.lease.leaseId, leased.lease.unitId, run.gpuSeconds, new Float32Array(run.output.data), rowsOfA, cols);
    const row: EndToEndUnit = {
      unitId: leased.unit.id, rows: rowsOfA, depth, cols,
      wallSeconds: 0,
      gpuSeconds: run.gpuSeconds,
      submitSeconds: run.submitSeconds,
      workerSeconds,
      leaseBytes: leased.bytes,
      resultBytes: result.bytes,
      coordinatorSeconds: leased.coordinatorSeconds + result.coordinatorSeconds,
      minerSeconds: leased.minerSeconds + result.minerSeconds,
      freivaldsSeconds: 0,
      accepted: false,
    };
    rows.push(row);
    pendingVerify = { leased, c: result.c, row };
    if (mode === 'serial') verifyPending();
    row.wallSeconds = nowSeconds() - unitStarted;
  }
  verifyPending();
  return { rows, tiles: session.tiles, wallSeconds: nowSeconds() - started };
}

function summarise(mode: EndToEndMode, size: number, ops: number, run: Awaited<ReturnType<typeof mine>>, operands: Operands, seed: number, worker: string): EndToEndResult {
  const gpuSeconds = run.rows.reduce((s, u) => s + u.gpuSeconds, 0);
  const submitSeconds = run.rows.reduce((s, u) => s + u.submitSeconds, 0);
  const freivaldsSeconds = run.rows.reduce((s, u) => s + u.freivaldsSeconds, 0);
  const check = compare(run.tiles, referenceRows(operands, seed), operands.shape);
  return {
    mode, size, unitTile: UNIT_TILE, ops, wallSeconds: run.wallSeconds, gpuSeconds, submitSeconds, freivaldsSeconds,
    miningGflops: ops / run.wallSeconds / 1e9,
    kernelGflops: ops / gpuSeconds / 1e9,
    miningOverKernel: gpuSeconds / run.wallSeconds,
    miningOverSubmit: submitSeconds / run.wallSeconds,
    freivaldsOverCompute: freivaldsSeconds / gpuSeconds,
    allAccepted: run.rows.every((u) => u.accepted),
    maxRelError: check.maxRelError,
    units: run.rows,
    worker,
  };
}

/**
 * Mines a size^3 job split by the gemm kind, with the real GpuClient and worker (src/miner) and the real protocol
 * code, once per mode. Frames pass in memory: no WebRTC.
 */
export async function endToEnd(spec: EndToEndSpec): Promise<EndToEndResult[]> {
  const { size, seed } = spec;
  const operands = makeOperands({ m: size, k: size, n: size }, seed);
  const job: GemmJob = { id: 'bench-e2e', m: size, n: size, k: size, precision: 'f32', a: operands.a, b: operands.b };
  const units = splitTiles(job.id, size, size, size, UNIT_TILE);
  const ops = 2 * size * size * size;

  const gpu = new GpuClient((message) => console.error(`bench e2e: device lost: ${message}`));
  try {
    const worker = JSON.stringify(await gpu.init());
    // Warm-up: the first unit compiles the pipeline and sizes the kernel's buffer pool; not timed.
    const warm = unitOperands(job, units[0]);
    await runGemm(gpu, units[0].rows, units[0].depth, units[0].cols, warm.a, warm.b);
    const results: EndToEndResult[] = [];
    for (const mode of spec.modes) results.push(summarise(mode, size, ops, await mine(gpu, job, units, mode), operands, seed, worker));
    return results;
  } finally {
    gpu.terminate();
  }
}
