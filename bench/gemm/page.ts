// The GEMM bench page as Node drives it: built by vite on its own, served on loopback, loaded in a browser page and
// called through window.ergonBench. bench:gemm and bench:feed (its kernel-alone figures) both use it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { build } from 'vite';
import type { BenchPage } from './bench-api.ts';
import { serveStatic, type StaticServer } from './static-server.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PAGE_READY_TIMEOUT_MS = 60_000;

/**
 * Builds the page into a temporary folder and serves it with the TF.js and onnxruntime-web bundles beside it;
 * close() stops the server and removes the folder. With `isolate`, COOP/COEP (ORT WASM needs them for threads).
 */
export async function serveGemmPage(isolate: boolean): Promise<StaticServer> {
  const outDir = await mkdtemp(join(tmpdir(), 'ergon-bench-gemm-'));
  const removeBuild = () => rm(outDir, { recursive: true, force: true });
  try {
    await build({ configFile: join(REPO, 'bench/gemm/vite.config.ts'), build: { outDir }, logLevel: 'warn' });
    const server = await serveStatic(outDir, {
      '/vendor/tfjs/': join(REPO, 'node_modules/@tensorflow/tfjs/dist'),
      '/vendor/tfjs-backend-webgpu/': join(REPO, 'node_modules/@tensorflow/tfjs-backend-webgpu/dist'),
      '/vendor/ort/': join(REPO, 'node_modules/onnxruntime-web/dist'),
    }, isolate);
    return {
      url: server.url,
      async close() {
        await server.close();
        await removeBuild();
      },
    };
  } catch (err) {
    await removeBuild();
    throw err;
  }
}

/** Opens the served page in `page` (its listeners already attached) and waits until window.ergonBench is set. */
export async function loadGemmPage(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: PAGE_READY_TIMEOUT_MS });
}

/** Calls one of the page's bench methods; a failure in the page arrives here as a thrown Error. */
export async function call<K extends keyof BenchPage>(page: Page, method: K, ...args: Parameters<BenchPage[K]>): Promise<Awaited<ReturnType<BenchPage[K]>>> {
  const result: unknown = await page.evaluate(
    async ([name, params]) => {
      const bench = window.ergonBench;
      if (!bench) throw new Error('the bench page did not load');
      const fn = bench[name] as (...xs: unknown[]) => Promise<unknown>;
      return fn(...params);
    },
    [method, args] as [K, unknown[]],
  );
  return result as Awaited<ReturnType<BenchPage[K]>>;
}
