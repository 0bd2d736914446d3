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
// Then, in the same browser, the kernel alone (bench:gemm's page and "ours") on each job's shape and on one of its
// units' tiles, so that each job's mining rate is quoted against the kernel's rate of the same run.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { splitTiles, UNIT_TILE } from '../src/work/gemm/gemm.ts';
import { CHROMIUM_ARGS, chromiumPath, GPU_START_TIMEOUT_MS } from '../tests/helpers/chromium.ts';
import { randomMatrix } from '../tests/helpers/random.ts';
import type { TestStack } from '../tests/helpers/stack.ts';
import { shapeFlops, type Shape } from './gemm/bench-api.ts';
import { call, loadGemmPage, serveGemmPage } from './gemm/page.ts';
import { table } from './gemm/report.ts';
import { median } from './gemm/stats.ts';

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
const JOB_TIMEOUT_MS = 1_800_000;
/**
 * Kernel alone: shapes up to this many GFLOP get KERNEL_WARMUPS untimed runs and KERNEL_REPS timed ones (median);
 * larger ones (4096^3, 137 GFLOP, takes 20-60 s a run on SwiftShader) one timed run and no warm-up. They are timed
 * after the smaller shapes, which compiled the page's one kernel, and the page uploads their operands before timing,
 * so a warm-up would mostly repeat the run.
 */
const KERNEL_BIG_GFLOP = 10;
const KERNEL_WARMUPS = 1;
const KERNEL_REPS = 3;
/** bench:gemm's default seed: the same operands as its runs of the same shapes. */
const KERNEL_SEED = 20_240_401;

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
  /** Leases the page computed: fewer than the units where the coordinator leased spans of several. */
  leases: number;
  /** The submission alone: the requester's upload until the coordinator answered with the job. */
  submitSeconds: number;
  /** CPU time of this process over the job: the coordinator (and the bench's own driver, which idles). */
  coordinatorCpuSeconds: number;
  /** CPU time of the whole machine over the job (/proc/stat), out of cores x wall seconds: the rest is Chromium's. */
  machineCpuSeconds: number | null;
}

/** Busy CPU seconds of the whole machine since boot (Linux /proc/stat), or null elsewhere. */
async function machineCpuSeconds(): Promise<number | null> {
  try {
    const [cpu] = (await readFile('/proc/stat', 'utf8')).split('\n');
    const [user, nice, system, , , irq, softirq, steal] = cpu.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** The kernel alone on one shape (MxKxN, as bench:gemm writes it): bench:gemm's "seconds", median of the timed runs. */
type KernelFigures =
  | { shape: string; gflop: number; warmups: number; runSeconds: number[]; medianSeconds: number; gflops: number }
  | { shape: string; gflop: number; error: string };

interface KernelAlone {
  /** The config "ours" ran with, and how it was chosen ('autotune': the autotuner's pick on this adapter). */
  ours: { config: string; source: string };
  adapter: string;
  shapes: KernelFigures[];
}

/** A job's mining rate over the kernel's alone, on its whole shape and on one unit's tile; null where that failed. */
interface AgainstKernel {
  kernelShape: string;
  tileShape: string;
  kernelGflops: number | null;
  tileKernelGflops: number | null;
  miningOverKernel: number | null;
  miningOverTileKernel: number | null;
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

/** Bytes both blocks of every unit take, as the coordinator splits the job (256x256 output tiles, depth K). */
function inlineBytes(m: number, n: number, k: number): number {
  return splitTiles('', m, n, k, UNIT_TILE).reduce((bytes, unit) => bytes + 4 * k * (unit.rows + unit.cols), 0);
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
  const cpuBefore = process.cpuUsage();
  const machineBefore = await machineCpuSeconds();
  const started = performance.now();
  const job = await submitGemm(stack.url, m, n, k, a, b);
  const submitSeconds = (performance.now() - started) / 1000;
  await waitForJob(stack.url, job.id, JOB_TIMEOUT_MS);
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const machineAfter = await machineCpuSeconds();
  const leases = Number(await page.getByTestId('units-computed').textContent());
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
    leases,
    submitSeconds,
    coordinatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    machineCpuSeconds: machineBefore === null || machineAfter === null ? null : machineAfter - machineBefore,
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

/** Feed's [m, n, k] as bench:gemm's shape: C (m x n) = A (m x k) · B (k x n). */
const jobShape = ([m, n, k]: [number, number, number]): Shape => ({ m, k, n });
/** MxKxN, bench:gemm's order, squares too: beside feed's own MxNxK labels a bare "512" would be ambiguous. */
const label = ({ m, k, n }: Shape): string => `${m}x${k}x${n}`;

/** The job's first unit as the coordinator splits it (the largest: rows are spread evenly over the row tiles). */
function tileShape([m, n, k]: [number, number, number]): Shape {
  const [unit] = splitTiles('tile', m, n, k, UNIT_TILE);
  return { m: unit.rows, k, n: unit.cols };
}

/** bench:gemm's way: prepare "ours" (seeded operands, uploaded), untimed runs, timed runs; its "seconds". */
async function timeKernel(page: Page, shape: Shape): Promise<KernelFigures> {
  const gflop = shapeFlops(shape) / 1e9;
  const big = gflop > KERNEL_BIG_GFLOP;
  const warmups = big ? 0 : KERNEL_WARMUPS;
  await call(page, 'prepare', 'ours', shape, KERNEL_SEED);
  try {
    for (let i = 0; i < warmups; i++) await call(page, 'time', 'ours');
    const runSeconds: number[] = [];
    for (let i = 0; i < (big ? 1 : KERNEL_REPS); i++) runSeconds.push((await call(page, 'time', 'ours')).seconds);
    const medianSeconds = median(runSeconds);
    return { shape: label(shape), gflop, warmups, runSeconds, medianSeconds, gflops: gflop / medianSeconds };
  } finally {
    await call(page, 'release', 'ours');
  }
}

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];

function kernelLine(f: KernelFigures): string {
  const head = `  kernel alone ${pad(f.shape, 14)} (${f.gflop.toFixed(2)} GFLOP):`;
  if ('error' in f) return `${head} FAILED: ${f.error}`;
  return `${head} ${f.gflops.toFixed(2)} GFLOP/s, median ${f.medianSeconds.toFixed(3)} s (${f.warmups} warm-up + ${f.runSeconds.length} timed)`;
}

/**
 * Opens bench:gemm's page in a new context of `browser` and times the kernel on each shape, smallest first. A shape
 * that fails is recorded with its error and the rest still run: the mining figures before it took minutes.
 */
async function kernelAlone(browser: Browser, url: string, shapes: Shape[]): Promise<KernelAlone> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`  kernel page error: ${err.message}`));
    await loadGemmPage(page, url);
    const environment = await call(page, 'environment', { tune: true });
    const { vendor, architecture, description } = environment.adapter;
    const alone: KernelAlone = { ours: { config: environment.ours.config, source: environment.ours.source }, adapter: `${vendor} / ${architecture} / ${description}`, shapes: [] };
    console.log(`  ours: ${environment.ours.source} config ${environment.ours.config}`);
    for (const shape of [...shapes].sort((x, y) => shapeFlops(x) - shapeFlops(y))) {
      const figures = await timeKernel(page, shape).catch((err: unknown) => ({ shape: label(shape), gflop: shapeFlops(shape) / 1e9, error: firstLine(err) }));
      alone.shapes.push(figures);
      console.log(kernelLine(figures));
    }
    return alone;
  } finally {
    await context.close();
  }
}

