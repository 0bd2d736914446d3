// kill -9 the coordinator mid-job and start it again on the same data folder: credits once, leases again, the job completes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { freePort, startCoordinatorProcess, type CoordinatorProcess } from '../helpers/coordinator-process.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, fetchProduct, maxRelativeError, submitGemm, TEST_API_KEY, type JobView } from '../helpers/stack.ts';

interface Status {
  unitsPending: number;
  unitsLeased: number;
  credited: { units: number; ops: string };
}

describe('coordinator crash recovery', () => {
  const running: CoordinatorProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    for (const p of running) await p.stop();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every verified credit exactly once, leases in-flight units again and completes the job after kill -9', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-crash-'));
    dataDirs.push(dataDir);
    const port = await freePort();
    const first = await startCoordinatorProcess(dataDir, port);
    running.push(first);
    const config = (await (await fetch(new URL('api/config', first.url))).json()) as { coordinatorKey: string };

    const [m, n, k] = [768, 512, 64];
    const a = randomMatrix(m * k, 71);
    const b = randomMatrix(k * n, 72);
    const job = await submitGemm(first.url, m, n, k, a, b);
    expect(job.unitsTotal).toBe(6);

    const early = await ScriptedMiner.connect(first.url);
    await early.hello();
    const paidBefore: string[] = [];
    for (let i = 0; i < 2; i++) {
      const lease = await early.lease();
      const verdict = await early.verdict(lease, ScriptedMiner.compute(lease));
      expect(verdict.type).toBe('receipt');
      paidBefore.push(lease.unitId);
    }
    const inFlight = await early.lease();
    await first.kill9();
    early.close();

    const second = await startCoordinatorProcess(dataDir, port);
    running.push(second);
    expect(second.url).toBe(first.url);
    const resumed = (await (await api(second.url, `jobs/${job.id}`)).json()) as JobView;
    expect(resumed).toMatchObject({ status: 'running', unitsTotal: 6, unitsDone: 2 });
    const status = (await (await fetch(new URL('api/status', second.url))).json()) as Status;
    expect(status).toMatchObject({ unitsPending: 4, unitsLeased: 0, credited: { units: 2 } });

    const { miner: late, receipts } = await ScriptedMiner.mineJob(second.url, job.id);
    const paidAfter = receipts.map((r) => r.receipt.unitId);
    expect(paidAfter).toHaveLength(4);
    expect(paidAfter).toContain(inFlight.unitId);
    for (const unitId of paidBefore) expect(paidAfter).not.toContain(unitId);
    for (const { receipt } of receipts) {
      expect(await verifyReceipt(receipt)).toBe(true);
      expect(toHex(receipt.coordinatorKey)).toBe(config.coordinatorKey);
    }
    expect(maxRelativeError(await fetchProduct(second.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);

    // A second crash after the job is done loses nothing either: the product is assembled again from stored tiles.
    await second.kill9();
    const third = await startCoordinatorProcess(dataDir, port);
    running.push(third);
    expect(((await (await api(third.url, `jobs/${job.id}`)).json()) as JobView).status).toBe('done');
    expect(maxRelativeError(await fetchProduct(third.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    await third.stop();

    const db = new Database(join(dataDir, 'ledger.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT unit_id, miner_key, ops FROM credits WHERE job_id = ?').all(job.id) as { unit_id: string; miner_key: string; ops: number }[];
      expect(rows).toHaveLength(6);
      expect(new Set(rows.map((r) => r.unit_id)).size).toBe(6);
      expect(rows.reduce((s, r) => s + r.ops, 0)).toBe(2 * m * n * k);
      expect(rows.filter((r) => r.miner_key === toHex(early.minerKey)).map((r) => r.unit_id).sort()).toEqual([...paidBefore].sort());
      expect(rows.filter((r) => r.miner_key === toHex(late.minerKey))).toHaveLength(4);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('brings an f16 job back as f16 after kill -9: its halves from the operand store, its units for f16 miners only', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-crash-f16-'));
    dataDirs.push(dataDir);
    const port = await freePort();
    const first = await startCoordinatorProcess(dataDir, port);
    running.push(first);
    const [m, n, k] = [300, 200, 48];
    const a = randomMatrix(m * k, 73);
    const b = randomMatrix(k * n, 74);
    const job = await submitGemm(first.url, m, n, k, a, b, TEST_API_KEY, 'f16');
    const early = await ScriptedMiner.connect(first.url);
    await early.hello(undefined, ['f32', 'f16']);
    const lease = await early.lease();
    expect((await early.verdict(lease, ScriptedMiner.compute(lease))).type).toBe('receipt');
    await first.kill9();
    early.close();

    const second = await startCoordinatorProcess(dataDir, port);
    running.push(second);
    expect(await (await api(second.url, `jobs/${job.id}`)).json()).toMatchObject({ precision: 'f16', status: 'running', unitsDone: 1 });
    const f32Only = await ScriptedMiner.connect(second.url);
    await f32Only.hello();
    f32Only.send({ type: 'work-request' });
    expect((await f32Only.next('lease', 'no-work')).type).toBe('no-work');
    f32Only.close();
    const { receipts } = await ScriptedMiner.mineJob(second.url, job.id, ['f32', 'f16']);
    expect(job.unitsTotal).toBe(2);
    expect(receipts.map((r) => r.receipt.kind)).toEqual(['gemm-f16']);
    const rounded = matmulF64(fromHalves(toHalves(a)), fromHalves(toHalves(b)), m, k, n);
    expect(maxRelativeError(await fetchProduct(second.url, job.id), rounded)).toBeLessThan(1e-5);
    await second.stop();
  });
});
