// Where a coordinator keeps its state: the embedded SQLite ledger, in-memory queue and operand folder in its data
// folder by default; with a DATABASE_URL, the fleet's PostgreSQL ledger and queue and an operand folder every
// coordinator of the fleet reaches.
//
// Operands live in a shared folder, not in the database: a job's operands are up to 512 MiB, streamed to a file as
// they upload and read back whole; in PostgreSQL they would be BYTEA values read through one query each, and every
// coordinator rebuilding a job would pull them through the database that is already the fleet's one bottleneck.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KindRegistry } from '../work/registry.ts';
import { openLedger, type Ledger } from './ledger/ledger.ts';
import { log } from './log.ts';
import { OperandStore } from './operand-store.ts';
import { PgQueue } from './pg-queue.ts';
import type { WorkQueue } from './queue.ts';
import { Scheduler } from './scheduler.ts';
import type { LeaseIds } from './lease-ids.ts';

export interface StorageOptions {
  dataDir: string;
  /** PostgreSQL URL of the fleet's database; unset: the embedded SQLite ledger in dataDir */
  databaseUrl?: string;
  /** The folder every coordinator of the fleet reaches, for operands; required with databaseUrl */
  sharedDir?: string;
  kinds: KindRegistry;
  /** How the in-memory queue mints lease ids, so that it knows its own after a restart (lease-ids.ts). */
  leaseIds?: LeaseIds;
}

export interface Storage {
  ledger: Ledger;
  queue: WorkQueue;
  operands: OperandStore;
  /** The fleet's queue, when this coordinator is one of a fleet */
  fleet: PgQueue | null;
}

export async function openStorage(options: StorageOptions): Promise<Storage> {
  if (!options.databaseUrl) {
    const ledger = await openLedger({ backend: 'sqlite', path: join(options.dataDir, 'ledger.sqlite') });
    return { ledger, queue: new Scheduler(options.leaseIds), operands: await OperandStore.open(options.dataDir), fleet: null };
  }
  if (!options.sharedDir) {
    throw new Error('a fleet (DATABASE_URL set) needs ERGON_SHARED_DIR: a folder every coordinator of the fleet reaches, for job operands');
  }
  const { PostgresLedger } = await import('./ledger/postgres.ts');
  const ledger = await PostgresLedger.open(options.databaseUrl, (err) => log('storage-error', { event: 'pool', code: err.code, message: err.message }));
  const operands = await OperandStore.open(options.sharedDir);
  const fleet = new PgQueue(ledger.pool, options.kinds, operands, undefined, ledger.where);
  return { ledger, queue: fleet, operands, fleet };
}

/** The folder holding the fleet's key (coordinator-key.pkcs8, owner-only), made on the first coordinator's start. */
export async function fleetKeyDir(sharedDir: string): Promise<string> {
  const dir = join(sharedDir, 'fleet-key');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
