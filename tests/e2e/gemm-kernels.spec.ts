// The GEMM kernel on this machine's real WebGPU adapter: every config correct for any shape, dispatches bounded, tuning kept.
import { expect, test } from '@playwright/test';
import { createServer, type ViteDevServer } from 'vite';

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

test('every kernel config computes products of any shape: 1, primes, edges that do not divide the tiles', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const configs = await page.evaluate(() => window.harness.configs());
  expect(configs.length).toBeGreaterThanOrEqual(4);
  // [m, k, n]: odd shapes take the scalar variant; K and N multiples of 4 take the vec4 variant.
  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 7, 3], [67, 45, 33], [131, 97, 257], [3, 200, 5],
    [1, 4, 4], [68, 36, 44], [64, 64, 64], [130, 96, 260], [5, 4, 132],
  ];
  for (let index = 0; index < configs.length; index++) {
    for (const [m, k, n] of shapes) {
      const result = await page.evaluate(([i, m, k, n]) => window.harness.gemm(i, m, k, n, m * 31 + n), [index, m, k, n] as const);
      expect(result.variant).toBe(k % 4 === 0 && n % 4 === 0 ? 'vec4' : 'scalar');
      expect(result.maxRelativeError, `${result.config} ${result.variant} at ${m}x${k}x${n}`).toBeLessThan(1e-5);
    }
  }
});

test('a 1x4096x4096 product is correct', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const result = await page.evaluate(() => window.harness.gemm(0, 1, 4096, 4096, 5));
  expect(result.maxRelativeError).toBeLessThan(1e-5);
});

test('a long product is split into dispatches near the 100 ms budget, and stays correct', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  // SwiftShader runs about 1 GFLOP/s, so 0.5 GFLOP needs several 100 ms dispatches; the first run learns the speed.
  const result = await page.evaluate(() => window.harness.gemm(0, 512, 512, 1024, 7, 2));
  expect(result.maxRelativeError).toBeLessThan(1e-5);
  expect(result.dispatches).toBeGreaterThan(1);
  const perDispatchMs = (result.gpuSeconds * 1000) / result.dispatches;
  expect(perDispatchMs).toBeLessThan(400);
});

test('autotuning picks a correct config, stores it, and finds it again', async ({ page }) => {
  await page.goto(harnessUrl);
  await page.waitForFunction(() => 'harness' in window);
  const tuned = await page.evaluate(() => window.harness.tune());
  expect(tuned.record.trials.filter((t) => t.gflops !== null).length).toBeGreaterThanOrEqual(3);
  expect(tuned.record.gflops).toBeGreaterThan(0);
  expect(tuned.storedConfig).toBe(tuned.chosen);
  const again = await page.evaluate(() => window.harness.tune());
  expect(again.before?.adapterKey).toBe(tuned.record.adapterKey);
  console.log(`tuning took ${tuned.seconds.toFixed(1)} s: ${tuned.record.trials.map((t) => `${t.name} ${t.gflops?.toFixed(2) ?? t.error}`).join(', ')}`);
});
