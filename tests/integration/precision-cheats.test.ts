// A miner that computes an f32 job in a cheaper precision, end to end over the real protocol: every unit is
// rejected without credit or receipt, and an honest miner then gets the job done and paid at the f32 rate.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex, verifyReceipt } from '../../src/protocol/receipt.ts';
import { MICRO_CREDITS_PER_GIGA_OP } from '../../src/work/gemm/gemm.ts';
import { fromHalves, toHalves } from '../../src/work/gemm/halves.ts';
import { matmulF32, matmulF64, maxRelativeError, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';
import { operands as distributed, product, roundToBfloat16 } from '../unit/work/products.ts';

describe('precision cheats', () => {
  let stack: TestStack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack?.stop();
  });

  it('rejects an f32 job computed from f16 or bf16 operands, pays nothing for it, and pays the honest miner at the f32 rate', async () => {
    // The case: 512x512x1024, whose 256x1024x256 units f16 operands used to pass one by one.
    const [m, n, k] = [512, 512, 1024];
    const a = randomMatrix(m * k, 71);
    const b = randomMatrix(k * n, 72);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    expect(job).toMatchObject({ precision: 'f32', unitsTotal: 4 });

    const cheat = await ScriptedMiner.connect(stack.url);
    await cheat.hello();
    const roundings: [string, (values: Float32Array) => Float32Array][] = [
      ['f16', (values) => fromHalves(toHalves(values))],
      ['bf16', (values) => values.map(roundToBfloat16)],
    ];
    for (const [name, round] of roundings) {
      const lease = await cheat.lease();
      const operands = ScriptedMiner.operands(lease);
      const [rows, depth] = operands.a.shape;
      const cols = operands.b.shape[1];
      const cheap = matmulF32(round(ScriptedMiner.values(operands.a)), round(ScriptedMiner.values(operands.b)), rows, depth, cols);
      // Close to the f32 product, as a requester would see it: a few parts in ten thousand.
      const exact = matmulF64(ScriptedMiner.values(operands.a), ScriptedMiner.values(operands.b), rows, depth, cols);
      expect(maxRelativeError(cheap, exact), name).toBeLessThan(name === 'f16' ? 1e-3 : 1e-2);
      expect(await cheat.verdict(lease, cheap), name).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    }
    expect(await stack.ledger.balance(toHex(cheat.minerKey))).toBe(0n);
    expect(await stack.ledger.reputation(toHex(cheat.minerKey))).toMatchObject({ rejected: 2 });
    expect((await stack.ledger.totals()).units).toBe(0);
    cheat.close();

    const honest = await ScriptedMiner.mineJob(stack.url, job.id);
    expect(honest.receipts.length).toBe(4);
    for (const { receipt } of honest.receipts) {
      expect(receipt.kind).toBe('gemm');
      expect(await verifyReceipt(receipt)).toBe(true);
      expect(receipt.microCredits).toBe((receipt.ops * MICRO_CREDITS_PER_GIGA_OP.f32) / 1_000_000_000n);
    }
    const totals = await stack.ledger.totals();
    expect(totals.ops).toBe(2n * BigInt(m * n * k));
    expect(totals.microCredits).toBe(honest.receipts.reduce((sum, r) => sum + r.receipt.microCredits, 0n));
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
  });

  it('rejects thin f32 jobs (1 and 8 rows) computed from f16 operands, where a few row residuals could not tell them apart', async () => {
    // ReLU-like operands at K = 16384: honest f32 error is within a few times the operands' rounding, and a job of
    // 1 or 8 rows gives the check 2 or 16 row residuals. Its elements recomputed exactly tell the two apart.
    const [n, k] = [64, 16384];
    const jobs = new Map<number, { id: string; a: Float32Array; b: Float32Array }>();
    for (const m of [1, 8]) {
      const a = distributed('relu', m * k, 80 + m);
      const b = distributed('relu', k * n, 90 + m);
      const job = await submitGemm(stack.url, m, n, k, a, b);
      expect(job).toMatchObject({ precision: 'f32', unitsTotal: 1 });
      jobs.set(m, { id: job.id, a, b });
    }

    const cheat = await ScriptedMiner.connect(stack.url);
    await cheat.hello();
    for (let unit = 0; unit < jobs.size; unit++) {
      const lease = await cheat.lease();
      const { a, b } = ScriptedMiner.operands(lease);
      const [rows, depth] = a.shape;
      const cols = b.shape[1];
      const cheap = product(ScriptedMiner.values(a), ScriptedMiner.values(b), rows, depth, cols, 'f16-operands');
      expect(await cheat.verdict(lease, cheap), `${rows} rows`).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    }
    expect(await stack.ledger.balance(toHex(cheat.minerKey))).toBe(0n);
    cheat.close();

    // Units go oldest job first: mining until the newer job is done mines both.
    const honest = await ScriptedMiner.mineJob(stack.url, [...jobs.values()][jobs.size - 1].id);
    expect(honest.receipts.map((r) => r.receipt.kind)).toEqual(['gemm', 'gemm']);
    for (const [m, { id, a, b }] of jobs) {
      expect((await waitForJob(stack.url, id)).status).toBe('done');
      expect(maxRelativeError(await fetchProduct(stack.url, id), matmulF64(a, b, m, k, n)), `${m} rows`).toBeLessThan(1e-4);
    }
  });
});
