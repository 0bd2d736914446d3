// A third kind of work, defined entirely by a test: batched dot products of integer-valued vectors, verified exactly.
// It proves that a kind is a plug-in: the coordinator and protocol serve it without a line changed.
import * as v from 'valibot';
import { fail } from '../../src/protocol/errors.ts';
import { allFinite, f32Tensor, f32Values } from '../../src/protocol/tensor.ts';
import type { WorkKind } from '../../src/work/kind.ts';

/** Values are integers in [-64, 64] and vectors at most 256 long, so every dot product is exact in f32. */
export const MAX_DOT_VALUE = 64;
export const MAX_DOT_DIM = 256;
export const MAX_DOT_COUNT = 4096;
/** Vectors per unit. */
export const DOTS_PER_UNIT = 4;

export interface DotParams {
  count: number;
  dim: number;
}
export interface DotJob extends DotParams {
  id: string;
  /** count x dim, then count x dim */
  x: Float32Array;
  y: Float32Array;
}
export interface DotUnit {
  id: string;
  jobId: string;
  first: number;
  rows: number;
  dim: number;
}

const Int = (max: number) => v.pipe(v.string(), v.regex(/^[0-9]{1,5}$/), v.transform(Number), v.minValue(1), v.maxValue(max));
const Query = v.object({ count: Int(MAX_DOT_COUNT), dim: Int(MAX_DOT_DIM) });
const Stored = v.object({ count: v.number(), dim: v.number() });

const slice = (job: DotJob, unit: DotUnit) => ({
  x: job.x.subarray(unit.first * job.dim, (unit.first + unit.rows) * job.dim),
  y: job.y.subarray(unit.first * job.dim, (unit.first + unit.rows) * job.dim),
});

export function dots(x: Float32Array, y: Float32Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) out[r] += x[r * dim + i] * y[r * dim + i];
  return out;
}

const bytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

export const dotKind: WorkKind<DotParams, DotJob, DotUnit, Float32Array, Float32Array> = {
  name: 'dot',
  usage: 'POST /api/jobs/dot?count=N&dim=D (body: X then Y, N x D integers as f32)',

  parseParams(query) {
    const parsed = v.safeParse(Query, query);
    return parsed.success ? { ok: true, value: parsed.output } : fail('bad-params', `count 1-${MAX_DOT_COUNT} and dim 1-${MAX_DOT_DIM} are required`);
  },
  footprint: ({ count, dim }) => ({ ok: true, value: { bodyBytes: 8 * count * dim, outputBytes: 4 * count, heldBytes: 8 * count * dim + 4 * count } }),
  createJob(id, params, body) {
    const values = new Float32Array(body.buffer, body.byteOffset, body.byteLength / 4);
    if (!allFinite(values) || values.some((x) => !Number.isInteger(x) || Math.abs(x) > MAX_DOT_VALUE)) {
      return fail('bad-params', `values must be integers from -${MAX_DOT_VALUE} to ${MAX_DOT_VALUE}`);
    }
    const half = params.count * params.dim;
    const job = { id, ...params, x: values.subarray(0, half), y: values.subarray(half) };
    return { ok: true, value: { job, operands: [bytes(job.x), bytes(job.y)] } };
  },
  restoreJob(id, stored, operands) {
    const { count, dim } = v.parse(Stored, stored);
    const [x, y] = operands.map((o) => new Float32Array(Uint8Array.from(o).buffer));
    return { id, count, dim, x: x ?? new Float32Array(0), y: y ?? new Float32Array(0) };
  },
  params: ({ count, dim }) => ({ count, dim }),
  describe: ({ count, dim }) => ({ count, dim }),

  split(job) {
    const units: DotUnit[] = [];
    for (let first = 0; first < job.count; first += DOTS_PER_UNIT) {
      units.push({ id: `${job.id}.${first / DOTS_PER_UNIT}`, jobId: job.id, first, rows: Math.min(DOTS_PER_UNIT, job.count - first), dim: job.dim });
    }
    return units;
  },
  ops: (unit) => 2n * BigInt(unit.rows) * BigInt(unit.dim),
  requirements: () => ({ precision: 'f32', features: [] }),
  leasePayload(job, unit) {
    const { x, y } = slice(job, unit);
    return { operands: { x: f32Tensor([unit.rows, unit.dim], x), y: f32Tensor([unit.rows, unit.dim], y) }, params: { first: unit.first } };
  },

  decodeResult(_job, unit, output) {
    if (output.dtype !== 'f32' || output.shape.length !== 1 || output.shape[0] !== unit.rows) {
      return fail('shape-mismatch', `result is ${output.dtype} ${output.shape.join('x')}, unit expects f32 ${unit.rows}`);
    }
    return { ok: true, value: Float32Array.from(f32Values(output)) };
  },
  encodeResult: bytes,
  decodeStoredResult: (_unit, stored) => new Float32Array(Uint8Array.from(stored).buffer),
  async verify(_ctx, job, unit, result) {
    const { x, y } = slice(job, unit);
    const expected = dots(x, y, unit.rows, unit.dim);
    const wrong = expected.findIndex((value, i) => value !== result[i]);
    return wrong < 0 ? { ok: true } : fail('verification-failed', `dot product ${unit.first + wrong} is ${result[wrong]}, not ${expected[wrong]}`);
  },

  microCreditsPerGigaOp: () => 3_000_000n,
  receiptKind: () => 'dot',
  assemble(job, results) {
    const out = new Float32Array(job.count);
    for (const unit of dotKind.split(job)) {
      const result = results.get(unit.id);
      if (!result) throw new Error(`assemble: no result for unit ${unit.id}`);
      out.set(result, unit.first);
    }
    return out;
  },
  encodeOutput: (_job, out) => ({ contentType: 'application/json', headers: {}, body: new TextEncoder().encode(JSON.stringify({ dots: [...out] })) }),
};

/** Units per row of the grid that gridDotKind lays a job's units on. */
export const GRID_COLUMNS = 4;

/**
 * The dot kind with operand blocks, for affinity: unit i reads block row(i / GRID_COLUMNS) and block col(i %
 * GRID_COLUMNS), as a GEMM unit reads a row block of A and a column block of B.
 */
export const gridDotKind: typeof dotKind = {
  ...dotKind,
  name: 'dot-grid',
  usage: 'POST /api/jobs/dot-grid?count=N&dim=D (as dot)',
  operandKeys(unit) {
    const i = unit.first / DOTS_PER_UNIT;
    return [`row${Math.floor(i / GRID_COLUMNS)}`, `col${i % GRID_COLUMNS}`];
  },
};

/** The dot kind whose units join into spans: consecutive units, as gemm joins the tiles down a column. */
export const spanDotKind: typeof dotKind = {
  ...dotKind,
  name: 'dot-span',
  usage: 'POST /api/jobs/dot-span?count=N&dim=D (as dot)',
  span(_job, first, waiting, count) {
    const after = new Map(waiting.map((unit) => [unit.first, unit]));
    const parts = [first];
    let rows = first.rows;
    for (let next = after.get(first.first + rows); next && parts.length < count; next = after.get(first.first + rows)) {
      parts.push(next);
      rows += next.rows;
    }
    return parts.length > 1 ? { unit: { ...first, id: `${first.id}:${parts.length}`, rows }, parts } : undefined;
  },
  partResult: (_job, span, result, part) => result.slice(part.first - span.first, part.first - span.first + part.rows),
};
