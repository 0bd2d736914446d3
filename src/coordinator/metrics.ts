// What the coordinator did, counted once for both of its operator's views: Prometheus metrics (prom-client, served at
// /metrics) and the per-miner tallies the operator page shows. Settlement, the miner sessions and the HTTP layer call
// the small MetricsRecorder interface; nothing else in the coordinator touches prom-client.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What happened, as settlement, sessions and audits report it. Every method is cheap and never throws. */
export interface MetricsRecorder {
  /** Units went out to a miner: one, or a span's parts in one lease. */
  leased(kind: string, units?: number): void;
  /** A result passed verification and was credited (micro-credits as written to the ledger). */
  verified(event: VerifiedEvent): void;
  /** A result was refused without credit; `reason` is the stable error code the miner was sent. */
  rejected(event: RejectedEvent): void;
  /** Credits written as pending until an audit passes (kinds that audit a sample of results). */
  held(event: { kind: string; minerKey: string; microCredits: bigint }): void;
  /** An audit's verdict: on a pass the pending credits it covers are released, on a failure they are forfeited. */
  audited(event: AuditEvent): void;
}

export interface VerifiedEvent {
  kind: string;
  minerKey: string;
  ops: bigint;
  microCredits: bigint;
  /** Wall time the kind's verifier took, measured by the coordinator. */
  verifySeconds: number;
  /** The energy the receipt carries; 0 or source 'none' when it was not measured. */
  joules: number;
  joulesSource: string;
}

export interface RejectedEvent {
  /** The kind of the unit, or 'unknown' when the result named no lease this miner holds. */
  kind: string;
  minerKey: string;
  reason: string;
  message: string;
  /** Set when the kind's verifier ran (and said no). */
  verifySeconds?: number;
}

export type AuditOutcome = 'passed' | 'failed';

export interface AuditEvent {
  kind: string;
  minerKey: string;
  outcome: AuditOutcome;
  /** Why a failed audit failed: a stable code. */
  reason?: string;
  releasedMicroCredits: bigint;
  forfeitedMicroCredits: bigint;
}

/** For code run without a coordinator's metrics (unit tests of settlement). */
export const noMetrics: MetricsRecorder = {
  leased: () => undefined,
  verified: () => undefined,
  rejected: () => undefined,
  held: () => undefined,
  audited: () => undefined,
};

/** Buckets of verification wall time: Freivalds on a tile takes milliseconds, a re-run audit up to seconds. */
const VERIFY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** The window over which a miner's delivered speed is measured. */
export const SPEED_WINDOW_MS = 60_000;
/** Reasons tallied per miner at most: they are error codes, a short fixed vocabulary; this guards against more. */
const REASONS_KEPT = 20;
/** Miners tallied at most; beyond it the least recently active are forgotten (keys are free to make). */
const MINERS_KEPT = 10_000;

export interface ReasonTally {
  reason: string;
  count: number;
  lastMessage: string;
  lastAtMs: number;
}

/** One wallet key's record since this coordinator started. */
export interface MinerActivity {
  minerKey: string;
  unitsVerified: number;
  unitsRejected: number;
  opsVerified: bigint;
  /** ops and joules of the verified units whose energy was measured, by how it was measured */
  energy: Map<string, { ops: bigint; joules: number }>;
  /** (when, ops) of units verified within SPEED_WINDOW_MS, oldest first */
  recent: { atMs: number; ops: bigint }[];
  rejections: Map<string, ReasonTally>;
  failedAudits: Map<string, ReasonTally>;
  auditsPassed: number;
  pendingMicroCredits: bigint;
  forfeitedMicroCredits: bigint;
  lastAtMs: number;
}

/** Totals since start, as the operator page shows them beside the ledger's. */
export interface ActivityTotals {
  unitsLeased: number;
  unitsVerified: number;
  unitsRejected: number;
  microCreditsIssued: bigint;
  pendingMicroCredits: bigint;
  forfeitedMicroCredits: bigint;
  auditsPassed: number;
  auditsFailed: number;
}

/** Gauges read when scraped: the caller knows the live numbers, the metrics only ask. */
export interface MetricsSources {
  /** Sessions whose miner proved a wallet key. */
  minersConnected: () => number;
  /** Connections, including those that have not said hello yet. */
  connections: () => number;
  /** Units of open jobs not yet verified, by kind. */
  queueDepth: () => Promise<ReadonlyMap<string, number>>;
}

