// A fleet for tests: coordinator processes (src/coordinator/main.ts, so that one can be SIGKILLed) on one real
// PostgreSQL database and one shared operand folder, each with its own data folder (its own signing key).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, startCoordinatorProcess, type CoordinatorProcess } from './coordinator-process.ts';
import type { TestPostgres } from './postgres.ts';

export interface TestFleet {
  databaseUrl: string;
  coordinators: CoordinatorProcess[];
  /** Starts one more coordinator of the fleet, with these environment variables besides the fleet's. */
  add(env?: Record<string, string>): Promise<CoordinatorProcess>;
  /** One query on the fleet's database. */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
}

export async function startFleet(server: TestPostgres, size: number): Promise<TestFleet> {
  const databaseUrl = await server.createDatabase();
  const sharedDir = await mkdtemp(join(tmpdir(), 'ergon-fleet-shared-'));
  const dirs = [sharedDir];
  const coordinators: CoordinatorProcess[] = [];
  const add = async (env: Record<string, string> = {}) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-fleet-'));
    dirs.push(dataDir);
    const coordinator = await startCoordinatorProcess(dataDir, await freePort(), 60_000, { ...env, DATABASE_URL: databaseUrl, ERGON_SHARED_DIR: sharedDir });
    coordinators.push(coordinator);
    return coordinator;
  };
  // One after the other: the first migrates the database (the others would wait on its advisory lock).
  for (let i = 0; i < size; i++) await add();
  return {
    databaseUrl,
    coordinators,
    add,
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
    async stop() {
      await Promise.all(coordinators.map((c) => c.stop()));
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
