// The embedded ledger: one SQLite file in the data folder, WAL mode, a unique key on the unit id.
import Database from 'better-sqlite3';
import {
  creditFromRow, efficiencyFromRow, LedgerError, NO_ENERGY, pendingFromRow, reputationFromRow, settledByAudit, type CreditEntry, type EfficiencyRow, type Ledger, type LedgerTotals, type PendingCredit,
  type PendingOf, type Reputation, type StoredJob,
} from './ledger.ts';
import { loadMigrations } from './migrations.ts';

const MIGRATIONS = loadMigrations('sqlite');

function ledgerError(err: unknown, path: string): LedgerError {
  const code = err instanceof Database.SqliteError ? err.code : '';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new LedgerError('storage-busy', `the ledger ${path} is locked by another process; nothing was written, try again`, { cause: err });
  }
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR_FSYNC') {
    return new LedgerError('storage-full', `the disk holding ${path} is full; nothing was written until space is freed`, { cause: err });
  }
  return new LedgerError('storage-failed', `the ledger ${path} failed: ${(err as Error).message}`, { cause: err });
}

export interface SqliteLedgerOptions {
  /** How long a write waits for another process's lock before failing with storage-busy. */
  busyTimeoutMs?: number;
  /** Caps the file's size in pages (4 KiB each); a full file behaves as a full disk. */
  maxPages?: number;
}

type Row = Record<string, unknown>;

export class SqliteLedger implements Ledger {
  private readonly db: Database.Database;
  private readonly statements: Record<string, Database.Statement>;

