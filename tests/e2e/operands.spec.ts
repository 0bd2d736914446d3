// Operands by hash in real Chromium: a page mining units that share B downloads B once, keeps what it fetched within
// the budget it shows, and clears it; with keeping off it downloads both operands for every unit.
import { expect, test } from '@playwright/test';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';
import { startMining } from '../helpers/mining-page.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});


const servedTotal = () => stack.operandBlobs.bytesServedTotal;

// 1024x256x256: four units down one column of C, each with its own A row block (256 KiB) and the same B (256 KiB).
const [m, n, k] = [1024, 256, 256];
const BLOCK_BYTES = 256 * 256 * 4;

test('a page mining four units that share B downloads B once, earns, and shows and clears what it keeps', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await startMining(page, stack.url);
  const before = servedTotal();
  const a = randomMatrix(m * k, 31);
  const b = randomMatrix(k * n, 32);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  await waitForJob(stack.url, job.id, 240_000);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
  await expect(page.getByTestId('units-done')).toHaveText('4');
  // Four A blocks and one B block crossed the network: the second to fourth units downloaded no B bytes.
  expect(servedTotal() - before).toBe(5 * BLOCK_BYTES);

  // What was fetched is kept across visits (Cache Storage), shown beside the budget, and cleared on request.
  await expect(page.getByTestId('operand-cache-used')).toHaveText('1.3 MiB');
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');
  await page.reload();
  await expect(page.getByTestId('operand-cache-used')).toHaveText('1.3 MiB');
  await page.getByRole('button', { name: 'Clear kept operands' }).click();
  await expect(page.getByTestId('operand-cache-used')).toHaveText('0.0 MiB');
});

test('with keeping off, every unit downloads both of its operands', async ({ page }) => {
  await page.goto(stack.url);
  await page.getByLabel('Keep at most (MiB)').fill('0');
  await page.getByLabel('Keep at most (MiB)').blur();
  await startMining(page, stack.url);
  const before = servedTotal();
  const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 33), randomMatrix(k * n, 34));
  await waitForJob(stack.url, job.id, 240_000);
  expect(servedTotal() - before).toBe(8 * BLOCK_BYTES);
  await expect(page.getByTestId('operand-cache-used')).toHaveText('0.0 MiB');
});
