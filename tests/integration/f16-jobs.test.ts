// f16 work end to end: a requester asks for it, only miners that run f16 get its units, as halves; results are
// verified like f32 work, paid at the f16 rate, and receipted as gemm-f16.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MICRO_CREDITS_PER_GIGA_OP } from '../../src/work/gemm/gemm.ts';
import { verifyReceipt } from '../../src/protocol/receipt.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, fetchProduct, maxRelativeError, startStack, submitGemm, TEST_API_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('f16 jobs', () => {
  let stack: TestStack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack?.stop();
  });

  it('lease halves only to miners that run f16, and are verified, paid at the f16 rate and receipted as gemm-f16', async () => {
    const [m, n, k] = [300, 260, 64];
    const a = randomMatrix(m * k, 61);
    const b = randomMatrix(k * n, 62);
    const job = await submitGemm(stack.url, m, n, k, a, b, TEST_API_KEY, 'f16');
    expect(job).toMatchObject({ precision: 'f16', unitsTotal: 4 });

    // A miner that runs f32 only is told there is no work, though the f16 job waits.
    const f32Only = await ScriptedMiner.connect(stack.url);
    await f32Only.hello();
    f32Only.send({ type: 'work-request' });
    expect((await f32Only.next('lease', 'no-work')).type).toBe('no-work');
    f32Only.close();

    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello(undefined, ['f32', 'f16']);
    const lease = await miner.lease();
    const { a: leasedA, b: leasedB } = ScriptedMiner.operands(lease);
    const [rows, depth] = leasedA.shape;
    expect(leasedA.dtype).toBe('f16');
    expect(leasedB.dtype).toBe('f16');
    expect(leasedA.data.byteLength).toBe(2 * rows * depth); // half the bytes of f32

    // A result that is not f32, or not right, earns nothing.
    const tile = ScriptedMiner.compute(lease);
    miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output: { dtype: 'f16', shape: [rows, leasedB.shape[1]], data: new Uint8Array(tile.length * 2) } });
    expect(await miner.next('receipt', 'rejected')).toMatchObject({ type: 'rejected', code: 'shape-mismatch' });
    const again = await miner.lease();
    expect(again.unitId).toBe(lease.unitId);
    const wrong = ScriptedMiner.compute(again);
    wrong[5] += 1;
    expect(await miner.verdict(again, wrong)).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    expect((await stack.ledger.totals()).units).toBe(0);

    const honest = await ScriptedMiner.mineJob(stack.url, job.id, ['f32', 'f16']);
    expect(honest.receipts.length).toBe(4);
    for (const { receipt } of honest.receipts) {
      expect(receipt.kind).toBe('gemm-f16');
      expect(await verifyReceipt(receipt)).toBe(true);
      expect(receipt.microCredits).toBe((receipt.ops * MICRO_CREDITS_PER_GIGA_OP.f16) / 1_000_000_000n);
      const asF32 = (receipt.ops * MICRO_CREDITS_PER_GIGA_OP.f32) / 1_000_000_000n;
      expect(asF32 - receipt.microCredits * 2n).toBeGreaterThanOrEqual(0n); // half, give or take the rounding down
      expect(asF32 - receipt.microCredits * 2n).toBeLessThanOrEqual(1n);
    }
    const totals = await stack.ledger.totals();
    expect(totals.ops).toBe(2n * BigInt(m * n * k));
    expect(totals.microCredits).toBe(honest.receipts.reduce((s, r) => s + r.receipt.microCredits, 0n));

    // The product is that of the operands rounded to halves, summed in f32: not that of the f32 operands.
    const product = await fetchProduct(stack.url, job.id);
    const rounded = matmulF64(fromHalves(toHalves(a)), fromHalves(toHalves(b)), m, k, n);
    expect(maxRelativeError(product, rounded)).toBeLessThan(1e-5);
    expect(maxRelativeError(product, matmulF64(a, b, m, k, n))).toBeGreaterThan(1e-4);
    miner.close();
  });

  it('refuses an unknown precision and operands beyond f16\'s range, storing nothing', async () => {
    const body = new Uint8Array(4 * 2 * 2 * 2);
    const bogus = await api(stack.url, 'jobs/gemm?m=2&n=2&k=2&precision=bf16', { method: 'POST', body });
    expect(bogus.status).toBe(400);
    expect((await bogus.json()).error).toMatchObject({ code: 'bad-precision' });
    const big = new Float32Array([1, 2, 3, 70_000, 1, 1, 1, 1]);
    const overflow = await api(stack.url, 'jobs/gemm?m=2&n=2&k=2&precision=f16', { method: 'POST', body: new Uint8Array(big.buffer) });
    expect(overflow.status).toBe(400);
    expect((await overflow.json()).error).toMatchObject({ code: 'f16-overflow' });
    expect((await stack.ledger.jobs()).length).toBe(0);
  });
});
