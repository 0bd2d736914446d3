// A result the page computed and sent, reloaded away before its verdict came: the page kept it in IndexedDB, sends it
// again on the next Start, and it is credited once without being computed again; a cheater who copies the kept
// result and puts it back, reload after reload, gets the same receipt again and is not paid again.
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { FRAME_HEADER_BYTES } from '../../src/protocol/framing.ts';
import { matmulF64, randomMatrix } from '../helpers/random.ts';
import { pressStart } from '../helpers/mining-page.ts';
import { fetchProduct, lengthenLeases, maxRelativeError, startStack, submitGemm, TEST_OPERATOR_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';
import { storedReceipts } from '../helpers/wallet-receipts.ts';
import { copyKept, keptUnitIds, restoreCopy } from '../helpers/unsettled-results.ts';

process.env.ERGON_LOG ??= 'silent';

// One page through every test: the second replays what the first kept.
test.describe.configure({ mode: 'serial' });

let stack: TestStack;
let context: BrowserContext;
let page: Page;
/** How many results the route has held back from the coordinator: only the first is. */
let held = 0;
let unitId = '';
let minerKey = '';

test.beforeAll(async ({ browser }) => {
  // A grace far longer than any reload here: the dropped page's lease waits for its wallet key whatever the machine.
  stack = await startStack({ serveApp: true, leaseGraceMs: 600_000 });
  // The kept result must still be within its lease when the page sends it again, however long the steps take here.
  lengthenLeases(stack, 300_000);
  context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  // WebRTC off, so the link is the coordinator's WebSocket, which the test can stand between.
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel', 'RTCSessionDescription', 'RTCIceCandidate']) delete w[name];
  });
  // The first large message from the page (a result; hellos and requests are small) never reaches the coordinator,
  // none of its frames (src/protocol/framing.ts), and the link stays up: the page waits for a verdict that does not
  // come. Later messages pass untouched.
  await page.routeWebSocket(/\/api\/miner-socket$/, (ws) => {
    /** Message ids count from 1 on each link: the one held is this link's. */
    let heldMessageId: number | undefined;
    const server = ws.connectToServer();
    server.onMessage((message) => ws.send(message));
    ws.onMessage((message) => {
      if (typeof message !== 'string' && message.byteLength >= FRAME_HEADER_BYTES) {
        const frame = new DataView(message.buffer, message.byteOffset, message.byteLength);
        const [messageId, chunkIndex, totalBytes] = [frame.getUint32(4, true), frame.getUint32(8, true), frame.getUint32(16, true)];
        if (held === 0 && chunkIndex === 0 && totalBytes > 16_384) {
          held++;
          heldMessageId = messageId;
        }
        if (messageId === heldMessageId) return;
      }
      server.send(message);
    });
  });
});
test.afterAll(async () => {
  await context?.close();
  await stack?.stop();
});

