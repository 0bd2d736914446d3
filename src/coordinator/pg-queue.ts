// The fleet's queue: units and leases as rows in the shared PostgreSQL, so that any coordinator leases any job's
// units (SELECT ... FOR UPDATE SKIP LOCKED), expires whichever overdue leases it notices first (or those of a
// coordinator that stopped beating), and assembles a job's output when it settles its last unit. Each coordinator
// keeps only a cache of the jobs it has read (their kind's job, rebuilt from the shared operand store).
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { canRun, type AnyWorkKind, type EncodedOutput, type MinerCapabilities, type Requirements, type UnitBase } from '../work/kind.ts';
import type { KindRegistry } from '../work/registry.ts';
import { inTransaction, pgLedgerError, storedJob } from './ledger/postgres.ts';
import type { StoredJob } from './ledger/ledger.ts';
import { KeyTurns } from './key-turns.ts';
import { log } from './log.ts';
import type { OperandStore } from './operand-store.ts';
import type { EndedLease, JobState, JobStatus, Lease, LeaseEnd, NewJob, QueueCounts, WorkQueue } from './queue.ts';
import { leaseDurationMs, RESULT_RETENTION_MS } from './scheduler.ts';
import { BlocksLeased, blocksOf, pickUnit } from './unit-ranking.ts';

/** A coordinator not heard from this long is dead: its miners' leases go back in the queue. */
export const COORDINATOR_SILENT_MS = 10_000;
/** Ended leases are remembered this long, for the right answer to a late or replayed result. */
const ENDED_LEASES_KEPT_MS = 60 * 60_000;
/**
 * The longest a span lease waits for its job's turn at the fleet: leases take milliseconds, so only a coordinator
 * stalled holding the turn makes another wait this long.
 */
const SPAN_TURN_WAIT_MS = 2_000;
/**
 * How many of the oldest job's waiting units affinity looks at (and locks) per lease: enough to span a few block
 * rows or columns of a large job, few enough that one lease never locks a whole job against the fleet.
 */
const AFFINITY_CANDIDATES = 256;

/** Who this coordinator is, as the fleet's table of coordinators shows it. */
export interface FleetMember {
  /** one per process: a restarted coordinator is a new instance, and its predecessor's leases go back */
  instance: string;
  /** hex of its receipt-signing key */
  signingKey: string;
  url: string;
  peerId: string;
}

interface CachedJob {
  state: JobState;
  needs: Requirements;
}

/** What a unit row's lease columns are set to when its lease ends. */
const NOT_LEASED = 'lease_id = NULL, session_id = NULL, coordinator = NULL, leased_at_ms = NULL, deadline_at_ms = NULL, lease_unit = NULL, lease_part = NULL';

/**
 * New ranks for units put back (`units`: unit_id, lease_id, lease_part), ahead of every unit waiting: negative, the
 * newest the most, and a span's parts in their order, so that the next lease of them is joined as this one was.
 */
const AHEAD_IN_SPAN_ORDER = (units: string) =>
  `SELECT unit_id, -nextval('queue_rank') AS rank FROM (SELECT unit_id FROM ${units} ORDER BY lease_id, lease_part DESC) o`;

type Row = Record<string, unknown>;
type Db = Pick<pg.PoolClient, 'query'>;

/** What a job of these parameters holds while open; 0 for one stored under limits since lowered. */
function heldBytes(kind: AnyWorkKind, params: unknown): number {
  const footprint = kind.footprint(params);
  return footprint.ok ? footprint.value.heldBytes : 0;
}

export class PgQueue implements WorkQueue {
  private readonly cache = new Map<string, CachedJob>();
  /** Jobs this coordinator cannot rebuild (a kind it does not serve, operands it cannot read), not retried each lease. */
  private readonly unloadable = new Set<string>();
  private readonly startedAtMs = Date.now();
  /** Whether this coordinator is in the fleet's table yet: a lease by one that is not would be expired at once. */
  private beaten = false;
  private readonly where: string;
  private readonly blocksLeased = new BlocksLeased();

  /** How long a span lease waits for its turn at the fleet (spanTurn) before it goes ahead without one. */
  spanTurnWaitMs = SPAN_TURN_WAIT_MS;
  /** This coordinator's span leases, one job's at a time (spanTurn's wait then holds one connection per job). */
  private readonly spanTurnsHere = new KeyTurns();

  constructor(
    private readonly pool: pg.Pool,
    private readonly kinds: KindRegistry,
    private readonly operands: OperandStore,
    public member: FleetMember = { instance: randomUUID(), signingKey: '', url: '', peerId: '' },
    where = 'the fleet database',
  ) {
    this.where = where;
  }

