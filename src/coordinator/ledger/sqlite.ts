// The embedded ledger: one SQLite file in the data folder, WAL mode, a unique key on the unit id.
import Database from 'better-sqlite3';
import type { CreditEntry, Ledger, LedgerTotals } from './ledger.ts';

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
];

export class SqliteLedger implements Ledger {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly balanceOf: Database.Statement;
  private readonly sum: Database.Statement;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.defaultSafeIntegers(true);
    this.migrate();
    this.insert = this.db.prepare(
      `INSERT INTO credits (unit_id, job_id, miner_key, ops, micro_credits, gpu_seconds, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING`,
    );
    this.balanceOf = this.db.prepare('SELECT COALESCE(SUM(micro_credits), 0) AS total FROM credits WHERE miner_key = ?');
    this.sum = this.db.prepare(
      'SELECT COUNT(*) AS units, COALESCE(SUM(ops), 0) AS ops, COALESCE(SUM(micro_credits), 0) AS micro FROM credits',
    );
  }

  private migrate(): void {
    const version = Number(this.db.pragma('user_version', { simple: true }));
    this.db.transaction(() => {
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    })();
  }

  async credit(e: CreditEntry): Promise<boolean> {
    const info = this.insert.run(e.unitId, e.jobId, e.minerKey, e.ops, e.microCredits, e.gpuSeconds, BigInt(e.createdAtMs));
    return info.changes === 1;
  }

  async balance(minerKey: string): Promise<bigint> {
    const row = this.balanceOf.get(minerKey) as { total: bigint };
    return row.total;
  }

  async totals(): Promise<LedgerTotals> {
    const row = this.sum.get() as { units: bigint; ops: bigint; micro: bigint };
    return { units: Number(row.units), ops: row.ops, microCredits: row.micro };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
