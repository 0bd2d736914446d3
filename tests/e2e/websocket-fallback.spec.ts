// A browser whose WebRTC is turned off mines over the coordinator's WebSocket instead, says so, and earns receipts
// that the coordinator verified and the wallet counts; a link cut while its result is on the way is made good on
// reconnection, the result credited once and the unit never computed twice.
import { expect, test, type Page } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, TEST_OPERATOR_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  // A grace far longer than any reconnection here: no machine is too slow for it, and its end is not under test.
  stack = await startStack({ serveApp: true, leaseGraceMs: 120_000 });
});
test.afterAll(async () => {
  await stack?.stop();
});

/** Opens the page as a browser with WebRTC disabled (a policy, an extension, a privacy setting) and starts mining. */
async function startWithoutWebRtc(page: Page): Promise<void> {
  page.on('pageerror', (err) => console.error('page error:', err.message));
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
}

/** A counter of the coordinator's /metrics, summed over its labels. */
async function metric(name: string): Promise<number> {
  const res = await fetch(new URL('metrics', stack.url), { headers: { authorization: `Bearer ${TEST_OPERATOR_KEY}` } });
  const lines = (await res.text()).split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
  return lines.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

test('a page without WebRTC falls back to the WebSocket, says so, and earns verified receipts', async ({ page }) => {
  await startWithoutWebRtc(page);

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

test('a link cut while a result is on its way: the page sends it again on reconnection and it is credited once', async ({ page }) => {
  const receiptsBefore = (await stack.ledger.totals()).units;
  const leasedBefore = await metric('ergon_units_leased_total');
  // Between the page and the coordinator: the first large frame from the page (a result; hellos and requests are
  // small) is dropped and the link cut, as a network that fails mid-transfer; later connections pass untouched.
  let cuts = 0;
  await page.routeWebSocket(/\/api\/miner-socket$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => ws.send(message));
    ws.onMessage((message) => {
      if (cuts === 0 && typeof message !== 'string' && message.byteLength > 16_384) {
        cuts++;
        ws.close({ code: 1006 });
        server.close({ code: 1000 });
        return;
      }
      server.send(message);
    });
  });
  await startWithoutWebRtc(page);
  const [m, n, k] = [256, 256, 128];
  const a = randomMatrix(m * k, 103);
  const b = randomMatrix(k * n, 104);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  expect(job.unitsTotal).toBe(1);
  await waitForJob(stack.url, job.id, 240_000);
  expect(cuts).toBe(1);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
  // The unit was leased once (held for this wallet while the link was down, not computed again) and credited once.
  expect((await metric('ergon_units_leased_total')) - leasedBefore).toBe(1);
  expect((await stack.ledger.totals()).units - receiptsBefore).toBe(1);
  await expect.poll(() => page.getByTestId('receipts').textContent(), { timeout: 60_000 }).toBe('1');
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});
