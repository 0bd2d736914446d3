// The ledger conformance suite against a real PostgreSQL (started here in a temporary folder), and what only a shared
// database has to get right: migrations run once when coordinators start at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openLedger, type Ledger } from '../../../src/coordinator/ledger/ledger.ts';
import { loadMigrations } from '../../../src/coordinator/ledger/migrations.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../../helpers/postgres.ts';
import { creditEntry, ledgerConformance } from './ledger-conformance.ts';

let server: TestPostgres | undefined;
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const need = () => {
  if (!server) throw new Error(postgresMissing ?? 'PostgreSQL did not start');
  return server;
};

if (postgresMissing) {
  describe.skip(`postgres ledger: ${postgresMissing}`, () => {
    it('skipped', () => undefined);
  });
} else {
  ledgerConformance('postgres', async () => {
    const url = await need().createDatabase();
    return { open: () => openLedger({ backend: 'postgres', url }), cleanUp: async () => undefined };
  });

  describe('postgres ledger: a fleet on one database', () => {
    it('migrates once when five coordinators open the same database at once', async () => {
      const url = await need().createDatabase();
      const ledgers: Ledger[] = await Promise.all(Array.from({ length: 5 }, () => openLedger({ backend: 'postgres', url })));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
      await client.end();
      expect(rows.map((r) => r.name)).toEqual(loadMigrations('postgres').map((m) => m.name));
      // Each sees the others' credits, and a unit credited through one is refused by all the others.
      expect(await ledgers[0].credit(creditEntry('u1'), new Uint8Array([1]))).toBe(true);
      expect(await Promise.all(ledgers.map((l) => l.credit(creditEntry('u1', 'bb'), new Uint8Array([2]))))).toEqual([false, false, false, false, false]);
      expect(await ledgers[4].balance('aa')).toBe(2_000_000n);
      await Promise.all(ledgers.map((l) => l.close()));
    });

    it('says plainly that the database is unreachable', async () => {
      const url = `postgres://postgres@127.0.0.1:${need().port}/no_such_database_here`;
      await expect(openLedger({ backend: 'postgres', url })).rejects.toMatchObject({ code: 'storage-failed', message: expect.stringMatching(/no_such_database_here/) });
    });
  });
}
