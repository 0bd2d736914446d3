// What an operator does: opens the operator page with the key npm start printed, and watches real (scripted) miners
// mine over WebRTC, a cheater get refused, the queue drain and the ledger grow, live, in real Chromium.
import { expect, test } from '@playwright/test';
import { toHex } from '../../src/protocol/receipt.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, TEST_API_KEY, TEST_OPERATOR_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

const operatorUrl = (key?: string) => `${stack.url}operator.html${key === undefined ? '' : `#key=${key}`}`;

/** Micro-credits as the page writes them: credits with six decimals. */
const credits = (micro: bigint) => `${micro / 1_000_000n}.${(micro % 1_000_000n).toString().padStart(6, '0')}`;

async function mineUntilDone(jobIds: string[], miners: ScriptedMiner[]): Promise<void> {
  let done = false;
  const mining = miners.map((m) => m.mineHonestly(() => done));
  for (const id of jobIds) await waitForJob(stack.url, id);
  done = true;
  await Promise.all(mining);
}

test('the state endpoint and the page refuse a wrong key with a sentence', async ({ page }) => {
  const res = await fetch(new URL('api/operator/state', stack.url), { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  expect(res.status).toBe(401);
  expect(await res.json()).toEqual({ error: { code: 'bad-operator-key', message: 'that is not this coordinator\'s operator key' } });
  const bad = await fetch(new URL('api/operator/state?since=yesterday', stack.url), { headers: { authorization: `Bearer ${TEST_OPERATOR_KEY}` } });
  expect(bad.status).toBe(400);
  expect((await bad.json()).error.code).toBe('bad-params');

  await page.goto(operatorUrl());
  await page.getByLabel('Key').fill('ergon_not_the_operator_key');
  await page.getByRole('button', { name: 'Open' }).click();
  await expect(page.getByTestId('key-error')).toHaveText('that is not this coordinator\'s operator key');
  await expect(page.getByTestId('miners-online')).toHaveCount(0);
  await page.screenshot({ path: 'tests/screenshots/operator-wrong-key.png', fullPage: true });

  await page.getByLabel('Key').fill(TEST_OPERATOR_KEY);
  await page.getByRole('button', { name: 'Open' }).click();
  await expect(page.getByTestId('miners-online')).toHaveText('0');
});

test('an operator watches miners mine, a cheater refused and the ledger grow, live', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(operatorUrl(TEST_OPERATOR_KEY));
  // The key leaves the address bar at once.
  await expect.poll(() => page.url()).toBe(operatorUrl());
  await expect(page.getByTestId('miners-online')).toHaveText('0');
  await expect(page.getByTestId('no-offences')).toBeVisible();
  // Marks this document: if the page ever reloaded to show new numbers, the mark would be gone.
  await page.evaluate(() => ((window as unknown as { liveMark: number }).liveMark = 42));

  const job = await submitGemm(stack.url, 768, 256, 32, randomMatrix(768 * 32, 21), randomMatrix(32 * 256, 22));
  expect(job.unitsTotal).toBe(3);
  await expect(page.getByTestId('queue-gemm')).toHaveText('3');
  await expect(page.getByTestId('queue-total')).toHaveText('3');

  const cheat = await ScriptedMiner.connect(stack.url);
  await cheat.hello();
  const lease = await cheat.lease();
  expect(await cheat.verdict(lease, randomMatrix(256 * 256, 23))).toMatchObject({ type: 'rejected', code: 'verification-failed' });
  const cheatKey = toHex(cheat.minerKey);
  const offence = page.locator(`[data-testid="offence-row"][data-miner-key="${cheatKey}"]`);
  await expect(offence.getByTestId('rejection')).toHaveAttribute('data-reason', 'verification-failed');
  await expect(offence.getByTestId('rejection')).toHaveAttribute('data-count', '1');
  await expect(page.getByTestId('units-rejected')).toHaveText('1');
  await expect(page.getByTestId('miners-online')).toHaveText('1');

  const honest = [await ScriptedMiner.connect(stack.url), await ScriptedMiner.connect(stack.url)];
  await Promise.all(honest.map((m) => m.hello()));
  await expect(page.getByTestId('miners-online')).toHaveText('3');
  await mineUntilDone([job.id], honest);

  await expect(page.getByTestId('units-verified')).toHaveText('3');
  // Between them the honest miners did the three units; speeds count the last minute, so they are read first.
  const verifiedByHonest = await Promise.all(honest.map(async (m) => Number(await page.locator(`[data-testid="miner-row"][data-miner-key="${toHex(m.minerKey)}"] [data-testid="miner-verified"]`).textContent())));
  expect(verifiedByHonest.reduce((a, b) => a + b, 0)).toBe(3);
  const busiest = honest[verifiedByHonest[0] >= verifiedByHonest[1] ? 0 : 1];
  expect(Number(await page.locator(`[data-testid="miner-row"][data-miner-key="${toHex(busiest.minerKey)}"] [data-testid="speed"]`).textContent())).toBeGreaterThan(0);
  expect(Number(await page.getByTestId('verified-rate').textContent())).toBeGreaterThan(0);
  await expect(page.getByTestId('queue-gemm')).toHaveText('0');
  const totals = await stack.ledger.totals();
  expect(totals.units).toBe(3);
  await expect(page.getByTestId('ledger-units')).toHaveText('3');
  await expect(page.getByTestId('ledger-credits')).toHaveText(credits(totals.microCredits));
  await expect(page.getByTestId('credits-settled')).toHaveText(credits(totals.microCredits));
  await expect(page.getByTestId('credits-pending')).toHaveText('0.000000');
  await expect(page.getByTestId('credits-forfeited')).toHaveText('0.000000');

  const rows = page.getByTestId('miner-row');
  await expect(rows).toHaveCount(3);
  for (const miner of honest) {
    const row = page.locator(`[data-testid="miner-row"][data-miner-key="${toHex(miner.minerKey)}"]`);
    await expect(row).toContainText('scripted miner');
    await expect(row.getByTestId('engine')).toHaveText('wasm');
    await expect(row.getByTestId('gflops-per-joule')).toHaveText('not measured');
  }
  const cheatRow = page.locator(`[data-testid="miner-row"][data-miner-key="${cheatKey}"]`);
  await expect(cheatRow.getByTestId('miner-rejected')).toHaveText('1');
  await expect(cheatRow.getByTestId('reputation')).toHaveText('-10');

  // More work while the page stays open: its numbers follow without a reload.
  const second = await submitGemm(stack.url, 256, 512, 32, randomMatrix(256 * 32, 24), randomMatrix(32 * 512, 25));
  await mineUntilDone([second.id], honest);
  await expect(page.getByTestId('units-verified')).toHaveText('5');
  await expect(page.getByTestId('ledger-units')).toHaveText('5');
  await expect(page.getByTestId('ledger-credits')).toHaveText(credits((await stack.ledger.totals()).microCredits));
  await expect.poll(() => page.getByTestId('chart-rate').getAttribute('data-points').then(Number)).toBeGreaterThan(2);
  await expect.poll(() => page.getByTestId('chart-miners').getAttribute('data-latest')).toBe('3');
  expect(await page.evaluate(() => (window as unknown as { liveMark?: number }).liveMark)).toBe(42);
  await page.screenshot({ path: 'tests/screenshots/operator.png', fullPage: true });

  for (const miner of [cheat, ...honest]) miner.close();
});

test('the miner\'s service worker neither precaches nor answers for the operator page', async ({ page }) => {
  await page.goto(stack.url);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  const precached = await page.evaluate(async () => {
    const urls: string[] = [];
    for (const name of await caches.keys()) for (const req of await (await caches.open(name)).keys()) urls.push(new URL(req.url).pathname);
    return urls;
  });
  expect(precached).toContain('/index.html');
  expect(precached.filter((u) => u.includes('operator'))).toEqual([]);
  await page.reload();
  expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  // Navigated under the worker's control, the operator page is still the operator page, from the network.
  await page.goto(operatorUrl(TEST_OPERATOR_KEY));
  await expect(page).toHaveTitle('Ergon operator');
  await expect(page.getByTestId('miners-online')).toBeVisible();
});

