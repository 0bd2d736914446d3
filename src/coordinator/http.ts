// The requester API: submit a job of any kind as binary operands, read its status, fetch its verified output; keys,
// CORS, rate limits and quotas.
import express, { type Express, type Response } from 'express';
import type { ErrorCode, Parsed } from '../protocol/errors.ts';
import type { ApiKeys } from './api-keys.ts';
import { sendWithRanges } from './byte-range.ts';
import { HttpError } from './http-error.ts';
import type { Jobs } from './jobs.ts';
import { LedgerError, type Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import { Quotas, queueUsage, type RequesterQuota } from './quotas.ts';
import { API_REQUESTS, RateLimiter, type RateLimit } from './rate-limit.ts';
import type { JobState, WorkQueue } from './queue.ts';
import { efficiencyTable } from './rankings.ts';
import { rankingsPage } from './rankings-page.ts';
import type { Uploads } from './upload.ts';

export interface ApiContext {
  jobs: Jobs;
  ledger: Ledger;
  apiKeys: ApiKeys;
  /** Origins besides the coordinator's own that may call the API from a browser (e.g. a dev server). */
  allowedOrigins?: readonly string[];
  /** Whether an origin is one of the fleet's live coordinators (whose pages may read FLEET_READS); none outside a fleet. */
  isFleetOrigin?: (origin: string) => boolean;
  rateLimit?: RateLimit;
  /** Overrides of what each requester's key may hold at once. */
  quota?: Partial<RequesterQuota>;
  /** Receives job bodies, bounded in bytes and time. */
  uploads: Uploads;
  /** What a miner page needs to reach this coordinator. */
  config: () => object;
  minersConnected: () => number;
  /** Services' routes (OCR), mounted before the generic job routes, with the key and rate check every route uses. */
  services?: (api: express.Router, authorize: (req: express.Request, res: Response) => string) => void;
}

/** The HTTP status for each code a kind's parsing can answer; every other refusal of a job is a 400. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = { 'job-too-large': 413, 'product-too-large': 413, 'unknown-kind': 404, 'unknown-model': 404 };

/** A kind's answer, or the HTTP error that says why not. */
function orRefuse<T>(parsed: Parsed<T>): T {
  if (parsed.ok) return parsed.value;
  throw new HttpError(STATUS_OF[parsed.error.code] ?? 400, parsed.error.code, parsed.error.message);
}

/** Express 4 does not pass a rejected promise on to its error handler; this does. */
/** A route written as an async function: what it throws goes to the API's error answer. */
export function asyncRoute(handler: (req: express.Request, res: Response, next: express.NextFunction) => Promise<void>): express.RequestHandler {
  return (req, res, next) => {
    handler(req, res, next).catch(next);
  };
}

export async function jobView(queue: WorkQueue, state: JobState): Promise<object> {
  const unitsDone = state.output ? state.units.size : state.results.size;
  return {
    id: state.id,
    kind: state.kind.name,
    ...state.view,
    status: await queue.status(state),
    unitsTotal: state.units.size,
    unitsDone,
    miners: new Set(state.doneBy.values()).size,
    createdAtMs: state.createdAtMs,
    finishedAtMs: state.finishedAtMs,
  };
}

/** The requester's key from `Authorization: Bearer KEY` (or `x-api-key`), checked; the key's id is the job owner. */
export function requester(req: express.Request, keys: ApiKeys): string {
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
/**
 * What the pages of the coordinator's fleet may read from it: its public config (peer id and receipt key) and the
 * fleet's signed list, so that a miner page served by one coordinator can fail over to another and trust its receipts.
 */
const FLEET_READS = new Set(['/config', '/fleet']);

function sameOriginOnly(allowed: readonly string[], isFleetOrigin: (origin: string) => boolean): express.RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined) return next();
    if (req.method === 'GET' && FLEET_READS.has(req.path) && isFleetOrigin(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      return next();
    }
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
  const { queue } = jobs;
  const api = express.Router();
  const limiter = new RateLimiter(ctx.rateLimit ?? API_REQUESTS);
  const quotas = new Quotas(ctx.quota ?? {}, (owner) => queueUsage(queue, owner));
  api.use(sameOriginOnly(ctx.allowedOrigins ?? [], ctx.isFleetOrigin ?? (() => false)));

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

  ctx.services?.(api, authorize);

  api.get('/config', (_req, res) => {
    res.json(ctx.config());
  });

  api.get('/status', asyncRoute(async (_req, res) => {
    const totals = await ctx.ledger.totals();
    res.json({
      minersConnected: ctx.minersConnected(),
      ...(await queue.counts()),
      credited: { units: totals.units, ops: totals.ops.toString(), microCredits: totals.microCredits.toString() },
    });
  }));

  api.get('/rankings', asyncRoute(async (req, res) => {
    const table = efficiencyTable(await ctx.ledger.efficiency());
    if (req.accepts(['json', 'html']) === 'html') res.type('html').send(rankingsPage(table));
    else res.json(table);
  }));

  api.post('/jobs/:kind', asyncRoute(async (req, res) => {
    const owner = authorize(req, res);
    const kind = jobs.kinds.get(req.params.kind);
    if (!kind) throw new HttpError(404, 'unknown-kind', `no kind of work named ${JSON.stringify(req.params.kind)}; this coordinator serves ${[...jobs.kinds.keys()].join(', ')}`);
    const params = orRefuse(kind.parseParams({ ...(req.query as Record<string, unknown>), 'content-length': req.headers['content-length'] }));
    const footprint = orRefuse(kind.footprint(params));
    const hold = await quotas.hold(owner, footprint);
    try {
      const body = await ctx.uploads.receive(req, footprint.bodyBytes);
      if (kind.prepare) orRefuse(await kind.prepare(params, body));
      const id = jobs.newId();
      const created = orRefuse(kind.createJob(id, params, body));
      const state = await jobs.submit(owner, kind, { id, ...created }, Date.now());
      log('job-submitted', { job: state.id, owner, kind: kind.name, ...state.view, units: state.units.size });
      res.status(201).json(await jobView(queue, state));
    } finally {
      hold.release();
    }
  }));

  api.get('/jobs', asyncRoute(async (req, res) => {
    const owner = authorize(req, res);
    const own = [];
    for (const id of await queue.jobIds()) {
      const state = await queue.job(id);
      if (state?.owner === owner) own.push(await jobView(queue, state));
    }
    res.json({ jobs: own });
  }));

  api.get('/jobs/:id', asyncRoute(async (req, res) => {
    res.json(await jobView(queue, await findJob(jobs, req.params.id, authorize(req, res))));
  }));

  api.get('/jobs/:id/result', asyncRoute(async (req, res) => {
    const state = await findJob(jobs, req.params.id, authorize(req, res));
    if (!state.output) throw new HttpError(409, 'not-done', `job ${state.id} is ${await queue.status(state)}`);
    const { contentType, headers, body } = state.output;
    res.setHeader('content-type', contentType);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    // A job's output never changes and its id is never reused: the id names these bytes.
    sendWithRanges(req, res, body, `"${state.id}-${body.byteLength}"`);
  }));

  api.delete('/jobs/:id', asyncRoute(async (req, res) => {
    await jobs.remove(await findJob(jobs, req.params.id, authorize(req, res)));
    res.status(204).end();
  }));

  api.use((_req, _res, next) => next(new HttpError(404, 'not-found', 'no such API route')));
  api.use(answerApiError);

  app.use('/api', api);
}

/** The API's error answer, for every router under /api: a known error's status, code and sentence; anything else a 500. */
export function answerApiError(err: unknown, req: express.Request, res: Response, _next: express.NextFunction): void {
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
}

async function findJob(jobs: Jobs, id: string, owner: string): Promise<JobState> {
  const state = await jobs.find(id, owner);
  if (!state) throw new HttpError(404, 'unknown-job', `no job ${id} for this API key`);
  return state;
}
