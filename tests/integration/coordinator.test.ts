// The coordinator over real PeerJS and WebRTC, driven by miners scripted in Node.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { encode } from '@msgpack/msgpack';
import { verifyReceipt } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, fetchProduct, holdLeaseDeadlines, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';


describe('coordinator with scripted miners', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('computes a job with honest miners, pays each verified unit once and signs receipts', async () => {
    const [m, n, k] = [300, 270, 130];
    const a = randomMatrix(m * k, 1);
    const b = randomMatrix(k * n, 2);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    expect(job.unitsTotal).toBe(4);

    const { miner, receipts } = await ScriptedMiner.mineJob(stack.url, job.id);

    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    expect(receipts).toHaveLength(4);
    for (const { receipt } of receipts) {
      expect(await verifyReceipt(receipt)).toBe(true);
      expect(receipt.minerKey).toEqual(miner.minerKey);
    }
    const paid = receipts.reduce((s, r) => s + r.receipt.ops, 0n);
    expect(paid).toBe(2n * BigInt(m * n * k));
    const totals = await stack.ledger.totals();
    expect(totals.ops).toBe(paid);
  });

  it('computes a 1x4096x4096 product: K and N at 4096, 4 MiB operand slices per lease', async () => {
    const [m, n, k] = [1, 4096, 4096];
    const a = randomMatrix(m * k, 7);
    const b = randomMatrix(k * n, 8);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    expect(job.unitsTotal).toBe(16);
    expect((await ScriptedMiner.mineJob(stack.url, job.id)).receipts).toHaveLength(16);
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    expect((await api(stack.url, `jobs/${job.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(stack.url, `jobs/${job.id}/result`)).status).toBe(404);
  });

  it('answers malformed, unknown and wrong-version messages with errors and keeps serving', async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    miner.sendBytes(new Uint8Array([1, 2, 3]));
    miner.sendBytes(encode({ type: 'gimme-credits', v: PROTOCOL_VERSION }));
    miner.sendBytes(encode({ type: 'work-request', v: 0 }));
    miner.send({ type: 'work-request' });
    const errors = [await miner.next('error'), await miner.next('error'), await miner.next('error'), await miner.next('error')];
    expect(errors.map((e) => e.code)).toEqual(['malformed-message', 'malformed-message', 'unsupported-version', 'not-authenticated']);
    expect(errors[1].message).toMatch(/type/);
    await miner.hello();
    miner.send({ type: 'work-request' });
    expect((await miner.next('no-work', 'lease')).type).toBe('no-work');
    miner.close();
  });

  it('refuses a hello signed by another key', async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    const { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign } = await import('../../src/protocol/receipt.ts');
    const mine = await generateSigningKeys();
    const victim = await generateSigningKeys();
    miner.send({
      type: 'hello', minerKey: await exportPublicKey(victim.publicKey), kinds: ['gemm'], backend: 'webgpu',
      signature: await sign(mine.privateKey, helloChallengeBytes(miner.challenge.nonce, miner.challenge.coordinatorKey)),
      adapter: { vendor: 'x', architecture: 'x', device: '', description: '', isFallbackAdapter: false },
    });
    expect((await miner.next('error')).code).toBe('bad-signature');
    miner.close();
  });

  it('rejects wrong results without credit and re-leases the unit to an honest miner', async () => {
    const [m, n, k] = [64, 64, 64];
    const a = randomMatrix(m * k, 3);
    const b = randomMatrix(k * n, 4);
    const before = await stack.ledger.totals();
    const job = await submitGemm(stack.url, m, n, k, a, b);

    const cheat = await ScriptedMiner.connect(stack.url);
    await cheat.hello();
    const lease = await cheat.lease();
    const right = ScriptedMiner.compute(lease);

    cheat.sendResult(lease, right.slice(0, 63 * 64), [63, 64]);
    const shape = await cheat.next('rejected');
    expect(shape.code).toBe('shape-mismatch');
    expect(shape.message).toMatch(/63x64.*64x64/);

    const lease2 = await cheat.lease();
    expect(lease2.unitId).toBe(lease.unitId);
    const wrong = right.slice();
    wrong[17 * 64 + 5] += 0.5;
    cheat.sendResult(lease2, wrong);
    expect((await cheat.next('rejected')).code).toBe('verification-failed');

    const lease3 = await cheat.lease();
    const nan = right.slice();
    nan[0] = NaN;
    cheat.sendResult(lease3, nan);
    expect((await cheat.next('rejected')).code).toBe('non-finite');

    // The third offence bans a fresh wallet key: the session is told why and closed.
    expect((await cheat.next('error')).code).toBe('banned');
    expect(await stack.ledger.balance(Buffer.from(cheat.minerKey).toString('hex'))).toBe(0n);
    expect((await stack.ledger.totals()).units).toBe(before.units);
    cheat.close();

    expect((await ScriptedMiner.mineJob(stack.url, job.id)).receipts).toHaveLength(1);
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
  });

  it('re-leases the tile of a miner that goes silent mid-lease', async () => {
    const [m, n, k] = [32, 32, 32];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 5), randomMatrix(k * n, 6));
    // The frozen miner's lease never reaches its deadline: the unit comes back only because its miner fell silent.
    onTestFinished(holdLeaseDeadlines(stack));
    const frozen = await ScriptedMiner.connect(stack.url);
    await frozen.hello();
    const lease = await frozen.lease();
    frozen.goSilent();

    const honest = await ScriptedMiner.connect(stack.url);
    await honest.hello();
    const again = await honest.lease();
    expect(again.unitId).toBe(lease.unitId);
    expect(await stack.queue.endedLease(lease.leaseId)).toMatchObject({ unitId: lease.unitId, end: 'released' });
    honest.sendResult(again, ScriptedMiner.compute(again));
    await honest.next('receipt');
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');
    honest.close();
    frozen.close();
  });
});
