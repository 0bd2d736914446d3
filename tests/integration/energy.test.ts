// Energy claims over the real protocol: a plausible one is signed into the receipt and stored, an impossible one is
// dropped (the receipt says 'none') and the pay is the same either way.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { f32Tensor } from '../../src/protocol/tensor.ts';
import type { UnitEnergy } from '../../src/protocol/energy.ts';
import type { EfficiencyTable } from '../../src/coordinator/rankings.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('energy claims', () => {
  let stack: TestStack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack?.stop();
  });

  it('signs and stores measured joules with their method, drops an impossible claim without touching pay, and ranks by method', async () => {
    const [m, n, k] = [768, 256, 32];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 81), randomMatrix(k * n, 82));
    expect(job.unitsTotal).toBe(3);
    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello();
    const claim = async (energy: UnitEnergy | undefined) => {
      const lease = await miner.lease();
      miner.send({
        type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01,
        output: f32Tensor(ScriptedMiner.tileShape(lease), ScriptedMiner.compute(lease)), ...(energy ? { energy } : {}),
      });
      const verdict = await miner.next('receipt', 'rejected');
      if (verdict.type !== 'receipt') throw new Error(`refused: ${verdict.code}: ${verdict.message}`);
      return verdict.receipt;
    };
    // A unit is 2 * 256 * 256 * 32 = 4.2 MFLOP: 0.5 J is 8.4 MFLOP/J, plausible; 1e-9 J would be 4e15 FLOP/J.
    const measured = await claim({ joules: 0.5, seconds: 0.01, method: 'rapl', uncertaintyJoules: 0.025, aboveIdleJoules: 0.2 });
    const impossible = await claim({ joules: 1e-9, seconds: 0.01, method: 'nvml-energy', uncertaintyJoules: 0 });
    const unmeasured = await claim(undefined);
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');

    expect(measured).toMatchObject({ joules: 0.5, joulesSource: 'rapl' });
    expect(await verifyReceipt(measured)).toBe(true);
    expect(await verifyReceipt({ ...measured, joules: 0.1 })).toBe(false);
    expect(impossible).toMatchObject({ joules: 0, joulesSource: 'none' });
    expect(await verifyReceipt(impossible)).toBe(true);
    expect(unmeasured).toMatchObject({ joules: 0, joulesSource: 'none' });
    // Pay is per verified op: the same for all three.
    expect(impossible.microCredits).toBe(measured.microCredits);
    expect(unmeasured.microCredits).toBe(measured.microCredits);

    const rows = await stack.ledger.efficiency();
    const key = toHex(miner.minerKey);
    expect(rows.find((r) => r.minerKey === key && r.joulesSource === 'rapl')).toMatchObject({ units: 1, joules: 0.5 });
    expect(rows.find((r) => r.minerKey === key && r.joulesSource === 'none')).toMatchObject({ units: 2, joules: 0 });

    const table = await (await fetch(new URL('api/rankings', stack.url))).json() as EfficiencyTable;
    expect(table.groups.map((g) => g.method)).toEqual(['rapl']);
    expect(table.groups[0].miners[0].minerKey).toBe(key);
    expect(table.groups[0].miners[0].gflopsPerJoule).toBeCloseTo((2 * 256 * 256 * 32) / 0.5 / 1e9, 9);
    expect(table.unmeasuredUnits).toBe(2);
    // The scripted miner declares vendor 'node', description 'scripted miner'.
    expect(table.groups[0].adapters).toEqual([{ adapter: 'node scripted miner', miners: 1, units: 1, gflopsPerJoule: table.groups[0].miners[0].gflopsPerJoule }]);
    const page = await (await fetch(new URL('api/rankings', stack.url), { headers: { accept: 'text/html' } })).text();
    expect(page).toContain('RAPL energy counter (rapl)');
    expect(page).toContain(key.slice(0, 16));
    expect(page).toContain('2 verified units carried no energy figure');
    miner.close();
  });
});