export class CoordinatorMetrics implements MetricsRecorder {
  /** One registry per coordinator, so that several in one process (tests) never share counts. */
  readonly registry = new Registry();
  readonly totals: ActivityTotals = {
    unitsLeased: 0, unitsVerified: 0, unitsRejected: 0, microCreditsIssued: 0n,
    pendingMicroCredits: 0n, forfeitedMicroCredits: 0n, auditsPassed: 0, auditsFailed: 0,
  };
  private readonly miners = new Map<string, MinerActivity>();
  private readonly unitsLeased: Counter<'kind'>;
  private readonly unitsVerified: Counter<'kind'>;
  private readonly unitsRejected: Counter<'kind' | 'reason'>;
  private readonly verifySeconds: Histogram<'kind'>;
  private readonly creditsIssued: Counter<'kind'>;
  private readonly creditsHeld: Counter<'kind'>;
  private readonly creditsForfeited: Counter<'kind'>;
  private readonly audits: Counter<'kind' | 'outcome'>;
  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;

  constructor(kinds: readonly string[], sources: MetricsSources, private readonly now: () => number = Date.now) {
    const registers = [this.registry];
    this.unitsLeased = new Counter({ name: 'ergon_units_leased_total', help: 'Units leased to miners.', labelNames: ['kind'], registers });
    this.unitsVerified = new Counter({ name: 'ergon_units_verified_total', help: 'Results that passed verification and were credited.', labelNames: ['kind'], registers });
    this.unitsRejected = new Counter({
      name: 'ergon_units_rejected_total', help: 'Results refused without credit, by the error code the miner was sent.', labelNames: ['kind', 'reason'], registers,
    });
    this.verifySeconds = new Histogram({
      name: 'ergon_verification_seconds', help: 'Wall time of a kind\'s verifier per result.', labelNames: ['kind'], buckets: VERIFY_BUCKETS_S, registers,
    });
    // Micro-credits are integers; a float64 counter holds them exactly up to 2^53 (9 billion credits).
    this.creditsIssued = new Counter({ name: 'ergon_credits_issued_microcredits_total', help: 'Micro-credits written to the ledger for verified units.', labelNames: ['kind'], registers });
    this.creditsHeld = new Counter({ name: 'ergon_credits_held_microcredits_total', help: 'Micro-credits written as pending until an audit passes.', labelNames: ['kind'], registers });
    this.creditsForfeited = new Counter({ name: 'ergon_credits_forfeited_microcredits_total', help: 'Pending micro-credits forfeited by failed audits.', labelNames: ['kind'], registers });
    this.audits = new Counter({ name: 'ergon_audits_total', help: 'Audits of results (a re-run of a sample), by outcome.', labelNames: ['kind', 'outcome'], registers });
    this.httpRequests = new Counter({ name: 'ergon_http_requests_total', help: 'HTTP requests by route pattern, method and status.', labelNames: ['route', 'method', 'status'], registers });
    new Gauge({
      name: 'ergon_miners_connected', help: 'Miner sessions that proved a wallet key.', registers,
      collect() {
        this.set(sources.minersConnected());
      },
    });
    new Gauge({
      name: 'ergon_connections', help: 'Data-channel connections, including those that have not said hello.', registers,
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'ergon_queue_units', help: 'Units of open jobs not yet verified (waiting or leased), by kind.', labelNames: ['kind'], registers,
      async collect() {
        const depth = await sources.queueDepth();
        for (const kind of kinds) this.set({ kind }, depth.get(kind) ?? 0);
      },
    });
    // Every kind's series exist from the start at 0, so that rate() and absent() behave before the first event.
    for (const kind of kinds) {
      for (const counter of [this.unitsLeased, this.unitsVerified, this.creditsIssued, this.creditsHeld, this.creditsForfeited]) counter.labels({ kind }).inc(0);
      for (const outcome of ['passed', 'failed'] as const) this.audits.labels({ kind, outcome }).inc(0);
    }
  }

  leased(kind: string, units = 1): void {
    this.unitsLeased.labels({ kind }).inc(units);
    this.totals.unitsLeased += units;
  }

  verified(event: VerifiedEvent): void {
    const { kind } = event;
    this.unitsVerified.labels({ kind }).inc();
    this.verifySeconds.labels({ kind }).observe(event.verifySeconds);
    this.creditsIssued.labels({ kind }).inc(Number(event.microCredits));
    this.totals.unitsVerified++;
    this.totals.microCreditsIssued += event.microCredits;
    const miner = this.miner(event.minerKey);
    miner.unitsVerified++;
    miner.opsVerified += event.ops;
    miner.recent.push({ atMs: miner.lastAtMs, ops: event.ops });
    this.trimRecent(miner);
    if (event.joulesSource !== 'none' && event.joules > 0) {
      const energy = miner.energy.get(event.joulesSource) ?? { ops: 0n, joules: 0 };
      miner.energy.set(event.joulesSource, { ops: energy.ops + event.ops, joules: energy.joules + event.joules });
    }
  }

