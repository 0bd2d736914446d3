// Several coordinators, one system: coordinator processes on one real PostgreSQL, scripted miners on real PeerJS data
// channels; a job submitted to one is mined through another and fetched from a third; one is killed with SIGKILL
// mid-run, and every unit is still accounted for exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys, toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { verifiedFleetKeys, type SignedFleetList } from '../../src/protocol/fleet-list.ts';
import { MICRO_CREDITS_PER_GIGA_OP } from '../../src/work/gemm/gemm.ts';
import { microCreditsFor } from '../../src/work/kind.ts';
import type { MessageOf } from '../../src/miner/coordinator-link.ts';
import { startFleet, type TestFleet } from '../helpers/fleet.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, fetchProduct, maxRelativeError, submitGemm, waitForJob, type JobView } from '../helpers/stack.ts';

type Receipt = MessageOf<'receipt'>['receipt'];
interface CreditRow { unit_id: string; miner_key: string; ops: string; micro_credits: string }

let server: TestPostgres | undefined;
const fleets: TestFleet[] = [];
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres();
});
afterAll(async () => {
  for (const fleet of fleets) await fleet.stop();
  await server?.stop();
});

async function fleetOf(size: number): Promise<TestFleet> {
  if (!server) throw new Error(postgresMissing ?? 'PostgreSQL did not start');
  const fleet = await startFleet(server, size);
  fleets.push(fleet);
  return fleet;
}

const coordinatorKey = async (url: string) => ((await (await fetch(new URL('api/config', url))).json()) as { coordinatorKey: string }).coordinatorKey;

/**
 * The ledger check: each unit credited once, to the miner holding its receipt, for exactly ops x rate; no receipt
 * without its credit and no credit without a receipt.
 */
async function checkLedger(fleet: TestFleet, jobId: string, unitsTotal: number, receipts: Receipt[]) {
  const credits = await fleet.query<CreditRow>('SELECT unit_id, miner_key, ops::text, micro_credits::text FROM credits WHERE job_id = $1', [jobId]);
  expect(credits).toHaveLength(unitsTotal);
  expect(new Set(credits.map((c) => c.unit_id)).size).toBe(unitsTotal);
  const expected = credits.reduce((sum, c) => sum + microCreditsFor(BigInt(c.ops), MICRO_CREDITS_PER_GIGA_OP.f32), 0n);
  expect(credits.reduce((sum, c) => sum + BigInt(c.micro_credits), 0n)).toBe(expected);
  const forJob = receipts.filter((r) => r.jobId === jobId);
  expect(forJob.map((r) => r.unitId).sort()).toEqual(credits.map((c) => c.unit_id).sort());
  const byUnit = new Map(credits.map((c) => [c.unit_id, c]));
  for (const receipt of forJob) {
    const credit = byUnit.get(receipt.unitId);
    expect(credit && { miner: credit.miner_key, microCredits: BigInt(credit.micro_credits), ops: BigInt(credit.ops) })
      .toEqual({ miner: toHex(receipt.minerKey), microCredits: receipt.microCredits, ops: receipt.ops });
    expect(await verifyReceipt(receipt)).toBe(true);
  }
}

