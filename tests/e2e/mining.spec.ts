// What a visitor and a requester do: mine in real Chromium with WebGPU, submit a GEMM over HTTP, get it back verified.
import { expect, test, type Page } from '@playwright/test';
import { gemmKind, MICRO_CREDITS_PER_GIGA_OP, splitTiles, UNIT_TILE } from '../../src/work/gemm/gemm.ts';
import { microCreditsFor } from '../../src/work/kind.ts';
import { formatCredits } from '../../src/wallet/wallet.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';
import { startMining as startMiningAt } from '../helpers/mining-page.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

async function startMining(page: Page): Promise<void> {
  await startMiningAt(page, stack.url);
  await expect(page.getByText('multiply matrices')).toBeVisible();
  // A browser with WebRTC mines over the data channel, not the WebSocket fallback (websocket-fallback.spec.ts).
  await expect(page.getByTestId('transport')).toHaveAttribute('data-transport', 'webrtc');
}

async function storedReceipts(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('ergon-wallet');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const count = open.result.transaction('receipts').objectStore('receipts').count();
          count.onsuccess = () => resolve(count.result);
          count.onerror = () => reject(count.error);
        };
      }),
  );
}

test('a visitor mines a requester\'s 1000x700x900 GEMM on WebGPU and keeps the receipts across a reload', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await startMining(page);
  await expect(page.getByTestId('adapter')).not.toBeEmpty();

  const [m, n, k] = [1000, 700, 900];
  const a = randomMatrix(m * k, 11);
  const b = randomMatrix(k * n, 12);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  expect(job.unitsTotal).toBe(12);
  await waitForJob(stack.url, job.id, 240_000);

  const product = await fetchProduct(stack.url, job.id);
  expect(product.length).toBe(m * n);
  expect(maxRelativeError(product, matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);

  // One credit per GFLOP, paid per unit in whole micro-credits: 1.26 credits over 12 receipts, less under one
  // micro-credit per unit where a unit's share does not come out whole.
  const micro = splitTiles(job.id, m, n, k, UNIT_TILE).reduce((s, u) => s + microCreditsFor(gemmKind.ops(u), MICRO_CREDITS_PER_GIGA_OP.f32), 0n);
  expect(micro).toBeLessThanOrEqual(1_260_000n);
  expect(micro).toBeGreaterThan(1_260_000n - 12n);
  const earned = formatCredits(micro);
  await expect(page.getByTestId('units-done')).toHaveText('12');
  await expect(page.getByTestId('credits')).toHaveText(earned);
  expect(Number(await page.getByTestId('gflops').textContent())).toBeGreaterThan(0);
  expect(await storedReceipts(page)).toBe(12);
  await page.screenshot({ path: 'tests/screenshots/mining.png', fullPage: true });

  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');
  await page.reload();
  await expect(page.getByTestId('credits')).toHaveText(earned);
  await expect(page.getByTestId('receipts')).toHaveText('12');
  expect(await storedReceipts(page)).toBe(12);
});

test('a second miner in another browser profile shares the work', async ({ browser }) => {
  const pages = await Promise.all([0, 1].map(async () => (await browser.newContext()).newPage()));
  await Promise.all(pages.map(startMining));
  const keys = await Promise.all(pages.map((p) => p.getByTestId('wallet-key').textContent()));
  expect(keys[0]).not.toBe(keys[1]);

  // 32 tiles, 6.4 GFLOP: more than one page computes in the half second the other may wait before it asks again.
  const [m, n, k] = [2048, 1024, 1536];
  const a = randomMatrix(m * k, 21);
  const b = randomMatrix(k * n, 22);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  const done = await waitForJob(stack.url, job.id, 240_000);
  expect(done.miners).toBe(2);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);

  // The job is done once its last unit is credited; that unit's receipt is signed, sent and stored just after.
  await expect.poll(async () => (await Promise.all(pages.map(storedReceipts))).reduce((sum, count) => sum + count, 0)).toBe(job.unitsTotal);
  const receipts = await Promise.all(pages.map(storedReceipts));
  expect(receipts[0]).toBeGreaterThan(0);
  expect(receipts[1]).toBeGreaterThan(0);
});