  rejected(event: RejectedEvent): void {
    this.unitsRejected.labels({ kind: event.kind, reason: event.reason }).inc();
    if (event.verifySeconds !== undefined) this.verifySeconds.labels({ kind: event.kind }).observe(event.verifySeconds);
    this.totals.unitsRejected++;
    const miner = this.miner(event.minerKey);
    miner.unitsRejected++;
    tally(miner.rejections, event.reason, event.message, miner.lastAtMs);
  }

  held(event: { kind: string; minerKey: string; microCredits: bigint }): void {
    this.creditsHeld.labels({ kind: event.kind }).inc(Number(event.microCredits));
    this.totals.pendingMicroCredits += event.microCredits;
    this.miner(event.minerKey).pendingMicroCredits += event.microCredits;
  }

  audited(event: AuditEvent): void {
    this.audits.labels({ kind: event.kind, outcome: event.outcome }).inc();
    const miner = this.miner(event.minerKey);
    const settled = event.releasedMicroCredits + event.forfeitedMicroCredits;
    miner.pendingMicroCredits -= settled;
    this.totals.pendingMicroCredits -= settled;
    if (event.forfeitedMicroCredits > 0n) this.creditsForfeited.labels({ kind: event.kind }).inc(Number(event.forfeitedMicroCredits));
    miner.forfeitedMicroCredits += event.forfeitedMicroCredits;
    this.totals.forfeitedMicroCredits += event.forfeitedMicroCredits;
    if (event.outcome === 'passed') {
      miner.auditsPassed++;
      this.totals.auditsPassed++;
    } else {
      this.totals.auditsFailed++;
      tally(miner.failedAudits, event.reason ?? 'audit-failed', `audit of a ${event.kind} result failed`, miner.lastAtMs);
    }
  }

  /**
   * Counts each request once it is answered, by the route pattern it matched ('/api/jobs/:id'), never its raw path,
   * so that ids and probes cannot grow the number of series without bound.
   */
  httpMiddleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      res.once('finish', () => {
        this.httpRequests.labels({ route: routeOf(req), method: methodOf(req.method), status: String(res.statusCode) }).inc();
      });
      next();
    };
  }

  /** The Prometheus text exposition of every metric. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Every tallied miner, most recently active first. */
  activity(): MinerActivity[] {
    for (const miner of this.miners.values()) this.trimRecent(miner);
    return [...this.miners.values()].sort((a, b) => b.lastAtMs - a.lastAtMs);
  }

  activityOf(minerKey: string): MinerActivity | undefined {
    const miner = this.miners.get(minerKey);
    if (miner) this.trimRecent(miner);
    return miner;
  }

  private miner(minerKey: string): MinerActivity {
    let miner = this.miners.get(minerKey);
    if (miner) {
      // Re-inserted, so that the map's order is least recently active first.
      this.miners.delete(minerKey);
    } else {
      miner = {
        minerKey, unitsVerified: 0, unitsRejected: 0, opsVerified: 0n, energy: new Map(), recent: [], rejections: new Map(),
        failedAudits: new Map(), auditsPassed: 0, pendingMicroCredits: 0n, forfeitedMicroCredits: 0n, lastAtMs: 0,
      };
      if (this.miners.size >= MINERS_KEPT) {
        const oldest = this.miners.keys().next();
        if (!oldest.done) this.miners.delete(oldest.value);
      }
    }
    miner.lastAtMs = this.now();
    this.miners.set(minerKey, miner);
    return miner;
  }

  private trimRecent(miner: MinerActivity): void {
    const since = this.now() - SPEED_WINDOW_MS;
    let drop = 0;
    while (drop < miner.recent.length && miner.recent[drop].atMs < since) drop++;
    if (drop > 0) miner.recent.splice(0, drop);
  }
}

function tally(tallies: Map<string, ReasonTally>, reason: string, message: string, atMs: number): void {
  const current = tallies.get(reason);
  tallies.set(reason, { reason, count: (current?.count ?? 0) + 1, lastMessage: message, lastAtMs: atMs });
  if (tallies.size > REASONS_KEPT) {
    const oldest = [...tallies.values()].sort((a, b) => a.lastAtMs - b.lastAtMs)[0];
    tallies.delete(oldest.reason);
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
const methodOf = (method: string) => (METHODS.has(method) ? method : 'other');

/** The route pattern a request matched, or the area it fell in when it matched none. */
function routeOf(req: Request): string {
  const route: unknown = req.route;
  if (route && typeof route === 'object' && 'path' in route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  const path = req.originalUrl.split('?')[0];
  if (path.startsWith('/peerjs')) return '/peerjs';
  if (path.startsWith('/api/')) return '/api (no route)';
  return '(static)';
}
