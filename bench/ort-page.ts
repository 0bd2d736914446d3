// The page both onnx benches drive (bench:onnx, bench:tolerance): an empty document beside the models, with
// onnxruntime-web's dist served as the app serves it (the WebGPU build, which has both EPs: what a miner with an
// adapter loads), open in headless Chromium.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import type { ModelStore } from '../src/coordinator/model-store.ts';
import { CHROMIUM_ARGS, chromiumPath } from '../tests/helpers/chromium.ts';
import { serveStatic } from './gemm/static-server.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface OrtPage {
  page: Page;
  /** The browser's version, for the report. */
  chromium: string;
  /** The WebGPU adapter the page sees, in words ('none' without one). */
  adapter: string;
  close(): Promise<void>;
}

/** Writes the site into `dir` (the store's models as `models/SHA.onnx`), serves it and opens it. */
export async function openOrtPage(dir: string, title: string, store: ModelStore, shas: readonly string[]): Promise<OrtPage> {
  const site = join(dir, 'site');
  await mkdir(join(site, 'models'), { recursive: true });
  await writeFile(join(site, 'index.html'), `<!doctype html><title>${title}</title>`);
  for (const sha of new Set(shas)) {
    const bytes = await store.bytes(sha);
    if (!bytes) throw new Error(`${sha}: no model bytes`);
    await writeFile(join(site, 'models', `${sha}.onnx`), bytes);
  }
  const server = await serveStatic(site, { '/vendor/ort/': join(REPO, 'node_modules/onnxruntime-web/dist') }, false);
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const close = async () => {
    await browser.close();
    await server.close();
  };
  try {
    const page = await browser.newPage();
    page.on('pageerror', (err) => console.log(`  page error: ${err.message}`));
    await page.goto(server.url);
    const adapter = await page.evaluate(async () => {
      const found = await navigator.gpu?.requestAdapter();
      return found ? `${found.info.vendor} / ${found.info.architecture} / ${found.info.description}` : 'none';
    });
    return { page, chromium: browser.version(), adapter, close };
  } catch (err) {
    await close();
    throw err;
  }
}