  constructor(private readonly path: string, options: SqliteLedgerOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
    if (options.maxPages !== undefined) this.db.pragma(`max_page_count = ${Math.trunc(options.maxPages)}`);
    this.db.defaultSafeIntegers(true);
    this.migrate();
    const prepare = (sql: string) => this.db.prepare(sql);
    this.statements = {
      insertCredit: prepare(
        `INSERT INTO credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms,
           joules, joules_source, joules_uncertainty, joules_above_idle, energy_refused, wall_seconds, adapter, receipt_kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING`,
      ),
      efficiency: prepare(
        `SELECT miner_key, COALESCE(adapter, '') AS adapter, joules_source, COUNT(*) AS units, SUM(ops) AS ops, SUM(joules) AS joules,
           SQRT(SUM(joules_uncertainty * joules_uncertainty)) AS uncertainty, SUM(gpu_seconds) AS gpu_seconds,
           COALESCE(SUM(wall_seconds), 0) AS wall_seconds
         FROM credits GROUP BY miner_key, COALESCE(adapter, ''), joules_source ORDER BY miner_key, adapter, joules_source`,
      ),
      insertResult: prepare('INSERT INTO unit_results (unit_id, job_id, result) VALUES (?, ?, ?)'),
      balanceOf: prepare('SELECT COALESCE(SUM(micro_credits), 0) AS total FROM credits WHERE miner_key = ?'),
      sum: prepare('SELECT COUNT(*) AS units, COALESCE(SUM(ops), 0) AS ops, COALESCE(SUM(micro_credits), 0) AS micro FROM credits'),
      insertJob: prepare(
        `INSERT INTO jobs (id, owner, kind, params, operands, created_at_ms, finished_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      finishJob: prepare('UPDATE jobs SET finished_at_ms = ? WHERE id = ? AND finished_at_ms IS NULL'),
      deleteJob: prepare('DELETE FROM jobs WHERE id = ?'),
      deleteResults: prepare('DELETE FROM unit_results WHERE job_id = ?'),
      jobs: prepare('SELECT * FROM jobs ORDER BY created_at_ms, id'),
      results: prepare(
        'SELECT r.unit_id, r.result, c.miner_key FROM unit_results r JOIN credits c ON c.unit_id = r.unit_id WHERE r.job_id = ?',
      ),
      isCredited: prepare('SELECT 1 FROM credits WHERE unit_id = ?'),
      creditOf: prepare('SELECT * FROM credits WHERE unit_id = ?'),
      creditsOf: prepare('SELECT * FROM credits WHERE miner_key = ? AND unit_id IN (SELECT value FROM json_each(?))'),
      insertPending: prepare(
        `INSERT INTO pending_credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms,
           joules, joules_source, joules_uncertainty, joules_above_idle, energy_refused, wall_seconds, adapter, receipt_kind, result)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING`,
      ),
      pendingOfMiner: prepare('SELECT * FROM pending_credits WHERE miner_key = ? ORDER BY created_at_ms, unit_id'),
      pendingOfJob: prepare('SELECT * FROM pending_credits WHERE job_id = ? ORDER BY created_at_ms, unit_id'),
      deletePendingOfMiner: prepare('DELETE FROM pending_credits WHERE miner_key = ?'),
      deletePending: prepare('DELETE FROM pending_credits WHERE unit_id = ?'),
      jobExists: prepare('SELECT 1 FROM jobs WHERE id = ?'),
      insertForfeit: prepare(
        `INSERT INTO forfeited_credits (unit_id, job_id, miner_key, ops, micro_credits, created_at_ms, forfeited_at_ms, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      forfeitedOf: prepare('SELECT COALESCE(SUM(micro_credits), 0) AS total FROM forfeited_credits WHERE miner_key = ?'),
      forfeitedUnits: prepare(
        `SELECT unit_id, MAX(micro_credits) AS micro_credits FROM forfeited_credits
         WHERE miner_key = ? AND unit_id IN (SELECT value FROM json_each(?)) GROUP BY unit_id`,
      ),
      auditsPassed: prepare('SELECT passed_in_a_row FROM audit_records WHERE miner_key = ?'),
      saveAudits: prepare(
        `INSERT INTO audit_records (miner_key, passed_in_a_row) VALUES (?, ?)
         ON CONFLICT (miner_key) DO UPDATE SET passed_in_a_row = excluded.passed_in_a_row`,
      ),
      reputation: prepare('SELECT * FROM reputation WHERE miner_key = ?'),
      saveReputation: prepare(
        `INSERT INTO reputation (miner_key, score, accepted, rejected, banned_until_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (miner_key) DO UPDATE SET score = excluded.score, accepted = excluded.accepted,
           rejected = excluded.rejected, banned_until_ms = excluded.banned_until_ms`,
      ),
    };
  }

  private migrate(): void {
    this.guard(() => {
      const version = Number(this.db.pragma('user_version', { simple: true }));
      this.db.transaction(() => {
        for (const migration of MIGRATIONS.slice(version)) this.db.exec(migration.sql);
        this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })();
    });
  }

  /** Runs a storage call, turning SQLite's failures into LedgerErrors that say what happened. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw ledgerError(err, this.path);
    }
  }

  async credit(e: CreditEntry, result: Uint8Array): Promise<boolean> {
    return this.guard(() => this.db.transaction(() => this.insertCredit(e, result)).immediate());
  }

  /** Inserts a credit and its result, inside the caller's transaction; false when the unit is already credited. */
  private insertCredit(e: CreditEntry, result: Uint8Array, resultToo = true): boolean {
    const energy = e.energy ?? NO_ENERGY;
    const info = this.statements.insertCredit.run(
      e.unitId, e.jobId, e.minerKey, e.ops, e.microCredits, e.gpuSeconds, BigInt(e.createdAtMs),
      energy.joules, energy.joulesSource, energy.uncertaintyJoules, energy.aboveIdleJoules, energy.refused, e.wallSeconds ?? null, e.adapter ?? null,
      e.receiptKind ?? null,
    );
    if (info.changes !== 1) return false;
    if (resultToo) this.statements.insertResult.run(e.unitId, e.jobId, result);
    return true;
  }

  async creditOf(unitId: string): Promise<CreditEntry | undefined> {
    const row = this.guard(() => this.statements.creditOf.get(unitId) as Row | undefined);
    return row ? creditFromRow(row) : undefined;
  }

  async creditsOf(minerKey: string, unitIds: readonly string[]): Promise<CreditEntry[]> {
    return this.guard(() => (this.statements.creditsOf.all(minerKey, JSON.stringify(unitIds)) as Row[]).map(creditFromRow));
  }

  async hold(e: CreditEntry, result: Uint8Array): Promise<boolean> {
    const { isCredited, insertPending } = this.statements;
    return this.guard(() =>
      this.db.transaction(() => {
        if (isCredited.get(e.unitId)) return false;
        const energy = e.energy ?? NO_ENERGY;
        const info = insertPending.run(
          e.unitId, e.jobId, e.minerKey, e.ops, e.microCredits, e.gpuSeconds, BigInt(e.createdAtMs),
          energy.joules, energy.joulesSource, energy.uncertaintyJoules, energy.aboveIdleJoules, energy.refused, e.wallSeconds ?? null, e.adapter ?? null, e.receiptKind ?? null, result,
        );
        return info.changes === 1;
      }).immediate(),
    );
  }

  async pendingCredits(of: PendingOf): Promise<PendingCredit[]> {
    const rows = this.guard(() => ('minerKey' in of ? this.statements.pendingOfMiner.all(of.minerKey) : this.statements.pendingOfJob.all(of.jobId)) as Row[]);
    return rows.map(pendingFromRow);
  }

  async settlePending(minerKey: string, audited: string, bondUnits: (auditsPassed: number) => number): Promise<PendingCredit[]> {
    const { pendingOfMiner, deletePending, jobExists, saveAudits } = this.statements;
    return this.guard(() =>
      this.db.transaction(() => {
        const passed = this.readAuditsPassed(minerKey) + 1;
        saveAudits.run(minerKey, BigInt(passed));
        const settled = settledByAudit((pendingOfMiner.all(minerKey) as Row[]).map(pendingFromRow), audited, bondUnits(passed));
        // hold() refuses a unit already credited, so each of these is credited here, once.
        for (const p of settled) {
          this.insertCredit(p, p.result, jobExists.get(p.jobId) !== undefined);
          deletePending.run(p.unitId);
        }
        return settled;
      }).immediate(),
    );
  }

  async forfeitPending(minerKey: string, reason: string, nowMs: number): Promise<PendingCredit[]> {
    const { pendingOfMiner, deletePendingOfMiner, insertForfeit, saveAudits } = this.statements;
    return this.guard(() =>
      this.db.transaction(() => {
        const pending = (pendingOfMiner.all(minerKey) as Row[]).map(pendingFromRow);
        for (const p of pending) insertForfeit.run(p.unitId, p.jobId, p.minerKey, p.ops, p.microCredits, BigInt(p.createdAtMs), BigInt(nowMs), reason);
        deletePendingOfMiner.run(minerKey);
        saveAudits.run(minerKey, 0n);
        return pending;
      }).immediate(),
    );
  }

  async forfeited(minerKey: string): Promise<bigint> {
    return this.guard(() => (this.statements.forfeitedOf.get(minerKey) as { total: bigint }).total);
  }

  async forfeitedUnits(minerKey: string, unitIds: readonly string[]): Promise<{ unitId: string; microCredits: bigint }[]> {
    const rows = this.guard(() => this.statements.forfeitedUnits.all(minerKey, JSON.stringify(unitIds)) as { unit_id: string; micro_credits: bigint }[]);
    return rows.map((row) => ({ unitId: row.unit_id, microCredits: row.micro_credits }));
  }

  async auditsPassed(minerKey: string): Promise<number> {
    return this.guard(() => this.readAuditsPassed(minerKey));
  }

  private readAuditsPassed(minerKey: string): number {
    const row = this.statements.auditsPassed.get(minerKey) as { passed_in_a_row: bigint } | undefined;
    return row ? Number(row.passed_in_a_row) : 0;
  }

  async balance(minerKey: string): Promise<bigint> {
    return this.guard(() => (this.statements.balanceOf.get(minerKey) as { total: bigint }).total);
  }

  async efficiency(): Promise<EfficiencyRow[]> {
    return this.guard(() => (this.statements.efficiency.all() as Row[]).map(efficiencyFromRow));
  }

  async totals(): Promise<LedgerTotals> {
    const row = this.guard(() => this.statements.sum.get() as { units: bigint; ops: bigint; micro: bigint });
    return { units: Number(row.units), ops: row.ops, microCredits: row.micro };
  }

  async saveJob(j: StoredJob): Promise<void> {
    const finished = j.finishedAtMs === null ? null : BigInt(j.finishedAtMs);
    const params = JSON.stringify(j.params);
    this.guard(() => this.statements.insertJob.run(j.id, j.owner, j.kind, params, JSON.stringify(j.operands), BigInt(j.createdAtMs), finished));
  }

  async finishJob(jobId: string, finishedAtMs: number): Promise<void> {
    this.guard(() => this.statements.finishJob.run(BigInt(finishedAtMs), jobId));
  }

  async deleteJob(jobId: string): Promise<void> {
    const { deleteJob, deleteResults } = this.statements;
    this.guard(() =>
      this.db.transaction(() => {
        deleteResults.run(jobId);
        deleteJob.run(jobId);
      }).immediate(),
    );
  }

  async jobs(): Promise<StoredJob[]> {
    const rows = this.guard(() => this.statements.jobs.all() as Row[]);
    return rows.map((r) => ({
      id: String(r.id),
      owner: String(r.owner),
      kind: String(r.kind),
      params: JSON.parse(String(r.params)) as unknown,
      operands: (JSON.parse(String(r.operands)) as unknown[]).map(String),
      createdAtMs: Number(r.created_at_ms),
      finishedAtMs: r.finished_at_ms === null ? null : Number(r.finished_at_ms),
    }));
  }

  async unitResults(jobId: string): Promise<Map<string, { result: Uint8Array; minerKey: string }>> {
    type ResultRow = { unit_id: string; result: Buffer; miner_key: string };
    const rows = this.guard(() => this.statements.results.all(jobId) as ResultRow[]);
    return new Map(rows.map((r) => [r.unit_id, { result: new Uint8Array(r.result), minerKey: r.miner_key }]));
  }

  async reputation(minerKey: string): Promise<Reputation> {
    return this.guard(() => this.readReputation(minerKey));
  }

  async updateReputation(minerKey: string, update: (current: Reputation) => Reputation): Promise<Reputation> {
    return this.guard(() =>
      this.db.transaction(() => {
        const r = update(this.readReputation(minerKey));
        this.statements.saveReputation.run(minerKey, BigInt(r.score), BigInt(r.accepted), BigInt(r.rejected), BigInt(r.bannedUntilMs));
        return r;
      }).immediate(),
    );
  }

  private readReputation(minerKey: string): Reputation {
    return reputationFromRow(minerKey, this.statements.reputation.get(minerKey) as Row | undefined);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
