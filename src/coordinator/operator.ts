// The operator's views of a running coordinator, behind the operator key: GET /metrics (Prometheus text) and
// GET /api/operator/state (the operator page's JSON, polled), with the samples its charts are drawn from.
import type { Express, Request, Response } from 'express';
import * as v from 'valibot';
import { OperatorState, OperatorStateQuery, type OnlineMiner, type MinerOffences, type ReasonCount, type Sample } from '../protocol/operator-state.ts';
import type { Ledger, Reputation } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { CoordinatorMetrics, MinerActivity } from './metrics.ts';
import type { MinerSession } from './miner-session.ts';
import type { OperatorKey } from './operator-key.ts';
import type { WorkQueue } from './queue.ts';

/** How often the counters are sampled for the charts. */
export const SAMPLE_EVERY_MS = 2_000;
/** Samples kept: an hour at one every 2 s. */
const SAMPLES_KEPT = 1_800;
/** The window of the verified units/s headline figure. */
const RATE_WINDOW_MS = 60_000;
/** Rows at most in each table, so that a crowd of keys (they are free) cannot make the state unbounded. */
const MINERS_SHOWN = 200;
const OFFENDERS_SHOWN = 100;

export interface OperatorContext {
  key: OperatorKey;
  metrics: CoordinatorMetrics;
  ledger: Ledger;
  queue: WorkQueue;
  kinds: readonly string[];
  sessions: ReadonlyMap<string, MinerSession>;
}

/** Units of open jobs not yet verified (waiting or leased), by kind, read through the queue's interface. */
export async function queueDepth(queue: WorkQueue): Promise<Map<string, number>> {
  const depth = new Map<string, number>();
  for (const id of await queue.jobIds()) {
    const state = await queue.job(id);
    if (!state || state.output) continue;
    const name = state.kind.name;
    depth.set(name, (depth.get(name) ?? 0) + state.units.size - state.results.size);
  }
  return depth;
}

/** Sessions whose miner proved a wallet key. */
export const minersConnected = (sessions: ReadonlyMap<string, MinerSession>): number =>
  [...sessions.values()].filter((s) => s.minerKey !== null).length;

export class OperatorView {
  readonly startedAtMs = Date.now();
  private readonly samples: Sample[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private sampling = false;

  constructor(private readonly ctx: OperatorContext) {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_EVERY_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Takes one sample of the counters (also on a timer); a slow queue never stacks samples up. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const { totals } = this.ctx.metrics;
      const depth = await queueDepth(this.ctx.queue);
      this.samples.push({
        atMs: Date.now(),
        unitsVerified: totals.unitsVerified,
        unitsRejected: totals.unitsRejected,
        minersOnline: minersConnected(this.ctx.sessions),
        queueUnits: [...depth.values()].reduce((s, n) => s + n, 0),
        microCreditsIssued: totals.microCreditsIssued.toString(),
      });
      if (this.samples.length > SAMPLES_KEPT) this.samples.splice(0, this.samples.length - SAMPLES_KEPT);
    } catch (err) {
      log('operator-error', { event: 'sample', error: String(err) });
    } finally {
      this.sampling = false;
    }
  }

  async state(sinceMs: number | undefined): Promise<OperatorState> {
    const { metrics, ledger, queue, kinds, sessions } = this.ctx;
    const nowMs = Date.now();
    const reputations = new Map<string, Reputation>();
    const reputationOf = async (minerKey: string) => {
      const known = reputations.get(minerKey);
      if (known) return known;
      const record = await ledger.reputation(minerKey);
      reputations.set(minerKey, record);
      return record;
    };

    const online = new Map<string, MinerSession[]>();
    for (const session of sessions.values()) {
      if (session.minerKey === null || session.declared === null) continue;
      online.set(session.minerKey, [...(online.get(session.minerKey) ?? []), session]);
    }
    const miners: OnlineMiner[] = [];
    for (const [minerKey, ofKey] of online) {
      const first = ofKey.reduce((a, b) => ((a.declared?.connectedAtMs ?? 0) <= (b.declared?.connectedAtMs ?? 0) ? a : b));
      const declared = first.declared;
      if (!declared) continue;
      const activity = metrics.activityOf(minerKey);
      const windowMs = Math.max(1, Math.min(RATE_WINDOW_MS, nowMs - declared.connectedAtMs));
      const recentOps = (activity?.recent ?? []).reduce((s, r) => s + r.ops, 0n);
      miners.push({
        minerKey,
        sessions: ofKey.length,
        adapter: describeAdapter(declared.adapter),
        engine: declared.backend,
        kinds: [...declared.kinds],
        connectedAtMs: declared.connectedAtMs,
        gflopsPerSecond: Number(recentOps) / 1e9 / (windowMs / 1000),
        gflopsPerJoule: [...(activity?.energy ?? new Map<string, { ops: bigint; joules: number }>())].map(([source, e]) => ({ source, value: Number(e.ops) / 1e9 / e.joules })),
        unitsVerified: activity?.unitsVerified ?? 0,
        unitsRejected: activity?.unitsRejected ?? 0,
        reputation: reputationView(await reputationOf(minerKey)),
      });
    }
    miners.sort((a, b) => b.gflopsPerSecond - a.gflopsPerSecond || a.minerKey.localeCompare(b.minerKey));

    const offences: MinerOffences[] = [];
    for (const activity of metrics.activity()) {
      if (offences.length >= OFFENDERS_SHOWN) break;
      if (activity.rejections.size === 0 && activity.failedAudits.size === 0) continue;
      offences.push({
        minerKey: activity.minerKey,
        online: online.has(activity.minerKey),
        rejections: reasons(activity.rejections),
        failedAudits: reasons(activity.failedAudits),
        forfeitedMicroCredits: activity.forfeitedMicroCredits.toString(),
        reputation: reputationView(await reputationOf(activity.minerKey)),
      });
    }

    const depth = await queueDepth(queue);
    const ledgerTotals = await ledger.totals();
    const { totals } = metrics;
    const settled = ledgerTotals.microCredits - totals.pendingMicroCredits;
    const state: OperatorState = {
      atMs: nowMs,
      startedAtMs: this.startedAtMs,
      sampleEveryMs: SAMPLE_EVERY_MS,
      kinds: [...kinds],
      miners: miners.slice(0, MINERS_SHOWN),
      connections: sessions.size,
      queue: kinds.map((kind) => ({ kind, units: depth.get(kind) ?? 0 })),
      verifiedUnitsPerSecond: this.verifiedRate(nowMs),
      totals: {
        unitsLeased: totals.unitsLeased,
        unitsVerified: totals.unitsVerified,
        unitsRejected: totals.unitsRejected,
        auditsPassed: totals.auditsPassed,
        auditsFailed: totals.auditsFailed,
      },
      offences,
      credits: {
        settledMicroCredits: (settled > 0n ? settled : 0n).toString(),
        pendingMicroCredits: totals.pendingMicroCredits.toString(),
        forfeitedMicroCredits: totals.forfeitedMicroCredits.toString(),
      },
      ledger: { units: ledgerTotals.units, ops: ledgerTotals.ops.toString(), microCredits: ledgerTotals.microCredits.toString() },
      history: this.samples.filter((s) => sinceMs === undefined || s.atMs > sinceMs),
    };
    return state;
  }

