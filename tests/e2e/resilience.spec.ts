// Resilience: a destroyed WebGPU device is replaced and mining goes on without a reload, a coordinator that
// restarts (same port, same data folder) is found again by the miner, which resumes earning, and a browser
// without WebGPU is told why and can mine on the CPU instead.
import { chromium, expect, test, type Page } from '@playwright/test';
import { chromiumPath, GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { startRestartableStack, type RestartableStack } from '../helpers/restartable-stack.ts';
import { fetchProduct, maxRelativeError, submitGemm, waitForJob } from '../helpers/stack.ts';
import { startMining as startMiningAt } from '../helpers/mining-page.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: RestartableStack;
test.beforeAll(async () => {
  stack = await startRestartableStack();
});
test.afterAll(async () => {
  await stack?.stop();
});

async function computed(page: Page): Promise<number> {
  return Number((await page.getByTestId('units-computed').textContent()) ?? '0');
}

async function startMining(page: Page): Promise<void> {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await startMiningAt(page, stack.url);
  // Marks this document: if anything reloaded the page, the mark is gone.
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
}

test('after device.destroy() the worker makes a new device and mining resumes without a reload', async ({ page }) => {
  await startMining(page);
  const [m, n, k] = [256 * 10, 256, 512];
  const first = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 61), randomMatrix(k * n, 62));
  await expect.poll(() => computed(page), { timeout: 180_000 }).toBeGreaterThanOrEqual(2);

  await page.getByText('Diagnostics').click();
  await page.getByRole('button', { name: 'Simulate a GPU device loss' }).click();
  await expect(page.getByTestId('device-losses')).toHaveText('1');
  // Work for the new device, even if the first job's last units finished before the loss (a unit takes ~30 ms here).
  const a = randomMatrix(512 * 384, 63);
  const b = randomMatrix(384 * 512, 64);
  const second = await submitGemm(stack.url, 512, 512, 384, a, b);
  await expect(page.getByTestId('device-recoveries')).toHaveText('1', { timeout: 120_000 });
  await page.screenshot({ path: 'tests/screenshots/resilience-device-recovered.png', fullPage: true });

  expect((await waitForJob(stack.url, first.id, 240_000)).unitsDone).toBe(10);
  expect((await waitForJob(stack.url, second.id, 240_000)).unitsDone).toBe(second.unitsTotal);
  expect(maxRelativeError(await fetchProduct(stack.url, second.id), matmulF64(a, b, 512, 384, 512))).toBeLessThan(1e-5);
  await expect(page.getByTestId('units-rejected')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});

test('when the coordinator restarts the miner reconnects with backoff and earns again', async ({ page }) => {
  await startMining(page);
  const first = await submitGemm(stack.url, 256, 256, 256, randomMatrix(256 * 256, 71), randomMatrix(256 * 256, 72));
  await waitForJob(stack.url, first.id, 240_000);
  await expect(page.getByTestId('receipts')).not.toHaveText('0');
  const receiptsBefore = Number(await page.getByTestId('receipts').textContent());

  await stack.halt();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'reconnecting', { timeout: 60_000 });
  await expect(page.getByTestId('detail')).toContainText('retrying in');
  await page.screenshot({ path: 'tests/screenshots/resilience-reconnecting.png', fullPage: true });
  await page.waitForTimeout(3_000);
  await stack.start();

  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
  const second = await submitGemm(stack.url, 256, 256, 256, randomMatrix(256 * 256, 73), randomMatrix(256 * 256, 74));
  await waitForJob(stack.url, second.id, 240_000);
  await expect.poll(async () => Number(await page.getByTestId('receipts').textContent()), { timeout: 60_000 }).toBeGreaterThan(receiptsBefore);
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});

test('without WebGPU the page says why, keeps the wallet, and mines verified work on the CPU when asked', async () => {
  // A real Chromium without --enable-unsafe-webgpu: here its WebGPU finds no adapter (shared/NOTES-webgpu.md §1).
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--disable-quic'] });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (err) => console.error('page error:', err.message));
    await page.goto(stack.url);
    await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
    await page.getByRole('button', { name: 'Start' }).click();
    await expect(page.getByTestId('no-webgpu')).toContainText('This browser cannot lend its GPU', { timeout: 60_000 });
    await expect(page.getByTestId('no-webgpu')).toContainText('no adapter');
    await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'failed');
    await expect(page.getByTestId('credits')).toBeVisible();
    await page.screenshot({ path: 'tests/screenshots/resilience-no-webgpu.png', fullPage: true });

    // The fallback is offered, never chosen for the person: only their click starts the CPU.
    await page.getByRole('button', { name: 'Mine on the CPU instead (WebAssembly)' }).click();
    await expect(page.getByTestId('adapter')).toHaveText('CPU fallback (WebAssembly)', { timeout: 60_000 });
    await expect(page.getByTestId('cpu-fallback-running')).toBeVisible();
    const [m, n, k] = [300, 257, 131];
    const a = randomMatrix(m * k, 81);
    const b = randomMatrix(k * n, 82);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    await waitForJob(stack.url, job.id, 240_000);
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    await expect.poll(async () => Number(await page.getByTestId('receipts').textContent()), { timeout: 60_000 }).toBe(job.unitsTotal);
    await expect(page.getByTestId('units-rejected')).toHaveCount(0);
    await page.screenshot({ path: 'tests/screenshots/resilience-cpu-fallback.png', fullPage: true });
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
  } finally {
    await browser.close();
  }
});
