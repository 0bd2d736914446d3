// The installable app: Chromium finds it installable, it opens offline with the earnings kept in IndexedDB, and a
// new version waits for the person to accept it. A persistent profile, because a fresh context is incognito.
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, expect, test, type BrowserContext, type Page } from '@playwright/test';
import { chromiumPath, CHROMIUM_ARGS, GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';
test.describe.configure({ mode: 'serial' });

let stack: TestStack;
let context: BrowserContext;
let page: Page;
let profileDir: string;
let appDir: string;

test.beforeAll(async () => {
  // A copy of the built app, so the update test can publish a "new version" without touching dist/.
  appDir = await mkdtemp(join(tmpdir(), 'ergon-app-'));
  await cp(resolve('dist'), appDir, { recursive: true });
  stack = await startStack({ serveApp: true, staticDir: appDir });
  profileDir = await mkdtemp(join(tmpdir(), 'ergon-profile-'));
  context = await chromium.launchPersistentContext(profileDir, { executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => console.error('page error:', err.message));
});

test.afterAll(async () => {
  await context?.close();
  await stack?.stop();
  await rm(profileDir, { recursive: true, force: true });
  await rm(appDir, { recursive: true, force: true });
});

test('Chromium reports no installability errors and a service worker controls the page', async () => {
  await page.goto(stack.url);
  await expect(page.getByText('multiply matrices')).toBeVisible();
  await expect.poll(() => page.evaluate(async () => (await navigator.serviceWorker.ready).active?.state)).toBe('activated');
  await expect(page.getByText('installed for offline use')).toBeVisible();
  await page.reload();
  expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toMatch(/\/sw\.js$/);

  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: unknown[] };
  expect(installabilityErrors).toEqual([]);
  const manifest = (await cdp.send('Page.getAppManifest')) as { errors: unknown[]; url: string };
  expect(manifest.errors).toEqual([]);
  expect(manifest.url).toMatch(/manifest\.webmanifest$/);
  const icons = await page.evaluate(async () => ((await (await fetch('/manifest.webmanifest')).json()) as { icons: { sizes: string }[] }).icons.map((i) => i.sizes));
  expect(icons).toEqual(expect.arrayContaining(['192x192', '512x512']));
  // Nothing touched the GPU: there is no worker until Start.
  expect(page.workers()).toHaveLength(0);
  await page.screenshot({ path: 'tests/screenshots/pwa-installable.png', fullPage: true });
});

test('offline, the reloaded app still shows the earnings stored in IndexedDB', async () => {
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
  const job = await submitGemm(stack.url, 256, 256, 128, randomMatrix(256 * 128, 31), randomMatrix(128 * 256, 32));
  await waitForJob(stack.url, job.id, 240_000);
  await expect(page.getByTestId('receipts')).toHaveText('1');
  const credits = await page.getByTestId('credits').textContent();
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle');

  await context.setOffline(true);
  try {
    await page.reload();
    await expect(page.getByText('multiply matrices')).toBeVisible();
    await expect(page.getByTestId('receipts')).toHaveText('1');
    await expect(page.getByTestId('credits')).toHaveText(credits ?? '');
    await expect(page.getByTestId('earnings-by-day')).toContainText(credits ?? '');
    // The API is never served from the cache: offline, it fails.
    expect(await page.evaluate(() => fetch('/api/config').then(() => 'answered', () => 'failed'))).toBe('failed');
    await page.screenshot({ path: 'tests/screenshots/pwa-offline-earnings.png', fullPage: true });
  } finally {
    await context.setOffline(false);
  }
});

test('a new version waits for the person, who reloads into it from the prompt', async () => {
  await page.goto(stack.url);
  const before = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
  expect(before).toMatch(/\/sw\.js$/);
  await appendFile(join(appDir, 'sw.js'), '\n// a new version\n');
  await page.evaluate(async () => {
    const registration = await navigator.serviceWorker.getRegistration();
    await registration?.update();
  });
  const prompt = page.getByRole('alertdialog');
  await expect(prompt).toContainText('A new version of Ergon is ready');
  await page.screenshot({ path: 'tests/screenshots/pwa-update-prompt.png' });
  // The old version keeps control until the person accepts.
  expect(await page.evaluate(async () => Boolean((await navigator.serviceWorker.getRegistration())?.waiting))).toBe(true);
  await Promise.all([page.waitForEvent('load'), prompt.getByRole('button', { name: 'Reload to update' }).click()]);
  await expect(page.getByText('multiply matrices')).toBeVisible();
  expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.waiting ?? null)).toBeNull();
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
});
