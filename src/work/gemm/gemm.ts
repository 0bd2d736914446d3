// The gemm kind: C = A·B in f32, or with f16 operands summed in f32, split into output tiles, verified by Freivalds,
// assembled row-major, paid per verified op at a rate per precision.
import * as v from 'valibot';
import { fail, type Parsed } from '../../protocol/errors.ts';
import { allFinite, f32Values } from '../../protocol/tensor.ts';
import { cryptoRandomBytes, type OperandBlock, type RandomBytes, type WorkKind } from '../kind.ts';
import { freivalds } from './freivalds.ts';
import { allFiniteHalves, fromHalves, toHalves } from './halves.ts';

/** The largest M, N or K a job may have; 4096 is the promise, 16384 leaves room. */
export const MAX_GEMM_DIM = 16_384;
/** Output tile edge of one unit: 256x256 keeps a unit's operands at 2 MiB per 1024 of K. */
export const UNIT_TILE = 256;
const MiB = 1024 * 1024;
/** The largest job body accepted (A and B): 512 MiB, e.g. two 8192x8192 f32 operands. */
export const MAX_JOB_BODY_BYTES = 512 * MiB;
/**
 * The largest product: 256 MiB, the 8192x8192 product of the largest square operands. Without it, a 128 KiB body
 * (16384x1 by 1x16384) queues a 1 GiB product, held in memory until its requester deletes it.
 */
export const MAX_PRODUCT_BYTES = 256 * MiB;

/** f32 operands, or f16 ones (IEEE halves, summed in f32) where the requester asks and the miner has shader-f16. */
export type GemmPrecision = 'f32' | 'f16';
export const GEMM_PRECISIONS: readonly GemmPrecision[] = ['f32', 'f16'];

/**
 * Micro-credits per verified GFLOP: one credit for f32; half for f16 operands, which move half the bytes and which
 * GPUs with fast f16 run at twice the f32 rate or more, so that an op is paid for what it costs to do.
 */
export const MICRO_CREDITS_PER_GIGA_OP: Record<GemmPrecision, bigint> = { f32: 1_000_000n, f16: 500_000n };

export interface GemmParams {
  m: number;
  n: number;
  k: number;
  precision: GemmPrecision;
}

interface GemmJobOf<P extends GemmPrecision> {
  id: string;
  m: number;
  n: number;
  k: number;
  /** f32: A and B are the job's operands. f16: they are halves, in `halves`; `a` and `b` hold their exact f32 values. */
  precision: P;
  /** m x k, row-major */
  a: Float32Array;
  /** k x n, row-major */
  b: Float32Array;
}

/**
 * An f16 job: its operands as IEEE halves, what miners are sent. A product of two halves is exact in f32, so the
 * result is checked as an f32 product of `a` and `b`, their f32 values, with f32's tolerance.
 */
export interface GemmF16Job extends GemmJobOf<'f16'> {
  halves: { a: Uint16Array; b: Uint16Array };
}

export type GemmJob = GemmJobOf<'f32'> | GemmF16Job;

/** One output tile: rows [row0, row0 + rows) and cols [col0, col0 + cols) of C. */
export interface GemmUnit {
  id: string;
  jobId: string;
  row0: number;
  col0: number;
  rows: number;
  cols: number;
  depth: number;
  /** A span's: the rows of each of its tiles (the last may have fewer), which name their A blocks one by one. */
  tileRows?: number;
}

/** rows x cols, row-major: the miner's claimed tile of C. */
export type GemmResult = Float32Array;

const Dim = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_GEMM_DIM));
const StoredParams = v.object({ m: Dim, n: Dim, k: Dim, precision: v.optional(v.picklist(GEMM_PRECISIONS), 'f32') });

function dim(raw: unknown, name: string): Parsed<number> {
  const value = typeof raw === 'string' && /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_GEMM_DIM) {
    return fail('bad-shape', `${name} must be an integer from 1 to ${MAX_GEMM_DIM}, got ${JSON.stringify(raw ?? null)}`);
  }
  return { ok: true, value };
}

