// The requester API: submit a GEMM as binary operands, read its status, fetch the verified product.
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import express, { type Express, type Response } from 'express';
import { allFinite } from '../protocol/tensor.ts';
import { MAX_GEMM_DIM } from '../work/gemm/gemm.ts';
import type { Ledger } from './ledger/ledger.ts';
import type { Scheduler, JobState } from './scheduler.ts';

export interface ApiContext {
  scheduler: Scheduler;
  ledger: Ledger;
  /** What a miner page needs to reach this coordinator. */
  config: () => object;
  minersConnected: () => number;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function dim(raw: unknown, name: string): number {
  const value = typeof raw === 'string' && /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_GEMM_DIM) {
    throw new HttpError(400, 'bad-shape', `${name} must be an integer from 1 to ${MAX_GEMM_DIM}, got ${JSON.stringify(raw ?? null)}`);
  }
  return value;
}

/** Reads exactly `expectedBytes` of body, refusing more before buffering it. */
async function readBody(req: IncomingMessage, expectedBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== expectedBytes) {
    throw new HttpError(400, 'bad-body-length', `body is ${declared} bytes; ${expectedBytes} expected (A then B, f32 little-endian)`);
  }
  const body = new Uint8Array(expectedBytes);
  let received = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (received + chunk.byteLength > expectedBytes) {
      throw new HttpError(413, 'body-too-large', `body exceeds the ${expectedBytes} bytes that m, n and k imply`);
    }
    body.set(chunk, received);
    received += chunk.byteLength;
  }
  if (received !== expectedBytes) {
    throw new HttpError(400, 'bad-body-length', `body is ${received} bytes; ${expectedBytes} expected (A then B, f32 little-endian)`);
  }
  return body;
}

/** Express 4 does not pass a rejected promise on to its error handler; this does. */
function asyncRoute(handler: (req: express.Request, res: Response) => Promise<void>): express.RequestHandler {
  return (req, res, next) => {
    handler(req, res).catch(next);
  };
}

export function jobView(scheduler: Scheduler, state: JobState): object {
  const { job } = state;
  const unitsDone = state.output ? state.units.size : state.results.size;
  return {
    id: job.id,
    kind: 'gemm',
    m: job.m,
    n: job.n,
    k: job.k,
    status: scheduler.status(state),
    unitsTotal: state.units.size,
    unitsDone,
    miners: new Set(state.doneBy.values()).size,
    createdAtMs: state.createdAtMs,
    finishedAtMs: state.finishedAtMs,
  };
}

export function mountApi(app: Express, ctx: ApiContext): void {
  const { scheduler } = ctx;
  const api = express.Router();

  api.get('/config', (_req, res) => {
    res.json(ctx.config());
  });

  api.get('/status', asyncRoute(async (_req, res) => {
    const totals = await ctx.ledger.totals();
    res.json({
      minersConnected: ctx.minersConnected(),
      ...scheduler.counts(),
      credited: { units: totals.units, ops: totals.ops.toString(), microCredits: totals.microCredits.toString() },
    });
  }));

  api.post('/jobs/gemm', asyncRoute(async (req, res) => {
    const m = dim(req.query.m, 'm');
    const n = dim(req.query.n, 'n');
    const k = dim(req.query.k, 'k');
    const body = await readBody(req, 4 * (m * k + k * n));
    const values = new Float32Array(body.buffer);
    if (!allFinite(values)) throw new HttpError(400, 'non-finite', 'operands contain NaN or Infinity');
    const a = values.subarray(0, m * k);
    const b = values.subarray(m * k);
    const state = scheduler.submit({ id: randomUUID(), m, n, k, a, b }, Date.now());
    res.status(201).json(jobView(scheduler, state));
  }));

  api.get('/jobs/:id', (req, res) => {
    res.json(jobView(scheduler, findJob(scheduler, req.params.id)));
  });

  api.get('/jobs/:id/result', (req, res) => {
    const state = findJob(scheduler, req.params.id);
    if (!state.output) throw new HttpError(409, 'not-done', `job ${state.job.id} is ${scheduler.status(state)}`);
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('x-ergon-shape', `${state.job.m}x${state.job.n}`);
    res.end(new Uint8Array(state.output.buffer, state.output.byteOffset, state.output.byteLength));
  });

  api.delete('/jobs/:id', (req, res) => {
    if (!scheduler.remove(req.params.id)) throw new HttpError(404, 'unknown-job', `no job ${req.params.id}`);
    res.status(204).end();
  });

  api.use((_req, _res, next) => next(new HttpError(404, 'not-found', 'no such API route')));
  api.use((err: unknown, _req: express.Request, res: Response, _next: express.NextFunction) => {
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    console.error(err);
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  });

  app.use('/api', api);
}

function findJob(scheduler: Scheduler, id: string): JobState {
  const state = scheduler.job(id);
  if (!state) throw new HttpError(404, 'unknown-job', `no job ${id}`);
  return state;
}
