// A real page among a fleet's miners: served by one coordinator of two on one PostgreSQL, it learns the other from the
// signed fleet list, keeps mining there when its own coordinator is killed with SIGKILL, and counts the other's
// receipts in its balance; the database credits every unit once, and exactly what the page's receipts say.
import { expect, test } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { startFleet, type TestFleet } from '../helpers/fleet.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { randomMatrix } from '../helpers/random.ts';
import { submitGemm, waitForJob } from '../helpers/stack.ts';
import { storedReceipts } from '../helpers/wallet-receipts.ts';

let server: TestPostgres | undefined;
let fleet: TestFleet | undefined;
test.beforeAll(async () => {
  if (postgresMissing) return;
  server = await startPostgres();
  fleet = await startFleet(server, 2);
});
test.afterAll(async () => {
  await fleet?.stop();
  await server?.stop();
});

const keyOf = async (url: string) => ((await (await fetch(new URL('api/config', url))).json()) as { coordinatorKey: string }).coordinatorKey;

test('a page fails over to the coordinator its fleet vouches for, and counts that coordinator\'s receipts', async ({ page }) => {
  test.skip(postgresMissing !== null, postgresMissing ?? '');
  if (!fleet) throw new Error('no fleet');
  const [home, other] = fleet.coordinators;
  const [homeKey, otherKey] = [await keyOf(home.url), await keyOf(other.url)];
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(home.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });

  // 24 units of 256x256x256, submitted to the page's own coordinator; once some are receipted there, it is killed.
  const [m, n, k] = [256 * 24, 256, 256];
  const job = await submitGemm(home.url, m, n, k, randomMatrix(m * k, 301), randomMatrix(k * n, 302));
  await expect.poll(async () => (await storedReceipts(page)).length, { timeout: 180_000 }).toBeGreaterThanOrEqual(2);
  await home.kill9();
  // Work that only the other coordinator can lease: however much of the first job the page finished before the
  // kill (on a fast machine, all of it), it earns receipts signed by the other coordinator.
  const after = await submitGemm(other.url, 256 * 4, n, k, randomMatrix(256 * 4 * k, 303), randomMatrix(k * n, 304));

  // The page moves to the other coordinator (it was never in the person's list) and the jobs finish there.
  expect((await waitForJob(other.url, job.id, 300_000)).unitsDone).toBe(24);
  expect((await waitForJob(other.url, after.id, 300_000)).unitsDone).toBe(4);
  await expect.poll(async () => (await storedReceipts(page)).length, { timeout: 60_000 }).toBe(28);
  const receipts = await storedReceipts(page);
  expect(receipts.some((r) => r.coordinatorKey === homeKey)).toBe(true);
  expect(receipts.some((r) => r.coordinatorKey === otherKey)).toBe(true);
  expect(new Set(receipts.map((r) => r.unitId)).size).toBe(28);
  // Both coordinators' receipts count: none is shown apart as unverified.
  await expect(page.getByTestId('unverified')).toHaveCount(0);
  await expect(page.getByTestId('receipts')).toHaveText('28');

  // The database credited each unit once, exactly what the page holds receipts for.
  const credits = await fleet.query<{ unit_id: string; micro_credits: string }>('SELECT unit_id, micro_credits FROM credits WHERE job_id = ANY($1)', [[job.id, after.id]]);
  expect(credits.map((c) => c.unit_id).sort()).toEqual(receipts.map((r) => r.unitId).sort());
  expect(credits.reduce((sum, c) => sum + BigInt(c.micro_credits), 0n)).toBe(receipts.reduce((sum, r) => sum + r.microCredits, 0n));
  await page.screenshot({ path: 'tests/screenshots/fleet-failover.png', fullPage: true });
  await page.getByRole('button', { name: 'Stop' }).click();
});
