// A result finished while the link was down is delivered on a new connection and credited exactly once: the dropped
// session's lease is held for the same wallet key, a second delivery gets the same receipt, and no other key can claim it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys, toHex } from '../../src/protocol/receipt.ts';
import type { TransportChoice } from '../../src/miner/coordinator-link.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, type TestStack } from '../helpers/stack.ts';

describe('a result finished while disconnected', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // A grace far longer than any reconnection here, so that no machine is too slow for it; its end is not under test.
    stack = await startStack({ leaseGraceMs: 120_000 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  for (const transport of ['webrtc', 'websocket'] as const satisfies readonly TransportChoice[]) {
    it(`is credited once after reconnecting (${transport}); a second delivery gets its receipt again and another key's claim is refused`, async () => {
      const before = await stack.ledger.totals();
      const job = await submitGemm(stack.url, 256, 256, 64, randomMatrix(256 * 64, 7), randomMatrix(64 * 256, 8));
      const keys = await generateSigningKeys();
      const first = await ScriptedMiner.connect(stack.url, 5, transport);
      await first.hello(keys);
      const lease = await first.lease();
      // The link dies mid-unit; the unit is finished offline.
      first.close();
      const product = ScriptedMiner.compute(lease);
      await waitUntil(() => [...stack.sessions.values()].every((s) => s.minerKey !== toHex(first.minerKey)));

      // Someone else with the lease's ids but another wallet key gets nothing.
      const thief = await ScriptedMiner.connect(stack.url, 5, transport);
      await thief.hello();
      // While the lease is held for its key, its unit goes to nobody else.
      expect(job.unitsTotal).toBe(1);
      thief.send({ type: 'work-request' });
      expect((await thief.next('lease', 'no-work')).type).toBe('no-work');
      const stolen = await thief.verdict(lease, product);
      expect(stolen.type === 'rejected' && stolen.code).toBe('unknown-lease');
      thief.close();

      const back = await ScriptedMiner.connect(stack.url, 5, transport);
      await back.hello(keys);
      const verdict = await back.verdict(lease, product);
      if (verdict.type !== 'receipt') throw new Error(`expected a receipt, got ${verdict.code}: ${verdict.message}`);
      expect(verdict.receipt.unitId).toBe(lease.unitId);
      // Its receipt lost too (the page cannot know): sent again, the same receipt, and no second credit.
      const replay = await back.verdict(lease, product);
      expect(replay).toEqual(verdict);

      const after = await stack.ledger.totals();
      expect(after.units - before.units).toBe(1);
      expect(await stack.ledger.balance(toHex(back.minerKey))).toBe(verdict.receipt.microCredits);
      expect(await stack.ledger.balance(toHex(thief.minerKey))).toBe(0n);
      // The second delivery is no offence: an honest page resends what it got no verdict for.
      expect(await stack.ledger.reputation(toHex(back.minerKey))).toMatchObject({ accepted: 1, rejected: 0 });
      back.close();
    });
  }
});

describe('a result that comes back after its grace', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ leaseGraceMs: 200 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('finds its unit re-queued and done by another miner, and is told its lease ended, without blame or credit', async () => {
    const job = await submitGemm(stack.url, 256, 256, 64, randomMatrix(256 * 64, 9), randomMatrix(64 * 256, 10));
    expect(job.unitsTotal).toBe(1);
    const keys = await generateSigningKeys();
    const first = await ScriptedMiner.connect(stack.url, 5, 'websocket');
    await first.hello(keys);
    const lease = await first.lease();
    first.close();

    // After the grace the unit goes back in the queue: another miner gets it (lease() asks until it does).
    const other = await ScriptedMiner.connect(stack.url, 5, 'websocket');
    await other.hello();
    const again = await other.lease();
    expect(again.unitId).toBe(lease.unitId);
    expect((await other.verdict(again, ScriptedMiner.compute(again))).type).toBe('receipt');

    const late = await ScriptedMiner.connect(stack.url, 5, 'websocket');
    await late.hello(keys);
    const verdict = await late.verdict(lease, ScriptedMiner.compute(lease));
    expect(verdict.type === 'rejected' && verdict.code).toBe('lease-expired');
    expect(await stack.ledger.balance(toHex(late.minerKey))).toBe(0n);
    expect(await stack.ledger.reputation(toHex(late.minerKey))).toMatchObject({ rejected: 0 });
    expect((await stack.ledger.totals()).units).toBe(1);
    other.close();
    late.close();
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!condition()) throw new Error('condition not met within 30 s');
}
