// A browser whose WebRTC is turned off mines over the coordinator's WebSocket instead, says so, and earns receipts
// that the coordinator verified and the wallet counts.
import { expect, test } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

test('a page without WebRTC falls back to the WebSocket, says so, and earns verified receipts', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  // As a browser with WebRTC disabled (a policy, an extension, a privacy setting): no peer connection to make.
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel', 'RTCSessionDescription', 'RTCIceCandidate']) delete w[name];
  });
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
  await expect(page.getByTestId('transport')).toHaveAttribute('data-transport', 'websocket');
  await expect(page.getByTestId('transport')).toContainText('WebSocket');

  const [m, n, k] = [512, 256, 256];
  const a = randomMatrix(m * k, 101);
  const b = randomMatrix(k * n, 102);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  await waitForJob(stack.url, job.id, 240_000);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);

  // Every unit was verified and credited to this page's wallet key, and the page keeps each receipt.
  const walletKeyShown = ((await page.getByTestId('wallet-key').textContent()) ?? '').replace('…', '');
  const totals = await stack.ledger.totals();
  expect(totals.units).toBe(job.unitsTotal);
  await expect.poll(() => page.getByTestId('receipts').textContent(), { timeout: 60_000 }).toBe(String(job.unitsTotal));
  const minerKeys = [...stack.sessions.values()].map((s) => s.minerKey).filter((key): key is string => key !== null);
  expect(minerKeys).toHaveLength(1);
  expect(walletKeyShown).toHaveLength(16);
  expect(minerKeys[0].startsWith(walletKeyShown)).toBe(true);
  expect(await stack.ledger.balance(minerKeys[0])).toBe(totals.microCredits);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});