  /** Runs a query or transaction, turning the database's failures into LedgerErrors that say what happened. */
  private async guard<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    try {
      return await fn(this.pool);
    } catch (err) {
      throw pgLedgerError(err, this.where);
    }
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.pool, fn);
    } catch (err) {
      throw pgLedgerError(err, this.where);
    }
  }

  /** Says this coordinator is alive (and how to reach it), in the fleet's table of coordinators. */
  async beat(nowMs: number): Promise<void> {
    this.beaten = true;
    const m = this.member;
    await this.guard((db) => db.query(
      `INSERT INTO coordinators (instance, signing_key, url, peer_id, started_at_ms, heard_at_ms) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (instance) DO UPDATE SET signing_key = $2, url = $3, peer_id = $4, heard_at_ms = $6`,
      [m.instance, m.signingKey, m.url, m.peerId, this.startedAtMs, nowMs],
    ));
  }

  /** The coordinators heard from lately, oldest first. */
  async liveMembers(nowMs: number): Promise<FleetMember[]> {
    const { rows } = await this.guard((db) => db.query<{ instance: string; signing_key: string; url: string; peer_id: string }>(
      `SELECT instance, signing_key, url, peer_id FROM coordinators WHERE heard_at_ms > $1 AND url <> '' ORDER BY started_at_ms, instance`,
      [nowMs - COORDINATOR_SILENT_MS],
    ));
    return rows.map((r) => ({ instance: r.instance, signingKey: r.signing_key, url: r.url, peerId: r.peer_id }));
  }

  /** Takes this coordinator out of the fleet's table: its leases go back at once. */
  async leave(): Promise<void> {
    await this.releaseWhere('coordinator = $1', [this.member.instance], 'released', Date.now());
    await this.guard((db) => db.query('DELETE FROM coordinators WHERE instance = $1', [this.member.instance]));
  }

  // ---- jobs ----

  async submit(job: NewJob, done: ReadonlyMap<string, { result: unknown; minerKey: string }>, nowMs: number): Promise<JobState> {
    const units = job.kind.split(job.job);
    const state = this.newState(job.id, job.kind, job.job, job.owner, job.operands, job.heldBytes, job.createdAtMs, units);
    this.cache.set(job.id, { state, needs: job.kind.requirements(job.job) });
    this.unloadable.delete(job.id);
    await this.transaction(async (client) => {
      // Idempotent: a job another coordinator already queued keeps its rows, done units and leases.
      await client.query(
        `INSERT INTO queue_units (unit_id, job_id, rank)
         SELECT u.id, $2, nextval('queue_rank') FROM unnest($1::text[]) WITH ORDINALITY AS u(id, i) ORDER BY u.i
         ON CONFLICT (unit_id) DO NOTHING`,
        [units.map((u) => u.id), job.id],
      );
      if (done.size > 0) await client.query('UPDATE queue_units SET done = true WHERE unit_id = ANY($1) AND NOT done', [[...done.keys()]]);
    });
    await this.finishIfDone(job.id, nowMs);
    return (await this.job(job.id)) ?? state;
  }

  private newState(
    id: string, kind: AnyWorkKind, job: unknown, owner: string, operands: readonly string[], held: number, createdAtMs: number, units: UnitBase[],
  ): JobState {
    return {
      id, kind, job, owner, operands, view: job === null ? {} : kind.describe(job), heldBytes: held,
      units: new Map(units.map((u) => [u.id, u])), results: new Map(), doneBy: new Map(), createdAtMs, finishedAtMs: null, output: null,
    };
  }

  /** The cached job, or read and rebuilt from the database and the operand store; undefined when gone or unreadable. */
  private async open(id: string): Promise<CachedJob | undefined> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    if (this.unloadable.has(id)) return undefined;
    const { rows } = await this.guard((db) => db.query<Row>('SELECT * FROM jobs WHERE id = $1', [id]));
    if (rows.length === 0) return undefined;
    return this.load(storedJob(rows[0]));
  }

  private async load(stored: StoredJob): Promise<CachedJob | undefined> {
    const kind = this.kinds.get(stored.kind);
    if (!kind) {
      this.unloadable.add(stored.id);
      log('job-unrecoverable', { job: stored.id, kind: stored.kind, error: 'this coordinator does not serve that kind of work' });
      return undefined;
    }
    let job: unknown = null;
    let units: UnitBase[];
    let needs: Requirements = { precision: '', features: [] };
    if (stored.finishedAtMs === null) {
      try {
        const operands: Uint8Array[] = [];
        for (const hash of stored.operands) operands.push(await this.operands.get(hash));
        job = kind.restoreJob(stored.id, stored.params, operands);
      } catch (err) {
        this.unloadable.add(stored.id);
        log('job-unrecoverable', { job: stored.id, operands: stored.operands.join(','), error: String(err) });
        return undefined;
      }
      units = kind.split(job);
      needs = kind.requirements(job);
    } else {
      // A finished job needs only its output, its view and its units' count.
      const { rows } = await this.guard((db) => db.query<{ unit_id: string }>('SELECT unit_id FROM queue_units WHERE job_id = $1', [stored.id]));
      units = rows.map((r) => ({ id: r.unit_id, jobId: stored.id }));
    }
    const state = this.newState(stored.id, kind, job, stored.owner, stored.operands, heldBytes(kind, stored.params), stored.createdAtMs, units);
    if (job === null) {
      const { rows } = await this.guard((db) => db.query<{ view: Record<string, string | number> }>('SELECT view FROM job_outputs WHERE job_id = $1', [stored.id]));
      state.view = rows[0]?.view ?? {};
    }
    const entry = { state, needs };
    this.cache.set(stored.id, entry);
    return entry;
  }

  /** Brings a cached job's progress up to date with what every coordinator has done to it. */
  private async refresh(entry: CachedJob): Promise<JobState | undefined> {
    const { state } = entry;
    const { rows } = await this.guard((db) => db.query<{ finished_at_ms: string | null; unit_id: string | null; miner_key: string | null }>(
      `SELECT j.finished_at_ms, q.unit_id, c.miner_key FROM jobs j
       LEFT JOIN queue_units q ON q.job_id = j.id AND q.done LEFT JOIN credits c ON c.unit_id = q.unit_id WHERE j.id = $1`,
      [state.id],
    ));
    if (rows.length === 0) {
      this.cache.delete(state.id);
      return undefined;
    }
    state.results.clear();
    state.doneBy.clear();
    for (const r of rows) {
      if (r.unit_id === null) continue;
      state.results.set(r.unit_id, null);
      if (r.miner_key !== null) state.doneBy.set(r.unit_id, r.miner_key);
    }
    const finishedAtMs = rows[0].finished_at_ms;
    if (finishedAtMs !== null && !state.output) {
      const output = await this.readOutput(state.id);
      if (output) {
        state.output = output;
        state.finishedAtMs = Number(finishedAtMs);
        state.job = null;
      }
    }
    if (state.output) state.results.clear();
    return state;
  }

  private async readOutput(jobId: string): Promise<EncodedOutput | null> {
    const { rows } = await this.guard((db) => db.query<{ content_type: string; headers: Record<string, string>; body: Buffer }>(
      'SELECT content_type, headers, body FROM job_outputs WHERE job_id = $1', [jobId],
    ));
    const row = rows[0];
    return row ? { contentType: row.content_type, headers: row.headers, body: new Uint8Array(row.body) } : null;
  }

  async job(id: string): Promise<JobState | undefined> {
    const entry = await this.open(id);
    return entry ? this.refresh(entry) : undefined;
  }

  async jobIds(): Promise<string[]> {
    const { rows } = await this.guard((db) => db.query<{ id: string }>('SELECT id FROM jobs ORDER BY created_at_ms, id'));
    return rows.map((r) => r.id).filter((id) => !this.unloadable.has(id));
  }

  async status(state: JobState): Promise<JobStatus> {
    if (state.output) return 'done';
    const { rows } = await this.guard((db) => db.query<{ started: boolean | null }>(
      'SELECT bool_or(done OR held OR lease_id IS NOT NULL) AS started FROM queue_units WHERE job_id = $1', [state.id],
    ));
    return rows[0]?.started ? 'running' : 'queued';
  }

  /**
   * When every unit of a job is done and nobody assembled it yet: assembles it from the stored results, under a lock
   * on the job's row, so that exactly one coordinator does. Returns the finished job when this call finished it.
   */
  private async finishIfDone(jobId: string, nowMs: number, client?: pg.PoolClient): Promise<JobState | undefined> {
    const run = async (db: pg.PoolClient): Promise<JobState | undefined> => {
      const locked = await db.query<{ finished_at_ms: string | null }>('SELECT finished_at_ms FROM jobs WHERE id = $1 FOR UPDATE', [jobId]);
      if (locked.rows.length === 0 || locked.rows[0].finished_at_ms !== null) return undefined;
      const left = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_units WHERE job_id = $1 AND NOT done', [jobId]);
      if (left.rows[0].n > 0) return undefined;
      const entry = await this.open(jobId);
      if (!entry || entry.state.job === null) return undefined;
      const { state } = entry;
      const stored = await db.query<{ unit_id: string; result: Buffer }>('SELECT unit_id, result FROM unit_results WHERE job_id = $1', [jobId]);
      const results = new Map<string, unknown>();
      for (const r of stored.rows) {
        const unit = state.units.get(r.unit_id);
        if (unit) results.set(r.unit_id, state.kind.decodeStoredResult(unit, new Uint8Array(r.result)));
      }
      if (results.size < state.units.size) {
        throw new Error(`job ${jobId}: every unit is marked done but only ${results.size} of ${state.units.size} results are stored`);
      }
      const output = state.kind.encodeOutput(state.job, state.kind.assemble(state.job, results));
      await db.query(
        'INSERT INTO job_outputs (job_id, content_type, headers, body, view) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING',
        [jobId, output.contentType, JSON.stringify(output.headers), Buffer.from(output.body), JSON.stringify(state.view)],
      );
      await db.query('UPDATE jobs SET finished_at_ms = $2 WHERE id = $1', [jobId, nowMs]);
      state.output = output;
      state.finishedAtMs = nowMs;
      state.job = null;
      return state;
    };
    if (client) return run(client);
    return this.transaction(run);
  }

  // ---- leases ----

  /** Reads the open jobs this coordinator has not seen yet: any coordinator may have queued them. */
  private async openJobs(): Promise<CachedJob[]> {
    const { rows } = await this.guard((db) => db.query<Row>('SELECT * FROM jobs WHERE finished_at_ms IS NULL ORDER BY created_at_ms, id'));
    const open: CachedJob[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      const stored = storedJob(row);
      seen.add(stored.id);
      if (this.unloadable.has(stored.id)) continue;
      const entry = this.cache.get(stored.id) ?? (await this.load(stored));
      if (entry && entry.state.job !== null) open.push(entry);
    }
    // Forget jobs another coordinator finished or removed, except for their output, read again on demand.
    for (const [id, entry] of this.cache) if (!seen.has(id) && entry.state.job !== null) this.cache.delete(id);
    return open;
  }

  async lease(sessionId: string, nowMs: number, miner: MinerCapabilities, units = 1): Promise<Lease | undefined> {
    const eligible = (await this.openJobs()).filter((e) => canRun(miner, e.state.kind.name, e.needs));
    if (eligible.length === 0) return undefined;
    if (!this.beaten) await this.beat(nowMs);
    const leaseId = randomUUID();
    const spanJob = units > 1 ? await this.spanJob(eligible) : undefined;
    // One bound on the whole wait for a turn, here and at the fleet, however many leases queue ahead of this one.
    const turnBy = Date.now() + this.spanTurnWaitMs;
    const lease = () => this.transaction(async (client) => {
      if (spanJob !== undefined) await this.spanTurn(client, spanJob, turnBy);
      const { rows } = await client.query<{ unit_id: string; job_id: string }>(
        `SELECT unit_id, job_id FROM queue_units WHERE lease_id IS NULL AND NOT done AND NOT held AND job_id = ANY($1)
         ORDER BY rank LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [eligible.map((e) => e.state.id)],
      );
      const head = rows[0];
      if (!head) return undefined;
      const row = await this.preferred(client, sessionId, head);
      const state = this.cache.get(row.job_id)?.state;
      const first = state?.units.get(row.unit_id);
      if (!state || !first) throw new Error(`queue: unit ${row.unit_id} is not one of job ${row.job_id}'s units`);
      const span = units > 1 ? await this.span(client, state, first, units) : undefined;
      const unit = span?.unit ?? first;
      const parts = span?.parts ?? [first];
      this.blocksLeased.remember(sessionId, blocksOf(state.kind, unit));
      const deadlineAtMs = nowMs + leaseDurationMs(state.kind.ops(unit));
      await client.query(
        `UPDATE queue_units SET lease_id = $2, session_id = $3, coordinator = $4, leased_at_ms = $5, deadline_at_ms = $6, lease_unit = $7,
           lease_part = array_position($1::text[], unit_id) - 1
         WHERE unit_id = ANY($1)`,
        [parts.map((part) => part.id), leaseId, sessionId, this.member.instance, nowMs, deadlineAtMs, unit.id],
      );
      return { id: leaseId, unit, ...(span ? { parts: span.parts } : {}), sessionId, leasedAtMs: nowMs, deadlineAtMs } satisfies Lease;
    });
    // Span leases of one job wait their turn here first, so that one connection at most waits on the fleet's turn.
    return spanJob === undefined ? lease() : this.spanTurnsHere.run(spanJob, lease);
  }

  /** The job a span lease will come from (the oldest with waiting units), when its kind joins units. */
  private async spanJob(eligible: readonly CachedJob[]): Promise<string | undefined> {
    if (!eligible.some((e) => e.state.kind.span)) return undefined;
    const { rows } = await this.guard((db) => db.query<{ job_id: string }>(
      'SELECT job_id FROM queue_units WHERE lease_id IS NULL AND NOT done AND NOT held AND job_id = ANY($1) ORDER BY rank LIMIT 1',
      [eligible.map((e) => e.state.id)],
    ));
    const jobId = rows[0]?.job_id;
    return eligible.some((e) => e.state.id === jobId && e.state.kind.span) ? jobId : undefined;
  }

  /**
   * Waits, until turnBy, for this transaction's turn at the fleet to lease a span of this job: an advisory
   * lock per job, held until commit. Without turns, span leases asked for at the same instant lock each other's heads
   * (SKIP LOCKED) and break one another's spans: a review saw 59 of 60 come out single. With them each sees the last
   * one's lease committed and takes the next whole span. Past the wait (a coordinator stalled holding its turn) the
   * lease goes ahead without one: a shorter span at worst, never a wait without end.
   */
  private async spanTurn(client: pg.PoolClient, jobId: string, turnBy: number): Promise<void> {
    for (let pauseMs = 2; ; pauseMs = Math.min(2 * pauseMs, 50)) {
      const { rows } = await client.query<{ turn: boolean }>("SELECT pg_try_advisory_xact_lock(hashtextextended('ergon-span:' || $1, 0)) AS turn", [jobId]);
      if (rows[0]?.turn || Date.now() >= turnBy) return;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /**
   * Up to `count` waiting units of `first`'s job joined by its kind into one, `first` leading; undefined when its
   * kind does not join units or none continue it. The units are read unlocked, chosen, then locked: those another
   * coordinator leased meanwhile are passed over (SKIP LOCKED), and the span is joined from the rest.
   */
  private async span(client: pg.PoolClient, state: JobState, first: UnitBase, count: number): Promise<{ unit: UnitBase; parts: UnitBase[] } | undefined> {
    const { kind, job } = state;
    if (job === null || !kind.span || !kind.partResult || kind.audit) return undefined;
    const unitsOf = (ids: readonly string[]) => ids.flatMap((id) => (id === first.id ? [] : [state.units.get(id)].filter((u) => u !== undefined)));
    const { rows } = await client.query<{ unit_id: string }>(
      'SELECT unit_id FROM queue_units WHERE job_id = $1 AND lease_id IS NULL AND NOT done AND NOT held', [state.id],
    );
    const chosen = kind.span(job, first, unitsOf(rows.map((r) => r.unit_id)), count);
    if (!chosen) return undefined;
    const locked = await client.query<{ unit_id: string }>(
      `SELECT unit_id FROM queue_units WHERE unit_id = ANY($1) AND lease_id IS NULL AND NOT done AND NOT held FOR UPDATE SKIP LOCKED`,
      [chosen.parts.filter((part) => part.id !== first.id).map((part) => part.id)],
    );
    return locked.rows.length === chosen.parts.length - 1 ? chosen : kind.span(job, first, unitsOf(locked.rows.map((r) => r.unit_id)), count);
  }

  /**
   * Among the waiting units of the head's job (the oldest this miner can run), the one unit-ranking.ts prefers for
   * this session, as the in-memory scheduler picks; the head itself when affinity has nothing to go on. The
   * candidates are locked (SKIP LOCKED: those another coordinator is leasing are passed over) until the lease commits.
   */
  private async preferred(client: pg.PoolClient, sessionId: string, head: { unit_id: string; job_id: string }): Promise<{ unit_id: string; job_id: string }> {
    const state = this.cache.get(head.job_id)?.state;
    if (!state?.kind.operandKeys || !this.blocksLeased.held(sessionId)) return head;
    const { rows } = await client.query<{ unit_id: string }>(
      `SELECT unit_id FROM queue_units WHERE job_id = $1 AND lease_id IS NULL AND NOT done AND NOT held
       ORDER BY rank LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [head.job_id, AFFINITY_CANDIDATES],
    );
    const candidates = rows.flatMap((r) => {
      const unit = state.units.get(r.unit_id);
      return unit ? [this.blocksLeased.candidate(sessionId, state.kind, unit)] : [];
    });
    const best = pickUnit(candidates);
    return best < 0 ? head : { unit_id: candidates[best].unit.id, job_id: head.job_id };
  }

  async leaseCount(sessionIds: readonly string[]): Promise<number> {
    const { rows } = await this.guard((db) => db.query<{ n: number }>(
      'SELECT count(DISTINCT lease_id)::int AS n FROM queue_units WHERE lease_id IS NOT NULL AND session_id = ANY($1)', [[...sessionIds]],
    ));
    return rows[0].n;
  }

  async leaseFor(leaseId: string, sessionId: string): Promise<Lease | undefined> {
    const { rows } = await this.guard((db) => db.query<{ unit_id: string; job_id: string; leased_at_ms: string; deadline_at_ms: string; lease_unit: string | null }>(
      `SELECT unit_id, job_id, leased_at_ms, deadline_at_ms, lease_unit FROM queue_units WHERE lease_id = $1 AND session_id = $2 AND NOT done
       ORDER BY lease_part`,
      [leaseId, sessionId],
    ));
    const [row] = rows;
    if (!row) return undefined;
    const state = (await this.open(row.job_id))?.state;
    const parts = rows.map((r) => state?.units.get(r.unit_id));
    if (!state || parts.some((part) => part === undefined)) return undefined;
    const lease = { id: leaseId, sessionId, leasedAtMs: Number(row.leased_at_ms), deadlineAtMs: Number(row.deadline_at_ms) };
    const [first, ...rest] = parts as UnitBase[];
    if (rest.length === 0 && (row.lease_unit === null || row.lease_unit === first.id)) return { ...lease, unit: first };
    // A span, joined again from its parts in their order; a part taken back meanwhile leaves a lease that is no more.
    const span = state.job !== null && state.kind.span ? state.kind.span(state.job, first, rest, parts.length) : undefined;
    if (!span || span.unit.id !== row.lease_unit || span.parts.length !== parts.length) return undefined;
    return { ...lease, unit: span.unit, parts: span.parts };
  }

  async leasedElsewhere(leaseId: string): Promise<boolean> {
    // An ended lease is not marked with its coordinator; one this coordinator ended for its own session was settled
    // by settle.ts before this is asked (completed or lease-expired), so what remains went out elsewhere.
    const { rows } = await this.guard((db) => db.query(
      `SELECT 1 FROM queue_units WHERE lease_id = $1 AND coordinator <> $2 UNION ALL SELECT 1 FROM ended_leases WHERE lease_id = $1`,
      [leaseId, this.member.instance],
    ));
    return rows.length > 0;
  }

  async endedLease(leaseId: string): Promise<EndedLease | undefined> {
    const { rows } = await this.guard((db) => db.query<{ session_id: string; unit_id: string; end_reason: LeaseEnd }>(
      'SELECT session_id, unit_id, end_reason FROM ended_leases WHERE lease_id = $1', [leaseId],
    ));
    const row = rows[0];
    return row ? { sessionId: row.session_id, unitId: row.unit_id, end: row.end_reason } : undefined;
  }

  async complete(lease: Lease, result: unknown, nowMs: number, minerKey: string): Promise<JobState | undefined> {
    return this.completeSpan(lease, new Map([[lease.unit.id, result]]), nowMs, minerKey);
  }

  async completeSpan(lease: Lease, results: ReadonlyMap<string, unknown>, nowMs: number, _minerKey: string): Promise<JobState | undefined> {
    // The results themselves are already in the ledger (each credited just before, in its own transaction): the queue
    // records which units are done and, when one was the job's last, assembles the output from the stored results.
    const parts = lease.parts ?? [lease.unit];
    const done = parts.filter((part) => results.has(part.id)).map((part) => part.id);
    const left = parts.filter((part) => !results.has(part.id)).map((part) => part.id);
    return this.transaction(async (client) => {
      // The job's row is locked first: completions of one job's units take turns, so the last one sees every other.
      const locked = await client.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [lease.unit.jobId]);
      // Every part's row is locked before anything is written, in one order: a release of this lease running at the
      // same time then waits for this one whole, instead of taking the parts left over and deadlocking with it.
      const { rows } = await client.query<{ unit_id: string; lease_id: string | null }>(
        'SELECT unit_id, lease_id FROM queue_units WHERE unit_id = ANY($1) ORDER BY unit_id FOR UPDATE', [parts.map((part) => part.id)],
      );
      await client.query(
        `INSERT INTO ended_leases (lease_id, session_id, unit_id, end_reason, ended_at_ms) VALUES ($1, $2, $3, 'completed', $4)
         ON CONFLICT (lease_id) DO UPDATE SET end_reason = 'completed'`,
        [lease.id, lease.sessionId, lease.unit.id, nowMs],
      );
      // A unit credited after this lease ran out may be out again with another miner, who would compute it for
      // nothing: that lease ends without blame, and its other units wait again.
      // The job was removed meanwhile (its rows are gone): nothing to complete, and nothing to assemble.
      if (rows.length === 0) return undefined;
      const others = [...new Set(rows.flatMap((r) => (done.includes(r.unit_id) && r.lease_id !== null && r.lease_id !== lease.id ? [r.lease_id] : [])))];
      if (others.length > 0) await this.releaseWhere('lease_id = ANY($1)', [others], 'removed', nowMs, client);
      await client.query(`UPDATE queue_units SET done = true, ${NOT_LEASED} WHERE unit_id = ANY($1)`, [done]);
      // Parts without a result (their credit failed to store) wait again, if this lease still holds them.
      if (left.length > 0) {
        await client.query(
          `WITH old AS (SELECT unit_id, lease_id, lease_part FROM queue_units WHERE unit_id = ANY($1) AND lease_id = $2 AND NOT done),
           ranked AS (${AHEAD_IN_SPAN_ORDER('old')})
           UPDATE queue_units q SET ${NOT_LEASED}, rank = ranked.rank FROM ranked WHERE q.unit_id = ranked.unit_id`,
          [left, lease.id],
        );
      }
      if (locked.rows.length === 0) return undefined;
      return this.finishIfDone(lease.unit.jobId, nowMs, client);
    });
  }

  async hold(lease: Lease, nowMs: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `INSERT INTO ended_leases (lease_id, session_id, unit_id, end_reason, ended_at_ms) VALUES ($1, $2, $3, 'completed', $4)
         ON CONFLICT (lease_id) DO UPDATE SET end_reason = 'completed'`,
        [lease.id, lease.sessionId, lease.unit.id, nowMs],
      );
      await client.query(
        `UPDATE queue_units SET held = true, ${NOT_LEASED}
         WHERE unit_id = $1 AND lease_id = $2 AND NOT done`,
        [lease.unit.id, lease.id],
      );
    });
  }

  async settle(unit: UnitBase, _result: unknown, nowMs: number): Promise<JobState | undefined> {
    // The result is already in the ledger (settled just before): the queue records that the unit is done.
    return this.transaction(async (client) => {
      const locked = await client.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [unit.jobId]);
      const updated = await client.query('UPDATE queue_units SET done = true, held = false WHERE unit_id = $1 AND held', [unit.id]);
      if (locked.rows.length === 0 || updated.rowCount !== 1) return undefined;
      return this.finishIfDone(unit.jobId, nowMs, client);
    });
  }

  async requeue(units: readonly UnitBase[]): Promise<void> {
    await this.guard((db) => db.query(
      `UPDATE queue_units SET held = false, rank = -nextval('queue_rank') WHERE unit_id = ANY($1) AND held AND NOT done`,
      [units.map((u) => u.id)],
    ));
  }

  async unitCounts(jobId: string): Promise<{ waiting: number; leased: number; held: number }> {
    const { rows } = await this.guard((db) => db.query<{ waiting: number; leased: number; held: number }>(
      `SELECT count(*) FILTER (WHERE lease_id IS NULL AND NOT done AND NOT held)::int AS waiting,
              count(*) FILTER (WHERE lease_id IS NOT NULL)::int AS leased,
              count(*) FILTER (WHERE held)::int AS held
       FROM queue_units WHERE job_id = $1`,
      [jobId],
    ));
    return rows[0];
  }

  /**
   * Puts the units of the live leases matching `where` back at the front of the queue; returns the leases (a span's
   * as one, named by its own unit id). In `db`'s transaction when given one.
   */
  private async releaseWhere(where: string, params: unknown[], end: LeaseEnd, nowMs: number, db?: Db): Promise<Lease[]> {
    const n = params.length;
    const query = (on: Db) => on.query<{ unit_id: string; job_id: string; lease_id: string; session_id: string; leased_at_ms: string; deadline_at_ms: string; lease_unit: string | null }>(
      `WITH old AS (
         SELECT unit_id, job_id, lease_id, session_id, leased_at_ms, deadline_at_ms, lease_unit, lease_part FROM queue_units
         WHERE lease_id IS NOT NULL AND NOT done AND (${where}) FOR UPDATE SKIP LOCKED),
       ranked AS (${AHEAD_IN_SPAN_ORDER('old')}),
       freed AS (
         UPDATE queue_units q SET ${NOT_LEASED}, rank = ranked.rank
         FROM old JOIN ranked USING (unit_id) WHERE q.unit_id = old.unit_id RETURNING old.*),
       ended AS (
         INSERT INTO ended_leases (lease_id, session_id, unit_id, end_reason, ended_at_ms)
         SELECT DISTINCT ON (lease_id) lease_id, session_id, COALESCE(lease_unit, unit_id), $${n + 1}, $${n + 2} FROM freed
         ON CONFLICT (lease_id) DO NOTHING)
       SELECT * FROM freed`,
      [...params, end, nowMs],
    );
    const { rows } = db ? await query(db) : await this.guard(query);
    const leases = new Map<string, Lease>();
    for (const r of rows) {
      if (leases.has(r.lease_id)) continue;
      const unitId = r.lease_unit ?? r.unit_id;
      const unit = this.cache.get(r.job_id)?.state.units.get(unitId) ?? { id: unitId, jobId: r.job_id };
      leases.set(r.lease_id, { id: r.lease_id, unit, sessionId: r.session_id, leasedAtMs: Number(r.leased_at_ms), deadlineAtMs: Number(r.deadline_at_ms) });
    }
    return [...leases.values()];
  }

  async release(lease: Lease, end: LeaseEnd = 'released'): Promise<void> {
    await this.releaseWhere('lease_id = $1', [lease.id], end, Date.now());
  }

  async releaseSession(sessionId: string): Promise<Lease[]> {
    this.blocksLeased.forget(sessionId);
    return this.releaseWhere('session_id = $1', [sessionId], 'released', Date.now());
  }

  /**
   * Beats, then puts back every overdue lease in the fleet and every lease of a coordinator that stopped beating:
   * whichever coordinator gets there first does it (SKIP LOCKED), once.
   */
  async expire(nowMs: number): Promise<Lease[]> {
    await this.beat(nowMs);
    const expired = await this.releaseWhere(
      `deadline_at_ms <= $1 OR coordinator NOT IN (SELECT instance FROM coordinators WHERE heard_at_ms > $2)`,
      [nowMs, nowMs - COORDINATOR_SILENT_MS],
      'expired',
      nowMs,
    );
    await this.guard(async (db) => {
      await db.query('DELETE FROM ended_leases WHERE ended_at_ms < $1', [nowMs - ENDED_LEASES_KEPT_MS]);
      await db.query('DELETE FROM coordinators WHERE heard_at_ms < $1', [nowMs - 10 * COORDINATOR_SILENT_MS]);
    });
    return expired;
  }

  async remove(jobId: string): Promise<boolean> {
    await this.releaseWhere('job_id = $1', [jobId], 'removed', Date.now());
    const removed = await this.transaction(async (client) => {
      const units = await client.query('DELETE FROM queue_units WHERE job_id = $1', [jobId]);
      const outputs = await client.query('DELETE FROM job_outputs WHERE job_id = $1', [jobId]);
      return (units.rowCount ?? 0) + (outputs.rowCount ?? 0) > 0;
    });
    const cached = this.cache.delete(jobId);
    return removed || cached;
  }

  async evictFinished(nowMs: number): Promise<string[]> {
    const evicted = await this.transaction(async (client) => {
      const { rows } = await client.query<{ job_id: string }>(
        `DELETE FROM job_outputs o USING jobs j WHERE o.job_id = j.id AND j.finished_at_ms < $1 RETURNING o.job_id`,
        [nowMs - RESULT_RETENTION_MS],
      );
      const ids = rows.map((r) => r.job_id);
      if (ids.length > 0) await client.query('DELETE FROM queue_units WHERE job_id = ANY($1)', [ids]);
      return ids;
    });
    for (const id of evicted) this.cache.delete(id);
    return evicted;
  }

  async counts(): Promise<QueueCounts> {
    const { rows } = await this.guard((db) => db.query<{ jobs: number; open: number; pending: number; leased: number }>(
      `SELECT (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM jobs WHERE finished_at_ms IS NULL) AS open,
              (SELECT count(*)::int FROM queue_units WHERE lease_id IS NULL AND NOT done AND NOT held) AS pending,
              (SELECT count(*)::int FROM queue_units WHERE lease_id IS NOT NULL) AS leased`,
    ));
    const r = rows[0];
    return { jobs: r.jobs, jobsOpen: r.open, unitsPending: r.pending, unitsLeased: r.leased };
  }
}