/** A counter of the coordinator's /metrics, summed over its labels. */
async function metric(name: string): Promise<number> {
  const res = await fetch(new URL('metrics', stack.url), { headers: { authorization: `Bearer ${TEST_OPERATOR_KEY}` } });
  const lines = (await res.text()).split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
  return lines.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function reloadAndStart(): Promise<void> {
  await page.reload();
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await pressStart(page);
  await expect(page.getByTestId('transport')).toHaveAttribute('data-transport', 'websocket');
}

test('a result whose verdict had not come when the page was reloaded is sent again on Start and credited once', async () => {
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await pressStart(page);
  await expect(page.getByTestId('transport')).toHaveAttribute('data-transport', 'websocket');

  // One unit, whose lease (lengthened above) outlasts the reloads.
  const [m, n, k] = [256, 256, 8192];
  const a = randomMatrix(m * k, 111);
  const b = randomMatrix(k * n, 112);
  const job = await submitGemm(stack.url, m, n, k, a, b);
  expect(job.unitsTotal).toBe(1);
  const leasedBefore = await metric('ergon_units_leased_total');

  // Computed and sent, held back on the way, and kept on disk by the page.
  await expect.poll(() => held, { timeout: 240_000 }).toBe(1);
  await expect.poll(() => keptUnitIds(page)).toHaveLength(1);
  [unitId] = await keptUnitIds(page);
  expect(unitId.startsWith(job.id)).toBe(true);
  expect(await copyKept(page)).toBe(1); // for the cheat in the next test
  expect((await stack.ledger.totals()).units).toBe(0);
  await expect(page.getByTestId('receipts')).toHaveText('0');

  // Another tab of the profile, started and stopped meanwhile (Stop waits for the verdicts of whatever it sent),
  // leaves the result to the page that kept it and still waits for its verdict.
  const otherTab = await context.newPage();
  await otherTab.goto(stack.url);
  await expect(otherTab.getByTestId('wallet-key')).not.toHaveText('…');
  await pressStart(otherTab);
  await otherTab.getByRole('button', { name: 'Stop' }).click();
  await expect(otherTab.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
  await expect(otherTab.getByTestId('units-done')).toHaveText('0');
  await otherTab.close();
  expect((await stack.ledger.totals()).units).toBe(0);
  expect(await keptUnitIds(page)).toEqual([unitId]);

  await reloadAndStart();

  // Sent again from disk, verified and credited once, to this wallet; nothing was computed twice.
  await expect(page.getByTestId('units-done')).toHaveText('1', { timeout: 240_000 });
  expect((await waitForJob(stack.url, job.id, 240_000)).unitsDone).toBe(1);
  expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
  expect((await stack.ledger.totals()).units).toBe(1);
  expect((await metric('ergon_units_leased_total')) - leasedBefore).toBe(1);
  await expect.poll(() => page.getByTestId('receipts').textContent()).toBe('1');
  const receipts = await storedReceipts(page);
  expect(receipts.map((r) => r.unitId)).toEqual([unitId]);
  const credit = await stack.ledger.creditOf(unitId);
  minerKey = credit?.minerKey ?? '';
  const walletKeyShown = ((await page.getByTestId('wallet-key').textContent()) ?? '').replace('…', '');
  expect(walletKeyShown).toHaveLength(16);
  expect(minerKey.startsWith(walletKeyShown)).toBe(true);
  expect(credit?.microCredits).toBe(receipts[0].microCredits);
  expect(await stack.ledger.balance(minerKey)).toBe(receipts[0].microCredits);
  expect(await stack.ledger.reputation(minerKey)).toMatchObject({ accepted: 1, rejected: 0 });
  // The verdict let the kept result go; nothing was held against the page.
  await expect.poll(() => keptUnitIds(page)).toEqual([]);
  expect(await page.getByTestId('units-rejected').count()).toBe(0);
  // The reloaded page computed nothing: the table of units computed this session is not even shown.
  await expect(page.getByTestId('units-computed')).toHaveCount(0);
});

test('a kept result put back and sent again after two more reloads is answered with its receipt, not paid again', async () => {
  expect(unitId).not.toBe('');
  const balanceBefore = await stack.ledger.balance(minerKey);
  const creditsShown = await page.getByTestId('credits').textContent();
  for (let replay = 1; replay <= 2; replay++) {
    // The cheater puts the copy back with its lease deadline moved on, so that the page sends it again.
    expect(await restoreCopy(page, Date.now() + 600_000)).toBe(1);
    await reloadAndStart();
    // The coordinator answered it: the fresh page counts a verdict it did not compute, and let the kept result go ...
    await expect(page.getByTestId('units-done')).toHaveText('1');
    await expect.poll(() => keptUnitIds(page)).toEqual([]);
    // ... with the receipt of the one credit, signed again: no second credit, the same balance.
    expect((await stack.ledger.totals()).units).toBe(1);
    expect(await stack.ledger.balance(minerKey)).toBe(balanceBefore);
    expect((await storedReceipts(page)).map((r) => r.unitId)).toEqual([unitId]);
    await expect(page.getByTestId('receipts')).toHaveText('1');
    await expect(page.getByTestId('credits')).toHaveText(creditsShown ?? '');
    // Sending again what it got no verdict for is what an honest page does: no offence.
    expect(await stack.ledger.reputation(minerKey)).toMatchObject({ accepted: 1, rejected: 0 });
  }
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});
