// The GEMM kernels on this machine's real WebGPU adapter: every family and config correct for any shape, GEMV-like
// products on the small-M kernel, dispatches bounded, tuning kept.
import { expect, test } from '@playwright/test';
import { createServer, type ViteDevServer } from 'vite';
import { ODD_SHAPES } from '../helpers/kernel-shapes.ts';

let vite: ViteDevServer;
let harnessUrl: string;
test.beforeAll(async () => {
  vite = await createServer({ configFile: 'vite.config.ts', logLevel: 'silent', server: { host: '127.0.0.1', port: 0 } });
  await vite.listen();
  const address = vite.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server has no port');
  harnessUrl = `http://127.0.0.1:${address.port}/tests/e2e/harness/gpu.html`;
});
test.afterAll(async () => {
  await vite?.close();
});

test('every kernel config of every family computes products of any shape: 1, primes, K = 1, edges that do not divide the tiles', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const configs = await page.evaluate(() => window.harness.configs());
  const hasSubgroups = await page.evaluate(async () => (await navigator.gpu.requestAdapter())?.features.has('subgroups') ?? false);
  const runnable = configs.filter((c) => c.unfit === null);
  const families = new Set(runnable.map((c) => c.family));
  expect([...families].sort()).toEqual(hasSubgroups ? ['direct', 'subgroup', 'tiled'] : ['direct', 'tiled']);
  expect(runnable.some((c) => c.name.startsWith('direct-') && c.name.includes('-t1x'))).toBe(true); // the small-M config
  for (const config of runnable) {
    for (const [m, k, n] of ODD_SHAPES) {
      const result = await page.evaluate(([name, m, k, n]) => window.harness.gemm(name, m, k, n, m * 31 + n), [config.name, m, k, n] as const);
      expect(result.config).toBe(config.name);
      expect(result.variant).toBe(k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');
      expect(result.maxRelativeError, `${result.config} ${result.variant} at ${m}x${k}x${n}`).toBeLessThan(1e-5);
    }
  }
});

test('units given to a kernel at once each get their own product, in turn; one cancelled before its turn is dropped', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  // The second is long enough to take several dispatches while the others wait for their turn or a free slot.
  const shapes: [number, number, number][] = [[64, 64, 64], [384, 512, 512], [67, 45, 33], [1, 4096, 37], [96, 128, 64]];
  const { results, finished, after } = await page.evaluate((shapes) => window.harness.overlapping(shapes, 3), shapes);
  expect(results.map((r) => r.cancelled)).toEqual([false, false, false, true, false]);
  for (const [i, r] of results.entries()) if (!r.cancelled) expect(r.maxRelativeError, `unit ${i} ${shapes[i].join('x')}`).toBeLessThan(1e-5);
  expect(finished.slice(0, 4)).toEqual([0, 1, 2, 4]);
  expect(after.cancelled).toBe(false);
  expect(after.maxRelativeError).toBeLessThan(1e-5);
});

test('a 1x4096x4096 product runs the small-M kernel and is correct; a tall one does not', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const gemv = await page.evaluate(() => window.harness.gemm('default', 1, 4096, 4096, 5));
  expect(gemv.maxRelativeError).toBeLessThan(1e-5);
  expect(gemv.config).toMatch(/-t1x/);
  const tall = await page.evaluate(() => window.harness.gemm('default', 64, 64, 64, 6));
  expect(tall.maxRelativeError).toBeLessThan(1e-5);
  expect(tall.config).not.toBe(gemv.config);
});

test('a product longer than the dispatch budget is split into dispatches, one shorter is not, and both stay correct', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  // The budgets are set from this machine's own speed, so the test holds on a slow CPU and a fast GPU alike: first
  // the product's time at the default budget, then budgets well below and well above it. The first of each pair of
  // runs teaches the kernel its speed; the second is the one judged.
  const whole = await page.evaluate(() => window.harness.gemm('default', 512, 512, 1024, 7, 2));
  expect(whole.maxRelativeError).toBeLessThan(1e-5);
  const wholeMs = whole.gpuSeconds * 1000;
  const split = await page.evaluate((budget) => window.harness.gemm('default', 512, 512, 1024, 7, 2, budget), wholeMs / 4);
  expect(split.maxRelativeError).toBeLessThan(1e-5);
  expect(split.dispatches).toBeGreaterThan(1);
  const single = await page.evaluate((budget) => window.harness.gemm('default', 512, 512, 1024, 7, 2, budget), wholeMs * 20);
  expect(single.maxRelativeError).toBeLessThan(1e-5);
  expect(single.dispatches).toBe(1);
});

test('where the adapter has timestamp queries, units are timed on the GPU\'s clock, within submit to completion', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const result = await page.evaluate(() => window.harness.gemm('default', 256, 512, 256, 8, 3));
  test.skip(!result.timestampQuery, 'this adapter has no timestamp-query: units are timed submit to completion');
  expect(result.maxRelativeError).toBeLessThan(1e-5);
  expect(result.gpuSeconds).toBeGreaterThan(0);
  expect(result.gpuSeconds).toBeLessThanOrEqual(result.submitSeconds);
  expect(result.gpuSeconds).not.toBe(result.submitSeconds);
});

test('the worker runs f16 units only where the device has shader-f16, and refuses them plainly elsewhere', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const result = await page.evaluate(() => window.harness.workerPrecisions());
  if (result.shaderF16) {
    expect(result.precisions).toEqual(['f32', 'f16']);
    expect(result.f16).toEqual({ c: [2, 2, 2, 2], error: '', code: '' });
  } else {
    // SwiftShader: the hello will not offer f16, and an f16 unit sent anyway is refused, not misread as f32.
    expect(result.precisions).toEqual(['f32']);
    expect(result.f16.error).toMatch(/shader-f16/);
    // The worker's error crosses to the page with its code, not as a bare string.
    expect(result.f16.code).toBe('unsupported-precision');
  }
  expect(result.f32).toEqual([1, 2, 3, 4]);
});

test('autotuning picks a correct config, stores it, finds it again, and ignores a record from before kernel families', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  expect(await page.evaluate(() => window.harness.storedAfterLegacyRecord())).toBeNull();
  const tuned = await page.evaluate(() => window.harness.tune());
  expect(tuned.before).toBeNull();
  expect(tuned.record.trials.filter((t) => t.gflops !== null).length).toBeGreaterThanOrEqual(3);
  expect(tuned.record.gflops).toBeGreaterThan(0);
  expect(tuned.storedConfig).toBe(tuned.chosen);
  const again = await page.evaluate(() => window.harness.tune());
  expect(again.before?.adapterKey).toBe(tuned.record.adapterKey);
  console.log(`tuning took ${tuned.seconds.toFixed(1)} s, chose ${tuned.chosen}: ${tuned.record.trials.map((t) => `${t.name} ${t.gflops?.toFixed(2) ?? ''} ${t.error ?? ''}`).join(', ')}`);
});
