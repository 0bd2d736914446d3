// Measured ops per joule in real Chromium: the page finds a running probe by itself, pairs with the code it printed,
// and the joules of each unit, measured by the probe's method, are signed into the stored receipts; an impossible
// energy reading is not signed and pay is unchanged; without a probe the page shows an estimate labelled as one.
// The probe reads a sysfs tree this test writes (this machine has no readable RAPL or hwmon): its RAPL counter
// advances as a real package's would, 20 W, or 50 kW for the implausible case.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { expect, test } from '@playwright/test';
import { DEFAULT_PROBE_PORT } from '../../src/protocol/energy.ts';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { FakeSysfs } from '../helpers/fake-sysfs.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';
import { storedReceipts } from '../helpers/wallet-receipts.ts';

process.env.ERGON_LOG ??= 'silent';

const TICK_MS = 20;
/** RAPL wraps at this (a real package's range, in µJ). */
const MAX_UJ = 262_143_328_850;

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

/** Two units, each long enough (K = 2048) to span several ticks of the fake counter and reads of the probe. */
async function mineJob(seed: number): Promise<string> {
  const [m, n, k] = [512, 256, 2048];
  const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, seed), randomMatrix(k * n, seed + 1));
  await waitForJob(stack.url, job.id, 240_000);
  return job.id;
}

/** Starts `npm run probe`'s program on the default port with the fake tree; resolves with its pairing code. */
async function startProbe(root: string): Promise<{ child: ChildProcess; code: string }> {
  const origin = new URL(stack.url).origin;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/probe/main.ts', '--sysfs-root', root, '--nvidia-smi', '/nonexistent/nvidia-smi', '--origin', origin, '--period-ms', '100'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const code = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Pairing code: ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(out);
      if (m && out.includes('probe-ready')) resolve(m[1]);
    });
    child.once('exit', (status) => reject(new Error(`the probe exited (${status}): ${out}`)));
  });
  expect(out).toContain(`found   intel-rapl:0 package-0: RAPL energy counter (rapl)`);
  expect(out).toContain(`127.0.0.1:${DEFAULT_PROBE_PORT}`);
  return { child, code };
}

test('without a probe the page shows an estimate, labelled as one, and the receipts sign it as an estimate', async ({ page }) => {
  await page.goto(stack.url);
  await expect(page.getByTestId('probe-status')).toContainText(/no probe answers/);
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
  const jobId = await mineJob(21);
  await expect(page.getByTestId('energy-figure')).toHaveAttribute('data-method', 'estimate');
  await expect(page.getByTestId('energy-figure')).toContainText('an estimate, not a measurement');
  await expect.poll(async () => (await storedReceipts(page)).filter((r) => r.jobId === jobId).length).toBe(2);
  for (const r of (await storedReceipts(page)).filter((x) => x.jobId === jobId)) expect(r).toMatchObject({ joulesSource: 'estimate' });
  await page.getByRole('button', { name: 'Stop' }).click();
});

test('the page pairs with a running probe and signs RAPL joules into receipts; an impossible reading is not signed and pays the same', async ({ page }) => {
  const fs = await FakeSysfs.create();
  await fs.raplZone('intel-rapl:0', 'package-0', MAX_UJ - 3_000_000, MAX_UJ); // wraps 3 J into the test
  let energyUj = MAX_UJ - 3_000_000;
  let wattsNow = 20;
  // One write at a time, in order, as the kernel's counter only moves forward (or wraps).
  let writing = Promise.resolve();
  const ticking = setInterval(() => {
    energyUj = (energyUj + wattsNow * TICK_MS * 1_000) % MAX_UJ;
    const value = energyUj;
    writing = writing.then(() => fs.setRapl('intel-rapl:0', value));
  }, TICK_MS);
  const { child, code } = await startProbe(fs.root);
  try {
    await page.goto(stack.url);
    await expect(page.getByTestId('probe-status')).toContainText('A probe is running on this machine');
    await page.getByLabel('Pairing code').fill(code.toLowerCase());
    await page.getByRole('button', { name: 'Pair' }).click();
    await expect(page.getByTestId('probe-status')).toContainText('measuring by RAPL energy counter (rapl)');

    await page.getByRole('button', { name: 'Start' }).click();
    await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
    const measuredJob = await mineJob(31);
    await expect.poll(async () => (await storedReceipts(page)).filter((r) => r.jobId === measuredJob).length).toBe(2);
    const measured = (await storedReceipts(page)).filter((r) => r.jobId === measuredJob);
    for (const r of measured) {
      expect(r.joulesSource).toBe('rapl');
      expect(r.joules).toBeGreaterThan(0);
    }
    await expect(page.getByTestId('energy-figure').first()).toHaveAttribute('data-method', 'rapl');
    await expect(page.getByTestId('energy-figure').first()).toContainText('Measured ops per joule (RAPL energy counter)');
    await expect(page.locator('[data-testid="signed-energy"][data-method="rapl"]')).toContainText('RAPL energy counter');
    await page.screenshot({ path: 'tests/screenshots/energy.png', fullPage: true });

    // 50 kW from one machine is beyond any method's bound: the coordinator signs no energy, and pays the same.
    wattsNow = 50_000;
    // Past several of the probe's reads (100 ms) and the page's (250 ms): no unit's interval reaches back to 20 W.
    await page.waitForTimeout(1_000);
    const impossibleJob = await mineJob(41);
    await expect.poll(async () => (await storedReceipts(page)).filter((r) => r.jobId === impossibleJob).length).toBe(2);
    const impossible = (await storedReceipts(page)).filter((r) => r.jobId === impossibleJob);
    for (const r of impossible) expect(r).toMatchObject({ joules: 0, joulesSource: 'none' });
    expect(impossible.map((r) => r.microCredits).sort()).toEqual(measured.map((r) => r.microCredits).sort());

    const table = await (await fetch(new URL('api/rankings', stack.url))).json() as { groups: { method: string }[] };
    expect(table.groups.map((g) => g.method)).toContain('rapl');
    await page.getByRole('button', { name: 'Stop' }).click();
  } finally {
    clearInterval(ticking);
    await writing;
    child.kill('SIGTERM');
    await rm(fs.root, { recursive: true, force: true });
  }
});
