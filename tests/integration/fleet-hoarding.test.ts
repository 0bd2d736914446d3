// Hoarding a fleet's work: on PostgreSQL each lease is a database round trip, so work requests sent at once are
// answered concurrently; a key still holds only the leases its verified work allows, over all its connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/protocol/receipt.ts';
import { startFleet, type TestFleet } from '../helpers/fleet.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { submitGemm } from '../helpers/stack.ts';

let server: TestPostgres | undefined;
let fleet: TestFleet | undefined;
const miners: ScriptedMiner[] = [];
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres();
});
afterAll(async () => {
  for (const miner of miners) miner.close();
  await fleet?.stop();
  await server?.stop();
});

describe.skipIf(postgresMissing)('a fleet under a hoarder', () => {
  it('gives a new key one lease however many requests it sends at once, over all its connections', async () => {
    if (!server) throw new Error('PostgreSQL did not start');
    fleet = await startFleet(server, 1);
    const { url } = fleet.coordinators[0];
    const job = await submitGemm(url, 256 * 16, 8, 4, randomMatrix(256 * 16 * 4, 1), randomMatrix(4 * 8, 2));
    expect(job.unitsTotal).toBe(16);

    const keys = await generateSigningKeys();
    const connections = await Promise.all([0, 1].map(async () => {
      const miner = await ScriptedMiner.connect(url);
      miners.push(miner);
      await miner.hello(keys);
      return miner;
    }));
    const asked = await Promise.all(connections.map((miner) => miner.askMany(20)));
    expect(asked.reduce((sum, a) => sum + a.leases, 0)).toBe(1);
    const held = await fleet.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_units WHERE lease_id IS NOT NULL');
    expect(held[0].n).toBe(1);
    expect(asked.flatMap((a) => a.reasons)[0]).toMatch(/holds 1 lease, as many as it may now \(1\)/);
  });
});