  /** Units verified per second over the last minute (or since start, when younger), from the samples. */
  private verifiedRate(nowMs: number): number {
    const from = this.samples.find((s) => s.atMs >= nowMs - RATE_WINDOW_MS) ?? { atMs: this.startedAtMs, unitsVerified: 0 };
    const seconds = (nowMs - from.atMs) / 1000;
    return seconds > 0 ? (this.ctx.metrics.totals.unitsVerified - from.unitsVerified) / seconds : 0;
  }
}

const reputationView = (r: Reputation) => ({ score: r.score, accepted: r.accepted, rejected: r.rejected, bannedUntilMs: r.bannedUntilMs });

const reasons = (tallies: MinerActivity['rejections']): ReasonCount[] => [...tallies.values()].sort((a, b) => b.count - a.count).map((t) => ({ ...t }));

function describeAdapter(adapter: NonNullable<MinerSession['declared']>['adapter']): string {
  const parts = [adapter.description, adapter.vendor, adapter.architecture].map((p) => p.trim()).filter((p) => p !== '');
  const text = parts.length > 0 ? [...new Set(parts)].join(' · ') : 'unnamed adapter';
  return adapter.isFallbackAdapter ? `${text} (fallback)` : text;
}

/** The operator's key from `Authorization: Bearer KEY`; anything else is answered 401 with a sentence, and false. */
function operatorOnly(key: OperatorKey, req: Request, res: Response): boolean {
  const header = req.headers.authorization;
  const presented = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
  const refuse = (code: string, message: string) => {
    res.setHeader('www-authenticate', 'Bearer realm="ergon-operator"');
    res.status(401).json({ error: { code, message } });
    return false;
  };
  if (presented === undefined || presented === '') {
    return refuse('no-operator-key', 'send the operator key as "Authorization: Bearer KEY" (npm start prints it; it is kept in the data folder\'s operator-key file)');
  }
  if (!key.matches(presented)) return refuse('bad-operator-key', 'that is not this coordinator\'s operator key');
  return true;
}

/**
 * Mounts /metrics and /api/operator/state; call before the requester API, whose router answers every other /api
 * path. /metrics needs the operator key too: it tells anyone who reads it how much work and money flows through
 * this coordinator, so Prometheus scrapes it with `authorization: { credentials_file: <data>/operator-key }`.
 */
export function mountOperator(app: Express, view: OperatorView, ctx: Pick<OperatorContext, 'key' | 'metrics'>): void {
  /** A failure reading the state is logged and answered with a code and a sentence, never a stack. */
  const failed = (res: Response, route: string) => (err: unknown) => {
    log('operator-error', { route, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    if (!res.headersSent) res.status(500).json({ error: { code: 'internal', message: 'the coordinator failed to read its own state; see its log' } });
  };

  app.get('/metrics', (req, res) => {
    if (!operatorOnly(ctx.key, req, res)) return;
    ctx.metrics.exposition().then(({ contentType, body }) => {
      res.setHeader('content-type', contentType);
      res.setHeader('cache-control', 'no-store');
      res.end(body);
    }, failed(res, '/metrics'));
  });

  app.get('/api/operator/state', (req, res) => {
    if (!operatorOnly(ctx.key, req, res)) return;
    const query = v.safeParse(OperatorStateQuery, req.query);
    if (!query.success) {
      res.status(400).json({ error: { code: 'bad-params', message: `bad query: ${query.issues.map((i) => i.message).join('; ')}` } });
      return;
    }
    view.state(query.output.since).then((state) => {
      // What goes out is checked against the schema the page parses with, so a drift fails here, loudly, in tests.
      const checked = v.safeParse(OperatorState, state);
      if (!checked.success) throw new Error(`operator state does not match its schema: ${checked.issues.map((i) => i.message).join('; ')}`);
      res.setHeader('cache-control', 'no-store');
      res.json(state);
    }).catch(failed(res, '/api/operator/state'));
  });
}
