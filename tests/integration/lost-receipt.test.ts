// A coordinator killed after committing a credit and before sending its receipt: the page sends its result again
// (to the same coordinator restarted, or to another of its fleet) and gets the receipt, equal in every field to the
// one that was lost and signed by the coordinator that answers; the unit stays credited once, and another wallet key
// that sends the same result is refused as an offence.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys, toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { verifiedFleetKeys, type SignedFleetList } from '../../src/protocol/fleet-list.ts';
import { freePort, startCoordinatorProcess, type CoordinatorProcess } from '../helpers/coordinator-process.ts';
import { startFleet, type TestFleet } from '../helpers/fleet.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { submitGemm } from '../helpers/stack.ts';

const CRASH_AFTER_CREDIT = { ERGON_TEST_CRASH_AFTER_CREDIT: '1' };

interface Status {
  credited: { units: number; ops: string };
}

const coordinatorKey = async (url: string) => ((await (await fetch(new URL('api/config', url))).json()) as { coordinatorKey: string }).coordinatorKey;

/** Sends a result to a coordinator that dies of it; resolves once the process is gone. */
async function sendAndCrash(miner: ScriptedMiner, coordinator: CoordinatorProcess, lease: Awaited<ReturnType<ScriptedMiner['lease']>>, product: Float32Array) {
  const exited = new Promise<NodeJS.Signals | null>((resolve) => coordinator.child.once('exit', (_code, signal) => resolve(signal)));
  miner.sendResult(lease, product);
  expect(await exited).toBe('SIGKILL');
  miner.close();
}

describe('a receipt lost with the coordinator that committed its credit', () => {
  const running: CoordinatorProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    for (const p of running) await p.stop();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  });

  it('is signed again after a restart for the same wallet key, which is credited once; another key is refused', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-lost-receipt-'));
    dataDirs.push(dataDir);
    const port = await freePort();
    const doomed = await startCoordinatorProcess(dataDir, port, 30_000, CRASH_AFTER_CREDIT);
    running.push(doomed);
    const job = await submitGemm(doomed.url, 512, 256, 32, randomMatrix(512 * 32, 91), randomMatrix(32 * 256, 92));
    expect(job.unitsTotal).toBeGreaterThan(1);
    const wallet = await generateSigningKeys();
    const miner = await ScriptedMiner.connect(doomed.url);
    await miner.hello(wallet);
    const lease = await miner.lease();
    const product = ScriptedMiner.compute(lease);
    await sendAndCrash(miner, doomed, lease, product);

    const restarted = await startCoordinatorProcess(dataDir, port);
    running.push(restarted);
    const credited = async () => ((await (await fetch(new URL('api/status', restarted.url))).json()) as Status).credited.units;
    // The credit was committed before the crash: it is in the ledger, and its receipt never went out.
    expect(await credited()).toBe(1);

    const thief = await ScriptedMiner.connect(restarted.url);
    await thief.hello();
    expect(await thief.verdict(lease, product)).toMatchObject({ type: 'rejected', code: 'unknown-lease' });
    thief.close();

    const back = await ScriptedMiner.connect(restarted.url);
    await back.hello(wallet);
    const verdict = await back.verdict(lease, product);
    if (verdict.type !== 'receipt') throw new Error(`expected the lost receipt, got ${verdict.code}: ${verdict.message}`);
    const { receipt } = verdict;
    expect(await verifyReceipt(receipt)).toBe(true);
    expect(receipt).toMatchObject({ unitId: lease.unitId, jobId: job.id, kind: 'gemm', ops: lease.ops });
    expect(toHex(receipt.minerKey)).toBe(toHex(back.minerKey));
    expect(toHex(receipt.coordinatorKey)).toBe(await coordinatorKey(restarted.url));
    // Sent a third time: the same receipt again, byte for byte, and still one credit.
    const again = await back.verdict(lease, product);
    expect(again).toEqual(verdict);
    expect(await credited()).toBe(1);
    back.close();
  });
});

let server: TestPostgres | undefined;
const fleets: TestFleet[] = [];
beforeAll(async () => {
  if (!postgresMissing) server = await startPostgres();
});
afterAll(async () => {
  for (const fleet of fleets) await fleet.stop();
  await server?.stop();
});

describe.skipIf(postgresMissing !== null)(`a receipt lost with a coordinator of a fleet${postgresMissing ? `: ${postgresMissing}` : ''}`, () => {
  it('is signed by another coordinator of the fleet, whose key the fleet list vouches for; the unit is credited once', async () => {
    if (!server) throw new Error('PostgreSQL did not start');
    const fleet = await startFleet(server, 1);
    fleets.push(fleet);
    const [survivor] = fleet.coordinators;
    const doomed = await fleet.add(CRASH_AFTER_CREDIT);
    const job = await submitGemm(survivor.url, 256, 128, 16, randomMatrix(256 * 16, 93), randomMatrix(16 * 128, 94));
    const wallet = await generateSigningKeys();
    const miner = await ScriptedMiner.connect(doomed.url);
    await miner.hello(wallet);
    const lease = await miner.lease();
    const product = ScriptedMiner.compute(lease);
    await sendAndCrash(miner, doomed, lease, product);

    const thief = await ScriptedMiner.connect(survivor.url);
    await thief.hello();
    expect(await thief.verdict(lease, product)).toMatchObject({ type: 'rejected', code: 'unknown-lease' });
    // Claiming a unit credited to another key is an offence, even from another coordinator's lease.
    expect(await fleet.query('SELECT rejected FROM reputation WHERE miner_key = $1', [toHex(thief.minerKey)])).toEqual([{ rejected: 1 }]);
    thief.close();

    const back = await ScriptedMiner.connect(survivor.url);
    await back.hello(wallet);
    const verdict = await back.verdict(lease, product);
    if (verdict.type !== 'receipt') throw new Error(`expected the lost receipt, got ${verdict.code}: ${verdict.message}`);
    const { receipt } = verdict;
    expect(await verifyReceipt(receipt)).toBe(true);
    expect(receipt).toMatchObject({ unitId: lease.unitId, jobId: job.id, kind: 'gemm', ops: lease.ops });
    const survivorKey = await coordinatorKey(survivor.url);
    expect(toHex(receipt.coordinatorKey)).toBe(survivorKey);
    const list = (await (await fetch(new URL('api/fleet', survivor.url))).json()) as SignedFleetList;
    expect(await verifiedFleetKeys(list.fleetKey, list)).toContain(survivorKey);

    const credits = await fleet.query<{ miner_key: string; micro_credits: string }>('SELECT miner_key, micro_credits::text FROM credits WHERE unit_id = $1', [lease.unitId]);
    expect(credits).toEqual([{ miner_key: toHex(back.minerKey), micro_credits: receipt.microCredits.toString() }]);
    back.close();
  });
});
