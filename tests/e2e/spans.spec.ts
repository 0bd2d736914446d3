// A page whose leases are spans: the coordinator joins four tiles of a column into each lease (fixed here, whatever
// this machine's speed; tests/unit/coordinator/lease-sizing.test.ts covers how speed sets it), the page's worker
// stacks their A blocks and computes one product, and the wallet stores a receipt for every tile; the product is exact
// and no result is left kept once its last receipt is in.
import { expect, test } from '@playwright/test';
import { gemmKind, MICRO_CREDITS_PER_GIGA_OP, splitTiles, UNIT_TILE } from '../../src/work/gemm/gemm.ts';
import { microCreditsFor } from '../../src/work/kind.ts';
import { formatCredits } from '../../src/wallet/wallet.ts';
import { startMining } from '../helpers/mining-page.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';
import { keptUnitIds } from '../helpers/unsettled-results.ts';
import { storedReceipts } from '../helpers/wallet-receipts.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true, leaseSize: () => ({ units: 4, leases: 2 }) });
});
test.afterAll(async () => {
  await stack?.stop();
});

test('a page computes each span of four tiles as one product and is paid a receipt per tile', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await startMining(page, stack.url);
  const [m, n, k] = [4 * UNIT_TILE, 2 * UNIT_TILE, 96];
  const a = randomMatrix(m * k, 81);
  const b = randomMatrix(k * n, 82);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  expect(job.unitsTotal).toBe(8);
  await waitForJob(stack.url, job.id, 240_000);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);

  // Two leases computed, eight units verified and paid, each tile by its own receipt.
  await expect(page.getByTestId('units-done')).toHaveText('8');
  await expect(page.getByTestId('units-computed')).toHaveText('2');
  const tiles = splitTiles(job.id, m, n, k, UNIT_TILE);
  const micro = tiles.reduce((s, u) => s + microCreditsFor(gemmKind.ops(u), MICRO_CREDITS_PER_GIGA_OP.f32), 0n);
  await expect(page.getByTestId('credits')).toHaveText(formatCredits(micro));
  const receipts = await storedReceipts(page);
  expect(receipts.map((r) => r.unitId).sort()).toEqual(tiles.map((u) => u.id).sort());
  await expect.poll(() => keptUnitIds(page)).toEqual([]);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');
});
