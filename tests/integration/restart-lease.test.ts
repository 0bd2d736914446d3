// A result kept across a coordinator restart (by a page that reconnected, or reloaded and pressed Start) for a unit
// not yet credited: the restarted coordinator's queue forgot the lease, yet knows the id for its own, so the page is
// told its lease ended without blame, and earns the unit once it is leased to it again.
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKeys, toHex } from '../../src/protocol/receipt.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startRestartableStack, type RestartableStack } from '../helpers/restartable-stack.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { submitGemm, waitForJob } from '../helpers/stack.ts';

describe('a result for a lease given out before the coordinator restarted', () => {
  let stack: RestartableStack | undefined;
  afterAll(async () => {
    await stack?.stop();
  });

  it('is refused without blame, and the unit, leased again, is credited once', async () => {
    stack = await startRestartableStack();
    const job = await submitGemm(stack.url, 256, 256, 64, randomMatrix(256 * 64, 121), randomMatrix(64 * 256, 122));
    expect(job.unitsTotal).toBe(1);
    const keys = await generateSigningKeys();
    const first = await ScriptedMiner.connect(stack.url, 5, 'websocket');
    await first.hello(keys);
    const lease = await first.lease();
    const product = ScriptedMiner.compute(lease);
    first.close();
    await stack.halt();
    await stack.start();
    const coordinator = stack.current();
    if (!coordinator) throw new Error('the coordinator did not start again');

    const back = await ScriptedMiner.connect(stack.url, 5, 'websocket');
    await back.hello(keys);
    expect(await back.verdict(lease, product)).toMatchObject({ type: 'rejected', code: 'lease-expired' });
    expect(await coordinator.ledger.reputation(toHex(back.minerKey))).toMatchObject({ rejected: 0 });

    const again = await back.lease();
    expect(again.unitId).toBe(lease.unitId);
    expect((await back.verdict(again, ScriptedMiner.compute(again))).type).toBe('receipt');
    expect((await waitForJob(stack.url, job.id)).unitsDone).toBe(1);
    expect((await coordinator.ledger.totals()).units).toBe(1);
    expect(await coordinator.ledger.reputation(toHex(back.minerKey))).toMatchObject({ accepted: 1, rejected: 0 });
    back.close();
  });
});
