// A miner's page shows credits pending an audit apart from its balance: a result held pending appears as pending,
// not in the balance; when the coordinator's audit settles it, its receipt is counted and the pending line empties,
// whether the page was connected then or comes back later.
import { expect, test, type Page } from '@playwright/test';
import { writeNpz } from '../../src/work/onnx/npz.ts';
import { UNIT_TARGET_OPS } from '../../src/work/onnx/onnx.ts';
import { mlpModel, seeded } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { generateSigningKeys, toHex } from '../../src/protocol/receipt.ts';
import { LinkClosedError } from '../../src/miner/coordinator-link.ts';
import { api, holdLeaseDeadlines, startStack, waitForJob, type TestStack } from '../helpers/stack.ts';
import { pressStart as startMining } from '../helpers/mining-page.ts';

process.env.ERGON_LOG ??= 'silent';

// 8 -> 4096 -> 8: heavy per sample, light to send, so that a 4 GFLOP unit is under 1 MB of inputs.
const [IN, HIDDEN, OUT] = [8, 4096, 8];

let stack: TestStack;
test.beforeAll(async () => {
  // Every draw is the largest: only a rate of 1 (a miner with fewer than two passed audits) audits.
  // A grace far longer than the test: the other miner's lease waits for its wallet key if its link drops.
  stack = await startStack({ serveApp: true, random: (into) => into.fill(255), leaseGraceMs: 600_000 });
});
test.afterAll(async () => {
  await stack?.stop();
});


async function submit(sha: string, batch: number, seed: number): Promise<{ id: string; opsPerSample: string }> {
  const body = writeNpz(new Map([['x', { shape: [batch, IN], data: Float32Array.from(seeded(batch * IN, seed)) }]]));
  const res = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; opsPerSample: string };
}

/**
 * A page whose wallet holds one credit pending an audit, in a two-unit job whose other unit another miner holds:
 * while that miner keeps it, the job cannot finish and nothing audits the page's held unit.
 */
async function pageWithPendingCredit(page: Page) {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  const posted = await api(stack.url, 'models', { method: 'POST', body: mlpModel(IN, HIDDEN, OUT, 7) });
  const sha = ((await posted.json()) as { id: string }).id;

  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await startMining(page);
  // A new key is audited on every unit: its first two results are paid at once.
  const first = await submit(sha, 16, 1);
  await waitForJob(stack.url, first.id, 240_000);
  await waitForJob(stack.url, (await submit(sha, 16, 2)).id, 240_000);
  await expect(page.getByTestId('receipts')).toHaveText('2');
  await expect(page.getByTestId('pending-units')).toHaveText('0');
  const settledCredits = (await page.getByTestId('credits').textContent()) ?? '';
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');

  // A two-unit job: another miner takes the first unit and keeps it a while; the page gets the second, one sample.
  const samplesPerUnit = Number(UNIT_TARGET_OPS / BigInt(first.opsPerSample));
  const job = await submit(sha, samplesPerUnit + 1, 3);
  const runner = new OnnxRunnerForTests(stack.url);
  const otherKeys = await generateSigningKeys();
  const other = await ScriptedMiner.connect(stack.url);
  await other.hello(otherKeys, undefined, ['onnx']);
  const lease = await other.lease();
  // The other miner keeps its unit while the page starts and computes, however long that takes here.
  const releaseDeadlines = holdLeaseDeadlines(stack);
  expect(lease.unitId).toBe(`${job.id}.0`);
  await startMining(page);
  // Two audits passed: the rate is 2/3 and this draw does not audit; the credit is pending, not in the balance.
  await expect(page.getByTestId('pending-units')).toHaveText('1', { timeout: 120_000 });
  await expect(page.getByTestId('pending-credits')).not.toHaveText('0.000000');
  await expect(page.getByTestId('receipts')).toHaveText('2');
  await expect(page.getByTestId('credits')).toHaveText(settledCredits);

  /**
   * The other miner returns its unit: the job has only the page's held unit left, which the coordinator audits; the
   * audit passes. Should its link drop meanwhile, the miner comes back with its wallet key and sends the result
   * again, as a page does.
   */
  let miner = other;
  const returnOtherUnit = async () => {
    const verdict = await runner.run(miner, lease).catch(async (err: unknown) => {
      if (!(err instanceof LinkClosedError)) throw err;
      miner.close();
      miner = await ScriptedMiner.connect(stack.url);
      await miner.hello(otherKeys, undefined, ['onnx']);
      return runner.run(miner, lease);
    });
    expect(verdict.type).toBe('receipt');
    await waitForJob(stack.url, job.id, 120_000);
  };
  const done = () => {
    releaseDeadlines();
    miner.close();
  };
  /** The coordinator's sessions of a wallet key other than the other miner's: the page's. */
  const otherKey = toHex(other.minerKey);
  const pageSessions = () => [...stack.sessions.values()].filter((s) => s.minerKey !== null && s.minerKey !== otherKey).length;
  return { settledCredits, returnOtherUnit, done, pageSessions };
}

test('the page shows a result\'s credit as pending until an audit settles it, then counts its receipt', async ({ page }) => {
  const pending = await pageWithPendingCredit(page);
  try {
    // The page mines on while the audit runs: its receipt comes over the live link.
    await pending.returnOtherUnit();
    await expect(page.getByTestId('receipts')).toHaveText('3');
    await expect(page.getByTestId('pending-units')).toHaveText('0');
    await expect(page.getByTestId('credits')).not.toHaveText(pending.settledCredits);
  } finally {
    pending.done();
  }
});

test('a credit an audit settled while the page was stopped is counted when it starts again', async ({ page }) => {
  const pending = await pageWithPendingCredit(page);
  try {
    // Stopped: the page's link is closed when the audit settles its credit, so the receipt has no one to go to.
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');
    await expect.poll(pending.pageSessions).toBe(0);
    await pending.returnOtherUnit();
    await expect(page.getByTestId('pending-units')).toHaveText('1');
    await expect(page.getByTestId('receipts')).toHaveText('2');
    // Started again, it asks after its pending credit and gets the receipt.
    await startMining(page);
    await expect(page.getByTestId('receipts')).toHaveText('3');
    await expect(page.getByTestId('pending-units')).toHaveText('0');
    await expect(page.getByTestId('credits')).not.toHaveText(pending.settledCredits);
  } finally {
    pending.done();
  }
});