function againstKernel(job: JobFigures, shape: [number, number, number], alone: KernelAlone | { error: string }): AgainstKernel {
  const gflopsOf = (s: Shape): number | null => {
    const found = 'error' in alone ? undefined : alone.shapes.find((f) => f.shape === label(s));
    return found && !('error' in found) ? found.gflops : null;
  };
  const whole = jobShape(shape);
  const tile = tileShape(shape);
  const kernelGflops = gflopsOf(whole);
  const tileKernelGflops = gflopsOf(tile);
  return {
    kernelShape: label(whole),
    tileShape: label(tile),
    kernelGflops,
    tileKernelGflops,
    miningOverKernel: kernelGflops === null ? null : job.gflops / kernelGflops,
    miningOverTileKernel: tileKernelGflops === null ? null : job.gflops / tileKernelGflops,
  };
}

const percent = (ratio: number | null): string => (ratio === null ? '-' : `${(100 * ratio).toFixed(1)}%`);
const rate = (gflops: number | null): string => (gflops === null ? 'FAILED' : gflops.toFixed(2));

function kernelTable(results: { mode: string; jobs: (JobFigures & AgainstKernel)[] }[]): string {
  return table(
    ['mode', 'shape MxNxK', 'mining GFLOP/s', 'kernel MxKxN', 'GFLOP/s', 'mining/kernel', 'tile MxKxN', 'GFLOP/s', 'mining/tile'],
    results.flatMap(({ mode, jobs }) => jobs.map((j) => [
      mode, j.shape, j.gflops.toFixed(2), j.kernelShape, rate(j.kernelGflops), percent(j.miningOverKernel), j.tileShape, rate(j.tileKernelGflops), percent(j.miningOverTileKernel),
    ])),
  );
}

/** Where each job's wall time went: its leases (spans join units), the upload, and the CPU the coordinator and the rest used. */
function timeTable(results: { mode: string; jobs: JobFigures[] }[]): string {
  const cores = availableParallelism();
  return table(
    ['mode', 'shape MxNxK', 'units', 'leases', 'submit s', 'wall s', 'coordinator CPU s', `machine CPU s (of ${cores} x wall)`],
    results.flatMap(({ mode, jobs }) => jobs.map((j) => [
      mode, j.shape, String(j.units), String(j.leases), j.submitSeconds.toFixed(1), j.wallSeconds.toFixed(1), j.coordinatorCpuSeconds.toFixed(1),
      j.machineCpuSeconds === null ? '-' : `${j.machineCpuSeconds.toFixed(1)} (${percent(j.machineCpuSeconds / (cores * j.wallSeconds))})`,
    ])),
  );
}