export const gemmKind: WorkKind<GemmParams, GemmJob, GemmUnit, GemmResult, Float32Array> = {
  name: 'gemm',
  usage: 'POST /api/jobs/gemm?m=M&n=N&k=K[&precision=f16] (body: A then B, f32 little-endian, row-major)',

  parseParams(query) {
    const m = dim(query.m, 'm');
    if (!m.ok) return m;
    const n = dim(query.n, 'n');
    if (!n.ok) return n;
    const k = dim(query.k, 'k');
    if (!k.ok) return k;
    // f16: the operands are rounded to halves and the job is paid as f16 work.
    const precision = query.precision ?? 'f32';
    if (precision !== 'f32' && precision !== 'f16') return fail('bad-precision', `precision must be f32 or f16, got ${JSON.stringify(precision)}`);
    return { ok: true, value: { m: m.value, n: n.value, k: k.value, precision } };
  },

  footprint({ m, n, k, precision }) {
    const bodyBytes = 4 * (m * k + k * n);
    if (bodyBytes > MAX_JOB_BODY_BYTES) return fail('job-too-large', `operands of ${bodyBytes} bytes exceed the limit of ${MAX_JOB_BODY_BYTES}`);
    const outputBytes = 4 * m * n;
    if (outputBytes > MAX_PRODUCT_BYTES) {
      return fail('product-too-large', `a ${m}x${n} product is ${outputBytes} bytes, over the limit of ${MAX_PRODUCT_BYTES}; split the job`);
    }
    // Held while open: the operands (an f16 job both its halves and their f32 values) and the product.
    const heldBytes = (m * k + k * n) * (precision === 'f16' ? 6 : 4) + outputBytes;
    return { ok: true, value: { bodyBytes, outputBytes, heldBytes } };
  },

  createJob(id, params, body) {
    const submitted = new Float32Array(body.buffer, body.byteOffset, body.byteLength / 4);
    if (!allFinite(submitted)) return fail('non-finite', 'operands contain NaN or Infinity');
    const { m, k } = params;
    const values = shuffleDepth(submitted, params, cryptoRandomBytes);
    if (params.precision === 'f32') {
      const job = gemmJob(id, params, values);
      return { ok: true, value: { job, operands: [bytesOf(job.a), bytesOf(job.b)] } };
    }
    const halves = toHalves(values);
    if (!allFiniteHalves(halves)) return fail('f16-overflow', 'an operand is beyond f16\'s range (|x| > 65504)');
    const job = gemmF16Job(id, params, halves.subarray(0, m * k), halves.subarray(m * k));
    return { ok: true, value: { job, operands: [bytesOf(job.halves.a), bytesOf(job.halves.b)] } };
  },

  restoreJob(id, stored, operands) {
    const params = v.parse(StoredParams, stored);
    // Stored as A and B, each content-addressed; ledgers from before that keep one blob of A then B.
    const bytes = concat(operands);
    const { m, n, k } = params;
    const elements = m * k + k * n;
    const width = params.precision === 'f16' ? 2 : 4;
    if (bytes.byteLength !== 0 && bytes.byteLength !== elements * width) {
      throw new Error(`gemm job ${id}: ${bytes.byteLength} bytes of operands for ${m}x${n}x${k} ${params.precision}`);
    }
    if (params.precision === 'f32') return gemmJob(id, params, new Float32Array(bytes.buffer, 0, bytes.byteLength / 4));
    const halves = new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2);
    return gemmF16Job(id, params, halves.subarray(0, Math.min(halves.length, m * k)), halves.subarray(Math.min(halves.length, m * k)));
  },

  params: ({ m, n, k, precision }) => ({ m, n, k, precision }),
  describe: ({ m, n, k, precision }) => ({ precision, m, n, k }),

  split(job) {
    return splitTiles(job.id, job.m, job.n, job.k, UNIT_TILE);
  },

  ops(unit) {
    return 2n * BigInt(unit.rows) * BigInt(unit.cols) * BigInt(unit.depth);
  },

  requirements(job) {
    // A miner declares f16 only where its device has shader-f16, so the precision says all a unit needs.
    return { precision: job.precision, features: [] };
  },

  leasePayload(job, unit) {
    // Named by hash, not carried: units of one row share A's block and units of one column share B's, so a miner
    // that holds a block fetches it once. An f16 job's blocks are the halves themselves: half the bytes of f32.
    // A span names its tiles' A blocks one by one (a0, a1, ...), the same blocks its tiles name alone, which the
    // miner joins: spans of any length share what the miner holds.
    const dtype = job.precision;
    const block = (key: string, tile: GemmUnit, pick: 'a' | 'b') => ({
      key,
      dtype,
      shape: pick === 'a' ? [tile.rows, tile.depth] : [tile.depth, tile.cols],
      bytes: () => bytesOf(job.precision === 'f16' ? unitHalves(job, tile)[pick] : unitOperands(job, tile)[pick]),
    });
    const tiles = gemmTiles(unit);
    const blocks: Record<string, OperandBlock> = { b: block(gemmOperandKeys(unit)[1], unit, 'b') };
    if (tiles.length === 1) blocks.a = block(gemmOperandKeys(unit)[0], unit, 'a');
    else for (const [i, tile] of tiles.entries()) blocks[`a${i}`] = block(gemmOperandKeys(tile)[0], tile, 'a');
    return { operands: {}, params: {}, blocks };
  },

  operandKeys: (unit) => [...new Set(gemmTiles(unit).flatMap(gemmOperandKeys))],

  span(job, first, waiting, count) {
    return spanDown(job, first, waiting, count);
  },

  partResult(_job, span, tile, part) {
    const top = part.row0 - span.row0;
    return tile.slice(top * span.cols, (top + part.rows) * span.cols);
  },

  decodeResult(_job, unit, output) {
    const [rows, cols] = output.shape;
    if (output.shape.length !== 2 || rows !== unit.rows || cols !== unit.cols || output.dtype !== 'f32') {
      return fail('shape-mismatch', `result is ${output.dtype} ${output.shape.join('x')}, unit expects f32 ${unit.rows}x${unit.cols}`);
    }
    return { ok: true, value: Float32Array.from(f32Values(output)) };
  },

  encodeResult: (tile) => bytesOf(tile),
  decodeStoredResult: (_unit, bytes) => new Float32Array(Uint8Array.from(bytes).buffer),

  async verify(ctx, job, unit, result) {
    const { a, b } = unitOperands(job, unit);
    // A span is checked tile by tile, each as if leased alone, so it is held to exactly the bounds measured for
    // 256-row results: Freivalds' aggregate tests average over a result's rows, and over a whole span one tile's
    // cheaper precision is diluted (f16 operands, ReLU-like, K = 16384, 8 columns: 1.96 times the aggregate limit on
    // the tile alone, 1.18 averaged over four tiles).
    for (const tile of gemmTiles(unit)) {
      const top = tile.row0 - unit.row0;
      const verdict = freivalds({
        a: a.subarray(top * unit.depth, (top + tile.rows) * unit.depth), b, c: result.subarray(top * unit.cols, (top + tile.rows) * unit.cols),
        rows: tile.rows, depth: unit.depth, cols: unit.cols,
      }, ctx.random);
      if (!verdict.ok) return tile === unit ? verdict : { ok: false, error: { ...verdict.error, message: `tile ${tile.row0}: ${verdict.error.message}`.slice(0, 256) } };
    }
    return { ok: true };
  },

  microCreditsPerGigaOp: (job) => MICRO_CREDITS_PER_GIGA_OP[job.precision],
  receiptKind: (job) => (job.precision === 'f16' ? 'gemm-f16' : 'gemm'),

  assemble(job, results) {
    const c = new Float32Array(job.m * job.n);
    for (const unit of gemmKind.split(job)) {
      const tile = results.get(unit.id);
      if (!tile) throw new Error(`assemble: no result for unit ${unit.id}`);
      for (let i = 0; i < unit.rows; i++) {
        c.set(tile.subarray(i * unit.cols, (i + 1) * unit.cols), (unit.row0 + i) * job.n + unit.col0);
      }
    }
    return c;
  },

  encodeOutput(job, c) {
    return { contentType: 'application/octet-stream', headers: { 'x-ergon-shape': `${job.m}x${job.n}` }, body: bytesOf(c) };
  },
};

