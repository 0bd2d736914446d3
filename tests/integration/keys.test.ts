// Wallet keys a miner must really hold: a hello under a small-order key, which anyone can "sign" for, earns nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/protocol/receipt.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

/** The identity point (0x01 then 31 zero bytes): [k]A is the identity for every k, so R = identity, S = 0 verifies. */
const SMALL_ORDER_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
/** R the identity, S = 0: a "signature" of every message under SMALL_ORDER_KEY, for whoever sends it. */
const TRIVIAL_SIGNATURE = Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0));

describe('wallet keys', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses a hello under the small-order identity key with a trivial signature, and credits it nothing', async () => {
    const [m, n, k] = [16, 16, 16];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 71), randomMatrix(k * n, 72));
    // Two people sharing the one identity nobody holds: each is refused.
    for (const _ of [1, 2]) {
      const cheat = await ScriptedMiner.connect(stack.url);
      cheat.send({
        type: 'hello', minerKey: SMALL_ORDER_KEY, signature: TRIVIAL_SIGNATURE, kinds: ['gemm'], backend: 'wasm',
        adapter: { vendor: 'node', architecture: 'cpu', device: '', description: 'shared small-order key', isFallbackAdapter: true },
      });
      const reply = await cheat.next('welcome', 'error');
      expect(reply).toMatchObject({ type: 'error', code: 'bad-signature' });
      cheat.send({ type: 'work-request' });
      expect(await cheat.next('lease', 'no-work', 'error')).toMatchObject({ type: 'error', code: 'not-authenticated' });
      cheat.close();
    }
    expect(await stack.ledger.balance(toHex(SMALL_ORDER_KEY))).toBe(0n);

    // The job is still there for an honest miner, who is paid for it.
    const { miner, receipts } = await ScriptedMiner.mineJob(stack.url, job.id);
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');
    expect(receipts.length).toBe(1);
    expect(await stack.ledger.balance(toHex(miner.minerKey))).toBe(receipts[0].receipt.microCredits);
  });
});
