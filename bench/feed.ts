// `npm run bench:feed`: what feeding the GPU costs on the real network path, with operand caching off and on.
//
// Usage: npm run bench:feed -- [--full] [--out=PATH]
// A coordinator (startCoordinator, HTTP + PeerServer + node-datachannel, in this process) and a real headless Chromium
// page mining it over WebRTC, fetching operands by hash over HTTP. The demo requester's three shapes and a 1024^3
// job (and with --full the 4096^3 f32 job) are mined one at a time, first with the page keeping no operands (every
// unit fetches A and B), then keeping them (512 MiB: GPU, memory, Cache Storage), then keeping them with the page's
// CPU-pressure back-off off (see MODES). Per job: operand bytes the
// coordinator served, result bytes, ops per byte moved, the page's own measured GPU-busy fraction at the 100% duty
// setting (ThrottleSettings' "Measured over the last units", mining.svelte.ts measuredDuty), and the job's wall time.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { CHROMIUM_ARGS, chromiumPath, GPU_START_TIMEOUT_MS } from '../tests/helpers/chromium.ts';
import { randomMatrix } from '../tests/helpers/random.ts';
import type { TestStack } from '../tests/helpers/stack.ts';

// Before the coordinator's modules load (log.ts reads it once): the table is the output.
process.env.ERGON_LOG ??= 'silent';
const { startStack, submitGemm, waitForJob } = await import('../tests/helpers/stack.ts');

const DEMO_SHAPES: [number, number, number][] = [[512, 512, 512], [1000, 700, 900], [256, 1024, 768]];
const EXTRA: [number, number, number] = [1024, 1024, 1024];
const FULL: [number, number, number] = [4096, 4096, 4096];
/**
 * Operand caching off and on, as a page starts; then on with the CPU-pressure back-off turned off. On SwiftShader the
 * GPU is the CPU, so mining itself raises the pressure the page reports and the page halves its own duty cycle: the
 * last mode measures the feed at the full setting, the first two what a person gets by default.
 */
const MODES = [
  { name: 'off', operandCacheMiB: 0, backOffUnderPressure: true },
  { name: 'on', operandCacheMiB: 512, backOffUnderPressure: true },
  { name: 'full', operandCacheMiB: 512, backOffUnderPressure: false },
] as const;
const UNIT_TILE = 256;
const JOB_TIMEOUT_MS = 1_800_000;

interface JobFigures {
  shape: string;
  units: number;
  gflop: number;
  /** What the leases carried inline before operands moved to HTTP: both blocks, every unit. */
  inlineBytesPerUnit: number;
  operandBytesPerUnit: number;
  resultBytesPerUnit: number;
  opsPerByte: number;
  /** The page's own figure at the 100% setting; null where the job had under 3 units (the page needs 3). */
  gpuBusy: number | null;
  wallSeconds: number;
  /** 2MNK over the wall time, from the submission (its upload included) to the job's end. */
  gflops: number;
}

function options(argv: string[]): { full: boolean; out: string } {
  let full = false;
  let out = 'bench/results/feed.json';
  for (const arg of argv) {
    if (arg === '--full') full = true;
    else if (arg.startsWith('--out=')) out = arg.slice('--out='.length);
    else throw new Error(`unknown option ${arg}; usage: npm run bench:feed -- [--full] [--out=PATH]`);
  }
  return { full, out };
}

/** Bytes both blocks of every unit take, as the tiles split the job (256x256 output tiles, depth K). */
function inlineBytes(m: number, n: number, k: number): number {
  const rowTiles = Math.ceil(m / UNIT_TILE);
  const rowsPerTile = Math.ceil(m / rowTiles);
  let bytes = 0;
  for (let row0 = 0; row0 < m; row0 += rowsPerTile) {
    for (let col0 = 0; col0 < n; col0 += UNIT_TILE) bytes += 4 * k * (Math.min(rowsPerTile, m - row0) + Math.min(UNIT_TILE, n - col0));
  }
  return bytes;
}

async function startPage(browser: Browser, url: string, mode: (typeof MODES)[number]): Promise<Page> {
  const context = await browser.newContext();
  const settings = { operandCacheMiB: mode.operandCacheMiB, backOffUnderPressure: mode.backOffUnderPressure };
  await context.addInitScript((stored) => localStorage.setItem('ergon-settings', stored), JSON.stringify(settings));
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`  page error: ${err.message}`));
  await page.goto(url);
  return page;
}

/** Reloads (so the page's measured duty covers this job alone), presses Start and waits until it is mining. */
async function startMining(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => document.querySelector('[data-testid="wallet-key"]')?.textContent !== '…');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.locator('[data-testid="phase"][data-phase="waiting-for-work"], [data-testid="phase"][data-phase="mining"]').waitFor({ timeout: GPU_START_TIMEOUT_MS });
}

