// The fleet's ledger: PostgreSQL (node-postgres), shared by every coordinator of a fleet; a unique key on the unit id,
// every write one transaction, migrations run once under an advisory lock by whichever coordinator starts first.
import pg from 'pg';
import {
  creditFromRow, efficiencyFromRow, LedgerError, NO_ENERGY, pendingFromRow, reputationFromRow, settledByAudit, type CreditEntry, type EfficiencyRow, type Ledger, type LedgerTotals, type PendingCredit,
  type PendingOf, type Reputation, type StoredJob,
} from './ledger.ts';
import { loadMigrations } from './migrations.ts';

const MIGRATIONS = loadMigrations('postgres');
/** The advisory lock that serialises migrations between coordinators starting at once ("ergonmig" in ASCII). */
const MIGRATION_LOCK = 0x6572_676f_6e6d_6967n;
/** A pool per coordinator: enough for the scheduler, settlement and the API at once, few enough for a fleet. */
const POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 5_000;

/** Where the database is, without its password, for messages. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the database';
  }
}

/** Turns a node-postgres failure into a LedgerError with a stable code and a sentence saying what happened. */
export function pgLedgerError(err: unknown, where: string): LedgerError {
  if (err instanceof LedgerError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const message = err instanceof Error ? err.message : String(err);
  if (code === '53100') {
    return new LedgerError('storage-full', `the disk holding the database ${where} is full; nothing was written until space is freed`, { cause: err });
  }
  if (code === '40001' || code === '40P01' || code === '55P03' || code === '53300') {
    return new LedgerError('storage-busy', `the database ${where} is busy (${message}); nothing was written, try again`, { cause: err });
  }
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNREFUSED' || code === 'ECONNRESET'
    || /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message)) {
    return new LedgerError('storage-failed', `the database ${where} is unreachable (${message}); nothing was written`, { cause: err });
  }
  return new LedgerError('storage-failed', `the database ${where} failed: ${message}`, { cause: err });
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/** Runs fn in one transaction on one pooled connection; rolls back on any failure. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Opens a pool on this URL whose idle connections' failures (a database restart) are reported, not thrown. */
export function openPool(url: string, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  pool.on('error', onError);
  return pool;
}

/** Brings the schema to the newest version once, whoever else is starting: an advisory lock held while it runs. */
export async function migrate(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)`);
      const { rows } = await client.query<{ version: number }>('SELECT COALESCE(MAX(version), 0)::int AS version FROM schema_migrations');
      const current = rows[0].version;
      if (current > MIGRATIONS.length) {
        throw new Error(`the database is at schema version ${current}, newer than this build's ${MIGRATIONS.length}; upgrade this coordinator`);
      }
      for (const migration of MIGRATIONS.slice(current)) {
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
      return MIGRATIONS.length;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
    }
  } finally {
    client.release();
  }
}

type Row = Record<string, unknown>;

export class PostgresLedger implements Ledger {
  readonly where: string;

  private constructor(readonly pool: pg.Pool, url: string) {
    this.where = describeDatabase(url);
  }