/** What the kernel-alone figures are and how they were taken: printed, and kept in the JSON. */
const KERNEL_NOTES = [
  'kernel: bench:gemm\'s page (bench/gemm/) and its "ours", the product\'s GemmKernel with the config the autotuner picks on this adapter (tuned afresh in that page), '
    + 'timed as bench:gemm times it: "seconds" = submit -> onSubmittedWorkDone with the operands and C resident on the GPU; GFLOP/s = 2MKN / the median "seconds".',
  'Same process and browser, one after the other: the kernel was timed after the mining modes, each mining page stopped and its context closed first, '
    + 'in a new context of the same Chromium; the coordinator stayed up, idle.',
  `Runs: shapes up to ${KERNEL_BIG_GFLOP} GFLOP ${KERNEL_WARMUPS} warm-up + ${KERNEL_REPS} timed (median); over it 1 timed run, no warm-up `
    + '(4096^3 takes 20-60 s a run on SwiftShader; the smaller shapes, timed first, compiled the kernel, and operands are uploaded before timing).',
  `tile: the job's first unit as the coordinator splits it (splitTiles, UNIT_TILE ${UNIT_TILE}): up to ${UNIT_TILE} rows x K x up to ${UNIT_TILE} cols, `
    + 'rows spread evenly over the row tiles (1000 rows: 4 tiles of 250): one unit; a page the coordinator measured fast computes spans of several.',
  'mining/kernel: the job\'s mining GFLOP/s above (wall time from submission, upload included) over the kernel alone on the whole shape; mining/tile: over the kernel alone on one tile.',
];

async function main(): Promise<void> {
  const { full, out } = options(process.argv.slice(2));
  const shapes = [...DEMO_SHAPES, EXTRA, ...(full ? [FULL] : [])];
  const kernelShapes = [...new Map(shapes.flatMap((s) => [jobShape(s), tileShape(s)]).map((s) => [label(s), s])).values()];
  console.log('Ergon feed bench (issue 17): mining through the real network path, operand caching off and on.');
  console.log(`  shapes ${shapes.map((s) => s.join('x')).join(', ')} (MxNxK); one headless Chromium page (SwiftShader), duty setting 100%`);
  console.log('  then, in the same browser, the kernel alone (bench:gemm\'s page, "ours", tuned) on each job\'s shape and one of its tiles');
  await build({ logLevel: 'warn' });
  const gemmPage = await serveGemmPage(true);
  const stack = await startStack({ serveApp: true, staticDir: resolve('dist') });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const mined: { mode: string; operandCacheMiB: number; backOffUnderPressure: boolean; jobs: JobFigures[] }[] = [];
  let kernel: KernelAlone | { error: string };
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
      mined.push({ mode: mode.name, operandCacheMiB: mode.operandCacheMiB, backOffUnderPressure: mode.backOffUnderPressure, jobs });
      await page.context().close();
    }
    console.log('');
    // Caught so that a failure here still leaves the mining figures, minutes of them, in the JSON.
    kernel = await kernelAlone(browser, gemmPage.url, kernelShapes).catch((err: unknown) => {
      console.error(`  kernel alone: FAILED: ${firstLine(err)}`);
      return { error: firstLine(err) };
    });
  } finally {
    await browser.close();
    await gemmPage.close();
    await stack.stop();
  }
  const results = mined.map((m) => ({ ...m, jobs: m.jobs.map((job, i) => ({ ...job, ...againstKernel(job, shapes[i], kernel) })) }));
  console.log('');
  console.log('Mining rate against the kernel alone, same run:');
  console.log(kernelTable(results));
  console.log('');
  console.log('Where the time went (SwiftShader\'s GPU is these same cores: CPU the coordinator or the page spends is not the kernel\'s):');
  console.log(timeTable(results));
  console.log('');
  console.log('inline: what leases carried before (both blocks, every unit); fetched: operand bytes the coordinator served over HTTP;');
  console.log('ops/B: 2MNK over fetched + result bytes; GPU busy: the page\'s own measured figure over the job\'s last units (3 needed);');
  console.log('GFLOP/s: 2MNK over the wall time from submission (upload included) to the job\'s end.');
  for (const note of KERNEL_NOTES) console.log(note);
  await mkdir(dirname(out), { recursive: true });
  const report = {
    bench: 'feed', command: ['npm run bench:feed --', ...process.argv.slice(2)].join(' '), date: new Date().toISOString(), chromium: 'headless, SwiftShader WebGPU',
    notes: KERNEL_NOTES, kernelAlone: kernel, results,
  };
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`JSON: ${out}`);
}

main().catch((err: unknown) => {
  console.error(`bench:feed failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