/**
 * A and B with the depth (A's columns, B's rows) in one random order: the product is the same, but the order in
 * which its K terms are summed is no longer the requester's. Freivalds' tolerance models the rounding of sums whose
 * terms are exchangeable along K; sign-sorted data (a Haar or DCT row against a smooth positive column) is not, and
 * its honest f32 sums, measured, run 1.5-5.6x past the tolerance at K = 4096-16384. Shuffled, it is exchangeable.
 */
export function shuffleDepth(values: Float32Array, { m, n, k }: GemmParams, random: RandomBytes): Float32Array {
  const order = randomPermutation(k, random);
  const out = new Float32Array(values.length);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) out[i * k + t] = values[i * k + order[t]];
  const b = m * k;
  for (let t = 0; t < k; t++) out.set(values.subarray(b + order[t] * n, b + (order[t] + 1) * n), b + t * n);
  return out;
}

/** A uniformly random permutation of 0..count-1 (Fisher-Yates; 32 random bits per draw, bias below 2^-18). */
function randomPermutation(count: number, random: RandomBytes): Uint32Array {
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  const words = new Uint32Array(count);
  random(new Uint8Array(words.buffer));
  for (let i = count - 1; i > 0; i--) {
    const j = words[i] % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The job over f32 operands, A then B. */
function gemmJob(id: string, { m, n, k }: GemmParams, values: Float32Array): GemmJob {
  return { id, m, n, k, precision: 'f32', a: values.subarray(0, m * k), b: values.subarray(m * k) };
}

/** The job over halves; it also keeps their exact f32 values, for verification. */
function gemmF16Job(id: string, { m, n, k }: GemmParams, a: Uint16Array, b: Uint16Array): GemmF16Job {
  return { id, m, n, k, precision: 'f16', halves: { a, b }, a: fromHalves(a), b: fromHalves(b) };
}

function bytesOf(array: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/**
 * Output tiles of at most tile x tile. Rows are cut in equal shares (300 rows: 150 and 150, not 256 and 44): Freivalds'
 * aggregate test judges a unit by its rows, and an edge tile of a few rows would let a cheaper precision pass there.
 */
export function splitTiles(jobId: string, m: number, n: number, k: number, tile: number): GemmUnit[] {
  const rowTiles = Math.ceil(m / tile);
  const rowsPerTile = Math.ceil(m / rowTiles);
  const units: GemmUnit[] = [];
  for (let r = 0; r < rowTiles; r++) {
    const row0 = r * rowsPerTile;
    for (let col0 = 0; col0 < n; col0 += tile) {
      units.push({
        id: `${jobId}.${r}.${col0 / tile}`,
        jobId,
        row0,
        col0,
        rows: Math.min(rowsPerTile, m - row0),
        cols: Math.min(tile, n - col0),
        depth: k,
      });
    }
  }
  return units;
}

/**
 * The most A bytes a span joins: 32 MiB, 2048 rows at K = 4096. It bounds what a miner fetches for one lease and the
 * binding the kernel reads the stacked rows through, whatever the miner's speed.
 */
export const MAX_SPAN_BLOCK_BYTES = 32 * MiB;

/**
 * Tiles of one column that follow `first` down the rows, joined into one tile: their A rows are contiguous and their
 * B block is shared, so the miner stacks their A blocks and computes them in one product.
 */
function spanDown(job: GemmJob, first: GemmUnit, waiting: readonly GemmUnit[], count: number): { unit: GemmUnit; parts: GemmUnit[] } | undefined {
  const below = new Map<number, GemmUnit>();
  for (const unit of waiting) if (unit.col0 === first.col0 && unit.row0 > first.row0) below.set(unit.row0, unit);
  const rowBytes = first.depth * (job.precision === 'f16' ? 2 : 4);
  const parts = [first];
  let rows = first.rows;
  // Tiles of one height, but for the job's last, shorter one: the span's A blocks are then its tiles' own.
  for (let next = below.get(first.row0 + rows); next && parts.length < count && next.rows <= first.rows; next = below.get(first.row0 + rows)) {
    if ((rows + next.rows) * rowBytes > MAX_SPAN_BLOCK_BYTES) break;
    parts.push(next);
    rows += next.rows;
    if (next.rows < first.rows) break;
  }
  if (parts.length === 1) return undefined;
  return { unit: { ...first, id: `${first.id}:${parts.length}`, rows, tileRows: first.rows }, parts };
}

/** The tiles a unit covers down its column: itself, or a span's parts. */
function gemmTiles(unit: GemmUnit): GemmUnit[] {
  const { tileRows, ...tile } = unit;
  if (tileRows === undefined) return [unit];
  const tiles: GemmUnit[] = [];
  for (let row0 = unit.row0; row0 < unit.row0 + unit.rows; row0 += tileRows) {
    tiles.push({ ...tile, row0, rows: Math.min(tileRows, unit.row0 + unit.rows - row0) });
  }
  return tiles;
}

/** A unit's A row block and B column block, named within the job: units of one row or one column share them. */
export function gemmOperandKeys(unit: GemmUnit): [string, string] {
  return [`a:${unit.row0}:${unit.rows}`, `b:${unit.col0}:${unit.cols}`];
}

/** The slices of A (rows x K) and B (K x cols) that a unit needs, as f32 values. A's rows are contiguous: no copy. */
export function unitOperands(job: GemmJob, unit: GemmUnit): { a: Float32Array; b: Float32Array } {
  return sliceOperands(job, unit, job.a, job.b);
}

/** The same slices of an f16 job's halves: what its leases carry. */
export function unitHalves(job: GemmF16Job, unit: GemmUnit): { a: Uint16Array; b: Uint16Array } {
  return sliceOperands(job, unit, job.halves.a, job.halves.b);
}

function sliceOperands<T extends Float32Array | Uint16Array>(job: GemmJob, unit: GemmUnit, jobA: T, jobB: T): { a: T; b: T } {
  const a = jobA.subarray(unit.row0 * job.k, (unit.row0 + unit.rows) * job.k) as T;
  if (unit.cols === job.n) return { a, b: jobB };
  const b = new (jobB.constructor as new (length: number) => T)(job.k * unit.cols);
  for (let kk = 0; kk < job.k; kk++) {
    b.set(jobB.subarray(kk * job.n + unit.col0, kk * job.n + unit.col0 + unit.cols), kk * unit.cols);
  }
  return { a, b };
}