describe.skipIf(postgresMissing !== null)(`a fleet of coordinators on PostgreSQL${postgresMissing ? `: ${postgresMissing}` : ''}`, () => {
  it('mines a job submitted to one coordinator through another and serves its product from a third', async () => {
    const fleet = await fleetOf(2);
    const [first, second] = fleet.coordinators;
    const [m, n, k] = [512, 256, 32];
    const a = randomMatrix(m * k, 81);
    const b = randomMatrix(k * n, 82);
    const job = await submitGemm(first.url, m, n, k, a, b);
    const { receipts } = await ScriptedMiner.mineJob(second.url, job.id);
    expect(receipts).toHaveLength(job.unitsTotal);
    // Each coordinator signs its receipts with its own key.
    const keys = [await coordinatorKey(first.url), await coordinatorKey(second.url)];
    expect(keys[0]).not.toBe(keys[1]);
    for (const { receipt } of receipts) expect(toHex(receipt.coordinatorKey)).toBe(keys[1]);

    const third = await fleet.add();
    expect(await (await api(third.url, `jobs/${job.id}`)).json()).toMatchObject({ status: 'done', unitsTotal: job.unitsTotal, unitsDone: job.unitsTotal, miners: 1 });
    expect(maxRelativeError(await fetchProduct(third.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    await checkLedger(fleet, job.id, job.unitsTotal, receipts.map((r) => r.receipt));

    // Every coordinator lists the whole fleet, signed by the one fleet key: a wallet that pins it trusts all three.
    const lists = await Promise.all([first, second, third].map(async (c) => (await fetch(new URL('api/fleet', c.url))).json() as Promise<SignedFleetList>));
    const fleetKey = lists[0].fleetKey;
    for (const list of lists) {
      expect(list.fleetKey).toBe(fleetKey);
      expect(list.coordinators.map((c) => c.url).sort()).toEqual([first.url, second.url, third.url].sort());
      expect((await verifiedFleetKeys(fleetKey, list))?.sort()).toEqual([...keys, await coordinatorKey(third.url)].sort());
    }
    // A list altered on the way (a squatter's URL and key added) or signed by another fleet is not trusted.
    const forged = { ...lists[0], coordinators: [...lists[0].coordinators, { key: 'ab'.repeat(32), url: 'http://127.0.0.1:1/' }] };
    expect(await verifiedFleetKeys(fleetKey, forged)).toBeNull();
    expect(await verifiedFleetKeys('cd'.repeat(32), lists[0])).toBeNull();
    expect(await verifiedFleetKeys(fleetKey, { nonsense: true })).toBeNull();
  });

  it('accounts for every unit exactly once when one of three coordinators is killed with SIGKILL mid-run', async () => {
    const fleet = await fleetOf(3);
    const [doomed, second, third] = fleet.coordinators;
    const [m, n, k] = [2048, 256, 32];
    const a = randomMatrix(m * k, 83);
    const b = randomMatrix(k * n, 84);
    const job = await submitGemm(third.url, m, n, k, a, b);
    expect(job.unitsTotal).toBeGreaterThanOrEqual(6);

    // A miner on the doomed coordinator is paid for two units, then holds a lease when its coordinator dies.
    const receipts: Receipt[] = [];
    const victim = await ScriptedMiner.connect(doomed.url);
    await victim.hello();
    for (let i = 0; i < 2; i++) {
      const lease = await victim.lease();
      const verdict = await victim.verdict(lease, ScriptedMiner.compute(lease));
      if (verdict.type !== 'receipt') throw new Error(`honest result refused: ${verdict.code}`);
      receipts.push(verdict.receipt);
    }
    const lost = await victim.lease();
    await doomed.kill9();
    victim.close();

    // The survivors' miners finish the job: the dead coordinator's lease comes back once it has been silent long enough.
    let done = false;
    const miners = await Promise.all([second.url, third.url, second.url].map(async (url) => {
      const miner = await ScriptedMiner.connect(url);
      await miner.hello();
      return miner;
    }));
    const mining = miners.map((miner) => miner.mineHonestly(() => done));
    const finished = (await waitForJob(second.url, job.id, 120_000)) as JobView;
    done = true;
    for (const got of await Promise.all(mining)) receipts.push(...got.map((r) => r.receipt));
    miners.forEach((miner) => miner.close());

    expect(finished).toMatchObject({ status: 'done', unitsDone: job.unitsTotal });
    expect(receipts.map((r) => r.unitId)).toContain(lost.unitId);
    expect(maxRelativeError(await fetchProduct(third.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    await checkLedger(fleet, job.id, job.unitsTotal, receipts);
    const leases = await fleet.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_units WHERE lease_id IS NOT NULL');
    expect(leases[0].n).toBe(0);
  });

  it('refuses plainly a result sent to a coordinator other than the one that leased it, and never credits a unit twice', async () => {
    const fleet = await fleetOf(2);
    const [leaser, other] = fleet.coordinators;
    const job = await submitGemm(leaser.url, 256, 64, 16, randomMatrix(256 * 16, 87), randomMatrix(16 * 64, 88));
    const wallet = await generateSigningKeys();
    const atLeaser = await ScriptedMiner.connect(leaser.url);
    await atLeaser.hello(wallet);
    const atOther = await ScriptedMiner.connect(other.url);
    await atOther.hello(wallet);
    const lease = await atLeaser.lease();
    const product = ScriptedMiner.compute(lease);
    // Same wallet, another coordinator: that coordinator's sessions hold no such lease, so it pays nothing.
    expect(await atOther.verdict(lease, product)).toMatchObject({ type: 'rejected', code: 'unknown-lease', message: expect.stringContaining(lease.leaseId) });
    // Without blame: a page whose coordinator died sends its results to another of the fleet.
    const reputation = await fleet.query<{ rejected: number }>('SELECT rejected FROM reputation WHERE miner_key = $1', [toHex(atOther.minerKey)]);
    expect(reputation.map((r) => Number(r.rejected))).not.toContain(1);
    const paid = await atLeaser.verdict(lease, product);
    if (paid.type !== 'receipt') throw new Error(`honest result refused: ${paid.code}`);
    // Sent again anywhere afterwards (its receipt may have been lost): the same receipt, signed by whichever
    // coordinator answers, and the unit stays credited once.
    const again = await atOther.verdict(lease, product);
    if (again.type !== 'receipt') throw new Error(`expected the receipt again, got ${again.code}`);
    expect({ ...again.receipt, coordinatorKey: null, signature: null }).toEqual({ ...paid.receipt, coordinatorKey: null, signature: null });
    expect(toHex(again.receipt.coordinatorKey)).toBe(await coordinatorKey(other.url));
    expect(await atLeaser.verdict(lease, product)).toEqual(paid);
    const credits = await fleet.query<{ n: number }>('SELECT count(*)::int AS n FROM credits WHERE unit_id = $1', [lease.unitId]);
    expect(credits[0].n).toBe(1);
    expect(job.unitsTotal).toBeGreaterThan(0);
    atLeaser.close();
    atOther.close();
  });

  it("lets the pages of the fleet's coordinators, and no other origin, read a coordinator's config and fleet list", async () => {
    const fleet = await fleetOf(2);
    const [a, b] = fleet.coordinators;
    const aOrigin = new URL(a.url).origin;
    for (const path of ['api/config', 'api/fleet']) {
      const member = await fetch(new URL(path, b.url), { headers: { origin: aOrigin } });
      expect(member.status, path).toBe(200);
      expect(member.headers.get('access-control-allow-origin'), path).toBe(aOrigin);
      const foreign = await fetch(new URL(path, b.url), { headers: { origin: 'https://evil.example' } });
      expect(foreign.headers.get('access-control-allow-origin'), path).toBeNull();
    }
    // Requester routes stay same-origin, fleet or not.
    const jobs = await fetch(new URL('api/jobs', b.url), { headers: { origin: aOrigin } });
    expect(jobs.status).toBe(403);
  });

  it('stops leasing and says why while its database is down, then leases again when it is back', async () => {
    const fleet = await fleetOf(1);
    const [coordinator] = fleet.coordinators;
    const job = await submitGemm(coordinator.url, 256, 64, 16, randomMatrix(256 * 16, 85), randomMatrix(16 * 64, 86));
    const miner = await ScriptedMiner.connect(coordinator.url);
    await miner.hello();
    const database = server;
    if (!database) throw new Error('no PostgreSQL');
    await database.kill();
    try {
      miner.send({ type: 'work-request' });
      const reply = await miner.next('lease', 'no-work', 'error');
      expect(reply).toMatchObject({ type: 'no-work', reason: expect.stringMatching(/^not leasing: the database .* is unreachable/) });
      // The requester is told too, plainly, and nothing half-written.
      const status = await api(coordinator.url, `jobs/${job.id}`);
      expect(status.status).toBe(503);
    } finally {
      await database.start();
    }
    const lease = await miner.lease();
    expect((await miner.verdict(lease, ScriptedMiner.compute(lease))).type).toBe('receipt');
    miner.close();
  });
});