async function mineOne(stack: TestStack, page: Page, [m, n, k]: [number, number, number], seed: number): Promise<JobFigures> {
  await startMining(page);
  const served = () => stack.operandBlobs.bytesServedTotal;
  const a = randomMatrix(m * k, seed);
  const b = randomMatrix(k * n, seed + 1);
  const before = served();
  const started = performance.now();
  const job = await submitGemm(stack.url, m, n, k, a, b);
  await waitForJob(stack.url, job.id, JOB_TIMEOUT_MS);
  const wallSeconds = (performance.now() - started) / 1000;
  const operandBytes = served() - before;
  const resultBytes = 4 * m * n;
  const duty = page.getByTestId('duty-measured');
  const gpuBusy = (await duty.count()) > 0 ? Number((await duty.textContent())?.replace('%', '')) / 100 : null;
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.locator('[data-testid="phase"][data-phase="idle"]').waitFor({ timeout: 60_000 });
  const units = job.unitsTotal;
  const ops = 2 * m * n * k;
  return {
    shape: `${m}x${n}x${k}`,
    units,
    gflop: ops / 1e9,
    inlineBytesPerUnit: Math.round(inlineBytes(m, n, k) / units),
    operandBytesPerUnit: Math.round(operandBytes / units),
    resultBytesPerUnit: Math.round(resultBytes / units),
    opsPerByte: ops / (operandBytes + resultBytes),
    gpuBusy,
    wallSeconds,
    gflops: ops / wallSeconds / 1e9,
  };
}

const MiB = 1024 * 1024;
const pad = (text: string, width: number) => text.padStart(width);

function row(mode: string, f: JobFigures): string {
  return [
    pad(mode, 4), pad(f.shape, 16), pad(String(f.units), 5), pad((f.inlineBytesPerUnit / MiB).toFixed(2), 9),
    pad((f.operandBytesPerUnit / MiB).toFixed(2), 10), pad((f.resultBytesPerUnit / MiB).toFixed(2), 9), pad(f.opsPerByte.toFixed(0), 8),
    pad(f.gpuBusy === null ? '-' : `${Math.round(f.gpuBusy * 100)}%`, 8), pad(f.wallSeconds.toFixed(1), 8), pad(f.gflops.toFixed(2), 7),
  ].join(' ');
}

async function main(): Promise<void> {
  const { full, out } = options(process.argv.slice(2));
  const shapes = [...DEMO_SHAPES, EXTRA, ...(full ? [FULL] : [])];
  console.log('Ergon feed bench (issue 17): mining through the real network path, operand caching off and on.');
  console.log(`  shapes ${shapes.map((s) => s.join('x')).join(', ')} (MxNxK); one headless Chromium page (SwiftShader), duty setting 100%`);
  await build({ logLevel: 'warn' });
  const stack = await startStack({ serveApp: true, staticDir: resolve('dist') });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const results: { mode: string; operandCacheMiB: number; backOffUnderPressure: boolean; jobs: JobFigures[] }[] = [];
  try {
    console.log('');
    console.log('mode            shape units  inline MiB  fetched MiB  result MiB  ops/B  GPU busy  wall s  GFLOP/s   (MiB: per unit)');
    for (const mode of MODES) {
      const page = await startPage(browser, stack.url, mode);
      const jobs: JobFigures[] = [];
      for (const [i, shape] of shapes.entries()) {
        const figures = await mineOne(stack, page, shape, 100 + 10 * i);
        jobs.push(figures);
        console.log(row(mode.name, figures));
      }
      results.push({ mode: mode.name, operandCacheMiB: mode.operandCacheMiB, backOffUnderPressure: mode.backOffUnderPressure, jobs });
      await page.context().close();
    }
  } finally {
    await browser.close();
    await stack.stop();
  }
  console.log('');
  console.log('inline: what leases carried before (both blocks, every unit); fetched: operand bytes the coordinator served over HTTP;');
  console.log('ops/B: 2MNK over fetched + result bytes; GPU busy: the page\'s own measured figure over the job\'s last units (3 needed);');
  console.log('GFLOP/s: 2MNK over the wall time from submission (upload included) to the job\'s end.');
  await mkdir(dirname(out), { recursive: true });
  const report = { bench: 'feed', command: ['npm run bench:feed --', ...process.argv.slice(2)].join(' '), date: new Date().toISOString(), chromium: 'headless, SwiftShader WebGPU', results };
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`JSON: ${out}`);
}

main().catch((err: unknown) => {
  console.error(`bench:feed failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