  /** Connects, migrates, and returns the ledger; its pool is shared with the fleet's queue. */
  static async open(url: string, onPoolError: (err: LedgerError) => void = () => undefined): Promise<PostgresLedger> {
    const where = describeDatabase(url);
    const pool = openPool(url, (err) => onPoolError(pgLedgerError(err, where)));
    const ledger = new PostgresLedger(pool, url);
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw pgLedgerError(err, where);
    }
    return ledger;
  }

  /** Runs a storage call, turning its failures into LedgerErrors that say what happened. */
  async guard<T>(fn: (db: Queryable) => Promise<T>): Promise<T> {
    try {
      return await fn(this.pool);
    } catch (err) {
      throw pgLedgerError(err, this.where);
    }
  }

  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.pool, fn);
    } catch (err) {
      throw pgLedgerError(err, this.where);
    }
  }

  async credit(e: CreditEntry, result: Uint8Array): Promise<boolean> {
    return this.transaction((client) => insertCredit(client, e, result));
  }

  async creditOf(unitId: string): Promise<CreditEntry | undefined> {
    const { rows } = await this.guard((db) => db.query<Row>('SELECT * FROM credits WHERE unit_id = $1', [unitId]));
    return rows.length > 0 ? creditFromRow(rows[0]) : undefined;
  }

  async creditsOf(minerKey: string, unitIds: readonly string[]): Promise<CreditEntry[]> {
    const { rows } = await this.guard((db) => db.query<Row>('SELECT * FROM credits WHERE miner_key = $1 AND unit_id = ANY($2::text[])', [minerKey, unitIds]));
    return rows.map(creditFromRow);
  }

  async hold(e: CreditEntry, result: Uint8Array): Promise<boolean> {
    return this.transaction(async (client) => {
      // The unit's credit row, if any, is locked against a settlement crediting it at the same time.
      const credited = await client.query('SELECT 1 FROM credits WHERE unit_id = $1 FOR SHARE', [e.unitId]);
      if (credited.rows.length > 0) return false;
      const energy = e.energy ?? NO_ENERGY;
      const inserted = await client.query(
        `INSERT INTO pending_credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms,
           joules, joules_source, joules_uncertainty, joules_above_idle, energy_refused, wall_seconds, adapter, receipt_kind, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (unit_id) DO NOTHING`,
        [
          e.unitId, e.jobId, e.minerKey, e.ops.toString(), e.microCredits.toString(), e.gpuSeconds, e.createdAtMs,
          energy.joules, energy.joulesSource, energy.uncertaintyJoules, energy.aboveIdleJoules, energy.refused, e.wallSeconds ?? null, e.adapter ?? null,
          e.receiptKind ?? null, Buffer.from(result),
        ],
      );
      return inserted.rowCount === 1;
    });
  }

  async pendingCredits(of: PendingOf): Promise<PendingCredit[]> {
    const [column, value] = 'minerKey' in of ? ['miner_key', of.minerKey] : ['job_id', of.jobId];
    const { rows } = await this.guard((db) => db.query<Row>(`SELECT * FROM pending_credits WHERE ${column} = $1 ORDER BY created_at_ms, unit_id`, [value]));
    return rows.map(pendingFromRow);
  }

  async settlePending(minerKey: string, audited: string, bondUnits: (auditsPassed: number) => number): Promise<PendingCredit[]> {
    return this.transaction(async (client) => {
      // The miner's audit record is locked first, by settlements and forfeits alike: one at a time per miner, in one order.
      const { rows } = await client.query<{ n: number }>(
        `INSERT INTO audit_records (miner_key, passed_in_a_row) VALUES ($1, 1)
         ON CONFLICT (miner_key) DO UPDATE SET passed_in_a_row = audit_records.passed_in_a_row + 1 RETURNING passed_in_a_row AS n`,
        [minerKey],
      );
      const pending = await client.query<Row>('SELECT * FROM pending_credits WHERE miner_key = $1 ORDER BY created_at_ms, unit_id FOR UPDATE', [minerKey]);
      const settled = settledByAudit(pending.rows.map(pendingFromRow), audited, bondUnits(Number(rows[0].n)));
      for (const p of settled) {
        await client.query('DELETE FROM pending_credits WHERE unit_id = $1', [p.unitId]);
        const exists = await client.query('SELECT 1 FROM jobs WHERE id = $1', [p.jobId]);
        await insertCredit(client, p, p.result, exists.rows.length > 0);
      }
      return settled;
    });
  }

  async forfeitPending(minerKey: string, reason: string, nowMs: number): Promise<PendingCredit[]> {
    return this.transaction(async (client) => {
      await client.query(
        `INSERT INTO audit_records (miner_key, passed_in_a_row) VALUES ($1, 0)
         ON CONFLICT (miner_key) DO UPDATE SET passed_in_a_row = 0`,
        [minerKey],
      );
      const pending = await takePending(client, minerKey);
      for (const p of pending) {
        await client.query(
          `INSERT INTO forfeited_credits (unit_id, job_id, miner_key, ops, micro_credits, created_at_ms, forfeited_at_ms, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [p.unitId, p.jobId, p.minerKey, p.ops.toString(), p.microCredits.toString(), p.createdAtMs, nowMs, reason],
        );
      }
      return pending;
    });
  }

  async forfeitedUnits(minerKey: string, unitIds: readonly string[]): Promise<{ unitId: string; microCredits: bigint }[]> {
    const { rows } = await this.guard((db) =>
      db.query<{ unit_id: string; micro_credits: string }>(
        `SELECT unit_id, MAX(micro_credits)::text AS micro_credits FROM forfeited_credits
         WHERE miner_key = $1 AND unit_id = ANY($2::text[]) GROUP BY unit_id`,
        [minerKey, unitIds],
      ),
    );
    return rows.map((row) => ({ unitId: row.unit_id, microCredits: BigInt(row.micro_credits) }));
  }

  async forfeited(minerKey: string): Promise<bigint> {
    return this.guard(async (db) => {
      const { rows } = await db.query<{ total: string }>('SELECT COALESCE(SUM(micro_credits), 0)::text AS total FROM forfeited_credits WHERE miner_key = $1', [minerKey]);
      return BigInt(rows[0].total);
    });
  }

  async auditsPassed(minerKey: string): Promise<number> {
    return this.guard(async (db) => {
      const { rows } = await db.query<{ n: number }>('SELECT passed_in_a_row AS n FROM audit_records WHERE miner_key = $1', [minerKey]);
      return rows[0]?.n ?? 0;
    });
  }

  async balance(minerKey: string): Promise<bigint> {
    return this.guard(async (db) => {
      const { rows } = await db.query<{ total: string }>('SELECT COALESCE(SUM(micro_credits), 0)::text AS total FROM credits WHERE miner_key = $1', [minerKey]);
      return BigInt(rows[0].total);
    });
  }

  async efficiency(): Promise<EfficiencyRow[]> {
    return this.guard(async (db) => {
      const { rows } = await db.query<Record<string, string>>(
        `SELECT miner_key, COALESCE(adapter, '') AS adapter, joules_source, COUNT(*)::text AS units, SUM(ops)::text AS ops,
           SUM(joules) AS joules, SQRT(SUM(joules_uncertainty * joules_uncertainty)) AS uncertainty,
           SUM(gpu_seconds) AS gpu_seconds, COALESCE(SUM(wall_seconds), 0) AS wall_seconds
         FROM credits GROUP BY miner_key, COALESCE(adapter, ''), joules_source ORDER BY miner_key, adapter, joules_source`,
      );
      return rows.map(efficiencyFromRow);
    });
  }

  async totals(): Promise<LedgerTotals> {
    return this.guard(async (db) => {
      const { rows } = await db.query<{ units: string; ops: string; micro: string }>(
        'SELECT COUNT(*)::text AS units, COALESCE(SUM(ops), 0)::text AS ops, COALESCE(SUM(micro_credits), 0)::text AS micro FROM credits',
      );
      return { units: Number(rows[0].units), ops: BigInt(rows[0].ops), microCredits: BigInt(rows[0].micro) };
    });
  }

  async saveJob(j: StoredJob): Promise<void> {
    await this.guard((db) => db.query(
      'INSERT INTO jobs (id, owner, kind, params, operands, created_at_ms, finished_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [j.id, j.owner, j.kind, JSON.stringify(j.params), JSON.stringify(j.operands), j.createdAtMs, j.finishedAtMs],
    ));
  }

  async finishJob(jobId: string, finishedAtMs: number): Promise<void> {
    await this.guard((db) => db.query('UPDATE jobs SET finished_at_ms = $1 WHERE id = $2 AND finished_at_ms IS NULL', [finishedAtMs, jobId]));
  }

  async deleteJob(jobId: string): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('DELETE FROM unit_results WHERE job_id = $1', [jobId]);
      await client.query('DELETE FROM jobs WHERE id = $1', [jobId]);
    });
  }

  async jobs(): Promise<StoredJob[]> {
    const { rows } = await this.guard((db) => db.query<Row>('SELECT * FROM jobs ORDER BY created_at_ms, id'));
    return rows.map(storedJob);
  }

  async unitResults(jobId: string): Promise<Map<string, { result: Uint8Array; minerKey: string }>> {
    const { rows } = await this.guard((db) => db.query<{ unit_id: string; result: Buffer; miner_key: string }>(
      'SELECT r.unit_id, r.result, c.miner_key FROM unit_results r JOIN credits c ON c.unit_id = r.unit_id WHERE r.job_id = $1',
      [jobId],
    ));
    return new Map(rows.map((r) => [r.unit_id, { result: new Uint8Array(r.result), minerKey: r.miner_key }]));
  }

  async reputation(minerKey: string): Promise<Reputation> {
    return this.guard((db) => readReputation(db, minerKey, false));
  }

  async updateReputation(minerKey: string, update: (current: Reputation) => Reputation): Promise<Reputation> {
    return this.transaction(async (client) => {
      // A row to lock even for a key never seen, so that two first verdicts at once are both counted.
      await client.query(
        'INSERT INTO reputation (miner_key, score, accepted, rejected, banned_until_ms) VALUES ($1, 0, 0, 0, 0) ON CONFLICT (miner_key) DO NOTHING',
        [minerKey],
      );
      const r = update(await readReputation(client, minerKey, true));
      await client.query(
        'UPDATE reputation SET score = $2, accepted = $3, rejected = $4, banned_until_ms = $5 WHERE miner_key = $1',
        [minerKey, r.score, r.accepted, r.rejected, r.bannedUntilMs],
      );
      return r;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Inserts a credit (and its result, unless told not to), inside the caller's transaction; false when already credited. */
async function insertCredit(client: Queryable, e: CreditEntry, result: Uint8Array, resultToo = true): Promise<boolean> {
  const energy = e.energy ?? NO_ENERGY;
  const inserted = await client.query(
    `INSERT INTO credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms,
       joules, joules_source, joules_uncertainty, joules_above_idle, energy_refused, wall_seconds, adapter, receipt_kind)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (unit_id) DO NOTHING`,
    [
      e.unitId, e.jobId, e.minerKey, e.ops.toString(), e.microCredits.toString(), e.gpuSeconds, e.createdAtMs,
      energy.joules, energy.joulesSource, energy.uncertaintyJoules, energy.aboveIdleJoules, energy.refused, e.wallSeconds ?? null, e.adapter ?? null,
      e.receiptKind ?? null,
    ],
  );
  if (inserted.rowCount !== 1) return false;
  if (resultToo) await client.query('INSERT INTO unit_results (unit_id, job_id, result) VALUES ($1, $2, $3)', [e.unitId, e.jobId, Buffer.from(result)]);
  return true;
}

/** Deletes and returns a miner's pending credits, oldest first, inside the caller's transaction. */
async function takePending(client: Queryable, minerKey: string): Promise<PendingCredit[]> {
  const { rows } = await client.query<Row>('DELETE FROM pending_credits WHERE miner_key = $1 RETURNING *', [minerKey]);
  return rows.map(pendingFromRow).sort((a, b) => a.createdAtMs - b.createdAtMs || (a.unitId < b.unitId ? -1 : 1));
}

/** A jobs row as the ledger interface gives it. */
export function storedJob(r: Row): StoredJob {
  return {
    id: String(r.id),
    owner: String(r.owner),
    kind: String(r.kind),
    params: r.params,
    operands: (r.operands as unknown[]).map(String),
    createdAtMs: Number(r.created_at_ms),
    finishedAtMs: r.finished_at_ms === null ? null : Number(r.finished_at_ms),
  };
}

async function readReputation(db: Queryable, minerKey: string, forUpdate: boolean): Promise<Reputation> {
  const { rows } = await db.query<Row>(`SELECT * FROM reputation WHERE miner_key = $1${forUpdate ? ' FOR UPDATE' : ''}`, [minerKey]);
  return reputationFromRow(minerKey, rows[0]);
}
