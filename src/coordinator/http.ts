// The requester API: submit a GEMM as binary operands, read its status, fetch the verified product; keys, CORS, rate limits, quotas.
import express, { type Express, type Response } from 'express';
import { MAX_GEMM_DIM } from '../work/gemm/gemm.ts';
import type { ApiKeys } from './api-keys.ts';
import { HttpError } from './http-error.ts';
import type { Jobs } from './jobs.ts';
import type { Ledger } from './ledger/ledger.ts';
import { LedgerError } from './ledger/sqlite.ts';
import { log } from './log.ts';
import { gemmFootprint, Quotas, schedulerUsage, type RequesterQuota } from './quotas.ts';
import { API_REQUESTS, RateLimiter, type RateLimit } from './rate-limit.ts';
import type { Scheduler, JobState } from './scheduler.ts';
import type { Uploads } from './upload.ts';

export interface ApiContext {
  jobs: Jobs;
  ledger: Ledger;
  apiKeys: ApiKeys;
  /** Origins besides the coordinator's own that may call the API from a browser (e.g. a dev server). */
  allowedOrigins?: readonly string[];
  rateLimit?: RateLimit;
  /** Overrides of what each requester's key may hold at once. */
  quota?: Partial<RequesterQuota>;
  /** Receives job bodies into the operand store. */
  uploads: Uploads;
  /** What a miner page needs to reach this coordinator. */
  config: () => object;
  minersConnected: () => number;
}

function dim(raw: unknown, name: string): number {
  const value = typeof raw === 'string' && /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_GEMM_DIM) {
    throw new HttpError(400, 'bad-shape', `${name} must be an integer from 1 to ${MAX_GEMM_DIM}, got ${JSON.stringify(raw ?? null)}`);
  }
  return value;
}

/** `precision`: f32 (the default), or f16: the operands are rounded to halves and the job is paid as f16 work. */
function precision(raw: unknown): 'f32' | 'f16' {
  if (raw === undefined || raw === 'f32') return 'f32';
  if (raw === 'f16') return 'f16';
  throw new HttpError(400, 'bad-precision', `precision must be f32 or f16, got ${JSON.stringify(raw)}`);
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
    precision: job.precision,
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

/** The requester's key from `Authorization: Bearer KEY` (or `x-api-key`), checked; the key's id is the job owner. */
function requester(req: express.Request, keys: ApiKeys): string {
  const header = req.headers.authorization;
  const bearer = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
  const raw = bearer ?? req.headers['x-api-key'];
  const key = typeof raw === 'string' ? raw : undefined;
  if (key === undefined) throw new HttpError(401, 'no-api-key', 'send your API key as "Authorization: Bearer KEY"');
  const id = keys.identify(key);
  if (id === undefined) throw new HttpError(401, 'bad-api-key', 'that API key is not known to this coordinator');
  return id;
}

/**
 * Browsers may call the API only from the coordinator's own origin (the page it serves) or an origin the operator
 * allowed; any other Origin is refused outright, preflight included, and never gets CORS headers.
 */
function sameOriginOnly(allowed: readonly string[]): express.RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined) return next();
    const own = `${req.protocol}://${req.headers.host ?? ''}`;
    if (origin !== own && !allowed.includes(origin)) {
      return next(new HttpError(403, 'origin-not-allowed', `requests from ${origin} are not allowed; use the coordinator's own page`));
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE');
      res.setHeader('access-control-allow-headers', 'authorization, content-type, x-api-key');
      res.status(204).end();
      return;
    }
    next();
  };
}

export function mountApi(app: Express, ctx: ApiContext): void {
  const { jobs } = ctx;
  const { scheduler } = jobs;
  const api = express.Router();
  const limiter = new RateLimiter(ctx.rateLimit ?? API_REQUESTS);
  const quotas = new Quotas(ctx.quota ?? {}, (owner) => schedulerUsage(scheduler, owner));
  api.use(sameOriginOnly(ctx.allowedOrigins ?? []));

  /** Authenticates and spends one token of the key's bucket; returns the key's id. */
  const authorize = (req: express.Request, res: Response): string => {
    const owner = requester(req, ctx.apiKeys);
    const bucket = limiter.bucket(owner, Date.now());
    if (!bucket.take(Date.now())) {
      const retryMs = bucket.retryAfterMs();
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryMs / 1000))));
      throw new HttpError(429, 'rate-limited', `too many requests for this API key; retry after ${retryMs} ms`);
    }
    return owner;
  };

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
    const owner = authorize(req, res);
    const m = dim(req.query.m, 'm');
    const n = dim(req.query.n, 'n');
    const k = dim(req.query.k, 'k');
    const wanted = precision(req.query.precision);
    const footprint = gemmFootprint(m, n, k, wanted);
    const hold = quotas.hold(owner, footprint);
    try {
      const operands = await ctx.uploads.receive(req, footprint.operandBytes, wanted);
      const state = await jobs.submit(owner, m, n, k, operands, Date.now());
      log('job-submitted', { job: state.job.id, owner, m, n, k, precision: wanted, units: state.units.size });
      res.status(201).json(jobView(scheduler, state));
    } finally {
      hold.release();
    }
  }));

  api.get('/jobs/:id', (req, res) => {
    res.json(jobView(scheduler, findJob(jobs, req.params.id, authorize(req, res))));
  });

  api.get('/jobs/:id/result', (req, res) => {
    const state = findJob(jobs, req.params.id, authorize(req, res));
    if (!state.output) throw new HttpError(409, 'not-done', `job ${state.job.id} is ${scheduler.status(state)}`);
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('x-ergon-shape', `${state.job.m}x${state.job.n}`);
    res.end(new Uint8Array(state.output.buffer, state.output.byteOffset, state.output.byteLength));
  });

  api.delete('/jobs/:id', asyncRoute(async (req, res) => {
    await jobs.remove(findJob(jobs, req.params.id, authorize(req, res)));
    res.status(204).end();
  }));

  api.use((_req, _res, next) => next(new HttpError(404, 'not-found', 'no such API route')));
  api.use((err: unknown, req: express.Request, res: Response, _next: express.NextFunction) => {
    // A body read in part and then left (a stalled or refused upload) is never read on: the connection is closed.
    if (req.readableDidRead && !req.complete) res.setHeader('connection', 'close');
    if (err instanceof HttpError) {
      for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
      res.status(err.status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    if (err instanceof LedgerError) {
      log('storage-error', { code: err.code, message: err.message });
      res.status(503).json({ error: { code: err.code, message: err.message } });
      return;
    }
    if (err instanceof SyntaxError || (err instanceof Error && 'status' in err && err.status === 400)) {
      res.status(400).json({ error: { code: 'malformed-request', message: err.message } });
      return;
    }
    if (err instanceof Error && 'code' in err && (err.code === 'ENOSPC' || err.code === 'EDQUOT')) {
      log('storage-error', { code: 'storage-full', message: err.message });
      res.status(507).json({ error: { code: 'storage-full', message: 'the coordinator\'s disk is full; the job was not stored' } });
      return;
    }
    log('api-error', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  });

  app.use('/api', api);
}

function findJob(jobs: Jobs, id: string, owner: string): JobState {
  const state = jobs.find(id, owner);
  if (!state) throw new HttpError(404, 'unknown-job', `no job ${id} for this API key`);
  return state;
}
