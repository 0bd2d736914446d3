// The embedded ledger: one SQLite file in the data folder, WAL mode, a unique key on the unit id.
import Database from 'better-sqlite3';
import type { CreditEntry, Ledger, LedgerTotals, Reputation, StoredJob } from './ledger.ts';

const MIGRATIONS = [
  `CREATE TABLE credits (
     unit_id       TEXT PRIMARY KEY,
     job_id        TEXT NOT NULL,
     miner_key     TEXT NOT NULL,
     ops           INTEGER NOT NULL CHECK (ops >= 0),
     micro_credits INTEGER NOT NULL CHECK (micro_credits >= 0),
     gpu_seconds   REAL NOT NULL,
     created_at_ms INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX credits_by_miner ON credits (miner_key);`,
  // 2: jobs and verified unit results survive a crash; reputation per wallet key.
  `CREATE TABLE jobs (
     id              TEXT PRIMARY KEY,
     owner           TEXT NOT NULL,
     m               INTEGER NOT NULL CHECK (m > 0),
     n               INTEGER NOT NULL CHECK (n > 0),
     k               INTEGER NOT NULL CHECK (k > 0),
     operands_sha256 TEXT NOT NULL,
     created_at_ms   INTEGER NOT NULL,
     finished_at_ms  INTEGER
   ) STRICT;
   CREATE TABLE unit_results (
     unit_id TEXT PRIMARY KEY REFERENCES credits (unit_id),
     job_id  TEXT NOT NULL,
     result  BLOB NOT NULL
   ) STRICT;
   CREATE INDEX unit_results_by_job ON unit_results (job_id);
   CREATE TABLE reputation (
     miner_key       TEXT PRIMARY KEY,
     score           INTEGER NOT NULL,
     accepted        INTEGER NOT NULL CHECK (accepted >= 0),
     rejected        INTEGER NOT NULL CHECK (rejected >= 0),
     banned_until_ms INTEGER NOT NULL
   ) STRICT;`,
  // 3: f16 jobs, whose operands are stored and leased as halves.
  `ALTER TABLE jobs ADD COLUMN precision TEXT NOT NULL DEFAULT 'f32' CHECK (precision IN ('f32', 'f16'));`,
];

export type LedgerErrorCode = 'storage-busy' | 'storage-full' | 'storage-failed';

/** A storage failure with a stable code and a sentence: the caller refuses the request, nothing is half-written. */
export class LedgerError extends Error {
  constructor(readonly code: LedgerErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
  }
}

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
        `INSERT INTO credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING`,
      ),
      insertResult: prepare('INSERT INTO unit_results (unit_id, job_id, result) VALUES (?, ?, ?)'),
      balanceOf: prepare('SELECT COALESCE(SUM(micro_credits), 0) AS total FROM credits WHERE miner_key = ?'),
      sum: prepare('SELECT COUNT(*) AS units, COALESCE(SUM(ops), 0) AS ops, COALESCE(SUM(micro_credits), 0) AS micro FROM credits'),
      insertJob: prepare(
        `INSERT INTO jobs (id, owner, m, n, k, precision, operands_sha256, created_at_ms, finished_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finishJob: prepare('UPDATE jobs SET finished_at_ms = ? WHERE id = ? AND finished_at_ms IS NULL'),
      deleteJob: prepare('DELETE FROM jobs WHERE id = ?'),
      deleteResults: prepare('DELETE FROM unit_results WHERE job_id = ?'),
      jobs: prepare('SELECT * FROM jobs ORDER BY created_at_ms, id'),
      results: prepare(
        'SELECT r.unit_id, r.result, c.miner_key FROM unit_results r JOIN credits c ON c.unit_id = r.unit_id WHERE r.job_id = ?',
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
        for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]);
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
    const { insertCredit, insertResult } = this.statements;
    return this.guard(() =>
      this.db.transaction(() => {
        const info = insertCredit.run(e.unitId, e.jobId, e.minerKey, e.ops, e.microCredits, e.gpuSeconds, BigInt(e.createdAtMs));
        if (info.changes !== 1) return false;
        insertResult.run(e.unitId, e.jobId, result);
        return true;
      }).immediate(),
    );
  }

  async balance(minerKey: string): Promise<bigint> {
    return this.guard(() => (this.statements.balanceOf.get(minerKey) as { total: bigint }).total);
  }

  async totals(): Promise<LedgerTotals> {
    const row = this.guard(() => this.statements.sum.get() as { units: bigint; ops: bigint; micro: bigint });
    return { units: Number(row.units), ops: row.ops, microCredits: row.micro };
  }

  async saveJob(j: StoredJob): Promise<void> {
    const finished = j.finishedAtMs === null ? null : BigInt(j.finishedAtMs);
    this.guard(() => this.statements.insertJob.run(j.id, j.owner, j.m, j.n, j.k, j.precision, j.operandsSha256, BigInt(j.createdAtMs), finished));
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
      m: Number(r.m),
      n: Number(r.n),
      k: Number(r.k),
      precision: r.precision === 'f16' ? 'f16' : 'f32',
      operandsSha256: String(r.operands_sha256),
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
    const row = this.statements.reputation.get(minerKey) as Row | undefined;
    if (!row) return { minerKey, score: 0, accepted: 0, rejected: 0, bannedUntilMs: 0 };
    return {
      minerKey,
      score: Number(row.score),
      accepted: Number(row.accepted),
      rejected: Number(row.rejected),
      bannedUntilMs: Number(row.banned_until_ms),
    };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
