// `npm run bench:gemm`: ours vs naive WGSL, TF.js WebGPU and onnxruntime-web (WebGPU, WASM) in one headless Chromium.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../tests/helpers/chromium.ts';
import { IMPLS, isImplName, shapeFlops, shapeLabel, type ImplName, type RunTiming, type Shape } from './gemm/bench-api.ts';
import {
  formatEndToEnd, formatFailures, formatTables, formatTargets, TARGET_FREIVALDS_OVER_COMPUTE, TARGET_MINING_OVER_KERNEL,
  TARGET_RATIO_SHAPES, TARGET_RATIO_VS_WEBGPU_PEERS, type BenchReport, type ImplOutcome, type ShapeResult, type TargetResult,
} from './gemm/report.ts';
import { call, loadGemmPage, serveGemmPage } from './gemm/page.ts';
import { median } from './gemm/stats.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_SIZES = ['256', '512', '1024', '1000x700x900', '1x4096x4096'];
const FULL_EXTRA_SIZES = ['2048'];
const DEFAULT_REPS = 5;
/** An untimed run first: it compiles pipelines and uploads; ORT WebGPU's first run took 5-24 s. */
const DEFAULT_WARMUP = 1;
const DEFAULT_E2E_SIZE = 1024;
const DEFAULT_VERIFY_REPS = 5;
const DEFAULT_SEED = 20_240_401;
const DEFAULT_OUT = 'bench/results/gemm.json';
/** Page console lines kept in the JSON. */
const MAX_PAGE_MESSAGES = 200;

const USAGE = `npm run bench:gemm -- [options]
  --sizes=LIST      shapes, comma-separated: N (square) or MxKxN (A is MxK, B is KxN)
                    default ${DEFAULT_SIZES.join(',')}; --full adds ${FULL_EXTRA_SIZES.join(',')}
  --full            also the sizes above (2048 takes ~15 more minutes on SwiftShader)
  --impls=LIST      default ${IMPLS.join(',')}
  --reps=N          timed runs per implementation and shape, default ${DEFAULT_REPS} (median reported)
  --warmup=N        untimed runs first, default ${DEFAULT_WARMUP}
  --e2e=N           end-to-end mining job N^3 (0 skips), default ${DEFAULT_E2E_SIZE}
  --verify-reps=N   timed Freivalds runs per shape, default ${DEFAULT_VERIFY_REPS}
  --no-tune         run "ours" with GemmKernel.create(device)'s default config instead of the autotuner's pick
  --no-isolation    serve without COOP/COEP: not crossOriginIsolated, so ORT WASM runs 1 thread
  --seed=N          operand seed, default ${DEFAULT_SEED}
  --out=PATH        JSON output, default ${DEFAULT_OUT} (bench/results/*.scratch*.json are git-ignored)`;

interface Options {
  sizes: Shape[];
  impls: ImplName[];
  reps: number;
  warmup: number;
  e2eSize: number;
  verifyReps: number;
  tune: boolean;
  isolate: boolean;
  seed: number;
  out: string;
}

function parseShape(text: string): Shape {
  const parts = text.toLowerCase().split('x').map((p) => Number(p));
  if (!parts.every((p) => Number.isInteger(p) && p >= 1) || (parts.length !== 1 && parts.length !== 3)) {
    throw new Error(`bad shape "${text}": write N or MxKxN`);
  }
  const [m, k = m, n = m] = parts;
  return { m, k, n };
}

function parseOptions(argv: string[]): Options {
  const values = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${arg}\n${USAGE}`);
    values.set(match[1], match[2] ?? 'true');
  }
  const known = ['sizes', 'full', 'impls', 'reps', 'warmup', 'e2e', 'verify-reps', 'no-tune', 'no-isolation', 'seed', 'out'];
  for (const name of values.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name}\n${USAGE}`);
  const int = (name: string, fallback: number, min: number): number => {
    const raw = values.get(name);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return value;
  };
  const sizes = values.get('sizes')?.split(',') ?? [...DEFAULT_SIZES, ...(values.has('full') ? FULL_EXTRA_SIZES : [])];
  const impls = (values.get('impls') ?? IMPLS.join(',')).split(',').map((name) => {
    if (!isImplName(name)) throw new Error(`unknown impl ${name}; known: ${IMPLS.join(', ')}`);
    return name;
  });
  return {
    sizes: sizes.map(parseShape),
    impls,
    reps: int('reps', DEFAULT_REPS, 1),
    warmup: int('warmup', DEFAULT_WARMUP, 0),
    e2eSize: int('e2e', DEFAULT_E2E_SIZE, 0),
    verifyReps: int('verify-reps', DEFAULT_VERIFY_REPS, 1),
    tune: !values.has('no-tune'),
    isolate: !values.has('no-isolation'),
    seed: int('seed', DEFAULT_SEED, 0),
    out: values.get('out') ?? DEFAULT_OUT,
  };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];
const seconds = (s: number): string => `${s.toFixed(s < 10 ? 2 : 1)} s`;

function finish(outcomes: Partial<Record<ImplName, ImplOutcome>>, shape: Shape): void {
  for (const [impl, o] of Object.entries(outcomes) as [ImplName, ImplOutcome][]) {
    if (!o.ok) continue;
    const med = median(o.runs.map((r) => r.seconds));
    const wall = median(o.runs.map((r) => r.wallSeconds));
    outcomes[impl] = { ...o, medianSeconds: med, gflops: shapeFlops(shape) / med / 1e9, medianWallSeconds: wall, wallGflops: shapeFlops(shape) / wall / 1e9 };
  }
}

async function benchShape(page: Page, shape: Shape, options: Options, log: (line: string) => void): Promise<ShapeResult> {
  const label = shapeLabel(shape);
  const outcomes: Partial<Record<ImplName, ImplOutcome>> = {};
  const fail = (impl: ImplName, stage: 'prepare' | 'run' | 'check', err: unknown) => {
    const before = outcomes[impl];
    outcomes[impl] = { ok: false, info: before?.info, stage, error: message(err), warmups: before?.warmups ?? [], runs: before?.runs ?? [] };
    log(`  ${label} ${impl}: FAILED at ${stage}: ${message(err)}`);
  };
  const live = () => options.impls.filter((i) => outcomes[i]?.ok);
  const placeholder = { medianSeconds: NaN, gflops: NaN, medianWallSeconds: NaN, wallGflops: NaN };
  const noCheck = { maxRelError: NaN, maxAbsError: NaN, checkedElements: 0, reference: 'full' as const, checkedRows: 0 };

  for (const impl of options.impls) {
    const started = performance.now();
    try {
      const info = await call(page, 'prepare', impl, shape, options.seed);
      outcomes[impl] = { ok: true, info, warmups: [], runs: [], ...placeholder, check: noCheck };
      log(`  ${label} ${impl}: prepared in ${seconds((performance.now() - started) / 1000)}`);
    } catch (err) {
      fail(impl, 'prepare', err);
    }
  }
  // Warm-ups, then timed runs interleaved across implementations, so that load drifting on this shared
  // machine hurts all of them alike.
  const rounds: { kind: 'warmups' | 'runs'; index: number }[] = [
    ...Array.from({ length: options.warmup }, (_, index) => ({ kind: 'warmups' as const, index })),
    ...Array.from({ length: options.reps }, (_, index) => ({ kind: 'runs' as const, index })),
  ];
  for (const round of rounds) {
    for (const impl of live()) {
      const o = outcomes[impl];
      if (!o?.ok) continue;
      try {
        const timing: RunTiming = await call(page, 'time', impl);
        o[round.kind].push(timing);
        log(`  ${label} ${impl}: ${round.kind === 'warmups' ? 'warm-up' : 'run'} ${round.index + 1}: ${seconds(timing.seconds)} `
          + `(${(shapeFlops(shape) / timing.seconds / 1e9).toFixed(3)} GFLOP/s)`);
      } catch (err) {
        fail(impl, 'run', err);
      }
    }
  }
  for (const impl of live()) {
    const o = outcomes[impl];
    if (!o?.ok) continue;
    try {
      o.check = await call(page, 'check', impl);
    } catch (err) {
      fail(impl, 'check', err);
    }
  }
  finish(outcomes, shape);

  const oursOutcome = outcomes.ours;
  const oursOver: Partial<Record<ImplName, number>> = {};
  for (const impl of options.impls) {
    const peer = outcomes[impl];
    if (impl !== 'ours' && impl !== 'ours-f16' && oursOutcome?.ok && peer?.ok) oursOver[impl] = oursOutcome.gflops / peer.gflops;
  }
  let verification: ShapeResult['verification'];
  const verifyImpl = live()[0];
  if (verifyImpl) {
    try {
      const cost = await call(page, 'verificationCost', verifyImpl, options.verifyReps);
      const oursSeconds = oursOutcome?.ok ? oursOutcome.medianSeconds : NaN;
      verification = { ...cost, overOursCompute: cost.freivaldsSeconds / oursSeconds, impl: verifyImpl };
    } catch (err) {
      verification = { error: message(err) };
    }
  }
  for (const impl of options.impls) {
    await call(page, 'release', impl).catch((err: unknown) => log(`  ${label} ${impl}: release failed: ${message(err)}`));
  }
  return { label, shape, flops: shapeFlops(shape), impls: outcomes, oursOver, verification };
}

function targets(shapes: ShapeResult[], e2e: BenchReport['endToEnd']): TargetResult[] {
  const out: TargetResult[] = [];
  for (const label of TARGET_RATIO_SHAPES) {
    const s = shapes.find((x) => x.label === label);
    for (const peer of ['tfjs', 'ort-webgpu'] as const) {
      const ratio = s?.oursOver[peer];
      out.push({
        name: `ours / ${peer} at ${label}`,
        value: ratio ?? null,
        target: `>= ${TARGET_RATIO_VS_WEBGPU_PEERS}`,
        met: ratio === undefined ? null : ratio >= TARGET_RATIO_VS_WEBGPU_PEERS,
        note: ratio === undefined ? (s ? 'not measured (an implementation failed or was not selected)' : `size ${label} not in this run${label === '2048' ? ' (use --full)' : ''}`) : undefined,
      });
    }
  }
  const ok = e2e && !('error' in e2e) ? (e2e.runs.find((r) => r.mode === 'pipelined') ?? e2e.runs[0]) : undefined;
  // Against the same run's own gpuSeconds: the same units in the same minutes. (Comparing with another run's
  // kernel rate measured the machine's load drifting more than the path's overhead.)
  const fraction = ok?.miningOverKernel;
  out.push({
    name: `end-to-end mining rate / raw kernel rate${ok ? ` (${ok.mode}, ${ok.size}^3 job)` : ''}`,
    value: fraction ?? null,
    target: `>= ${TARGET_MINING_OVER_KERNEL}`,
    met: fraction === undefined ? null : fraction >= TARGET_MINING_OVER_KERNEL,
  });
  out.push({
    name: `Freivalds time / job compute time${ok ? ` (${ok.size}^3 job)` : ''}`,
    value: ok?.freivaldsOverCompute ?? null,
    target: `<= ${TARGET_FREIVALDS_OVER_COMPUTE}`,
    met: ok ? ok.freivaldsOverCompute <= TARGET_FREIVALDS_OVER_COMPUTE : null,
  });
  return out;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const began = performance.now();
  const log = (line: string) => console.log(line);
  const executable = chromiumPath();

  log('Ergon GEMM bench (issue 4): GFLOP/s, median of timed runs after warm-up, one headless Chromium, one adapter.');
  log(`  sizes ${options.sizes.map(shapeLabel).join(', ')} (MxKxN; defaults ${DEFAULT_SIZES.join(', ')}, --full adds ${FULL_EXTRA_SIZES.join(', ')})`);
  log(`  impls ${options.impls.join(', ')}; ${options.warmup} warm-up + ${options.reps} timed runs each, interleaved; end-to-end job ${options.e2eSize || 'skipped'}; seed ${options.seed}`);
  log(`  cross-origin isolation ${options.isolate ? 'on (COOP/COEP)' : 'off'}; ours with ${options.tune ? 'the autotuner\'s config where available' : 'the default config'}`);

  const server = await serveGemmPage(options.isolate);
  const browser = await chromium.launch({ executablePath: executable, headless: true, args: CHROMIUM_ARGS });
  const pageMessages: string[] = [];
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() !== 'error' && msg.type() !== 'warning') return;
      const line = `${msg.type()}: ${msg.text()}`;
      if (pageMessages.length < MAX_PAGE_MESSAGES) pageMessages.push(line);
      log(`  page ${line.slice(0, 300)}`);
    });
    page.on('pageerror', (err) => {
      const line = `pageerror: ${err.message}`;
      if (pageMessages.length < MAX_PAGE_MESSAGES) pageMessages.push(line);
      log(`  page ${line}`);
    });
    await loadGemmPage(page, server.url);
    const environment = await call(page, 'environment', { tune: options.tune });
    const a = environment.adapter;
    log(`  browser Chromium ${browser.version()}; adapter ${a.vendor} / ${a.architecture} / "${a.description}", fallback ${a.isFallbackAdapter}; `
      + `crossOriginIsolated ${environment.crossOriginIsolated}, ${environment.hardwareConcurrency} logical cores`);
    log(`  ours: ${environment.ours.source} config ${environment.ours.config}`);
    if (options.impls.includes('ours-f16') && !a.features.includes('shader-f16')) {
      options.impls = options.impls.filter((impl) => impl !== 'ours-f16');
      log('  ours-f16: not run, this adapter has no shader-f16');
    }
    log('');

    const shapes: ShapeResult[] = [];
    for (const shape of options.sizes) {
      log(`shape ${shapeLabel(shape)} (${(shapeFlops(shape) / 1e9).toFixed(3)} GFLOP):`);
      shapes.push(await benchShape(page, shape, options, log));
    }

    let endToEnd: BenchReport['endToEnd'] = null;
    if (options.e2eSize > 0) {
      log(`end-to-end: mining a ${options.e2eSize}^3 job through the real protocol code and GPU worker...`);
      try {
        const runs = await call(page, 'endToEnd', { size: options.e2eSize, seed: options.seed + 7, modes: ['serial', 'pipelined'] });
        const same = shapes.find((s) => s.label === String(options.e2eSize))?.impls.ours;
        endToEnd = { runs, oursKernelAtSameSizeGflops: same?.ok ? same.gflops : undefined };
      } catch (err) {
        endToEnd = { error: message(err) };
      }
    }

    const timingIncludes: Partial<Record<ImplName, string>> = {};
    for (const s of shapes) {
      for (const impl of options.impls) {
        const info = s.impls[impl]?.info;
        if (info && !timingIncludes[impl]) timingIncludes[impl] = info.timing;
      }
    }
    const notes = [
      'GFLOP/s = 2*M*K*N / median(seconds) / 1e9. "seconds" is each implementation\'s compute time with operands resident (see timingIncludes); '
        + '"wallSeconds" adds read-back of C to JavaScript. Ratios use "seconds".',
      'Ours and naive are timed submit -> onSubmittedWorkDone as seen from JS, as the peers are (ours also records its passes on the GPU\'s clock, timestamp queries, where present: a table of its own); TF.js and ORT WebGPU include their '
        + 'JS-side op dispatch / session.run overhead before the submit, which is part of using them.',
      'Errors: max |C - ref| / max |ref| against an f64 CPU reference; products over 2^30 multiply-adds are checked on a seeded sample of whole rows of C.',
      'Freivalds cost (verify/ours column): freivalds() from src/work/gemm on the whole product in the page\'s V8 (the coordinator runs the same code in Node\'s V8), '
        + 'median of --verify-reps runs, over ours\' median compute time for the same shape.',
      'End-to-end: the job is split by src/work/gemm (UNIT_TILE tiles); lease and result go through encodeMessage, frames(), Reassembler and parse*Message in memory (no WebRTC), '
        + 'the unit runs on src/miner/gpu-client.ts\'s worker (the product\'s worker, which tunes its own kernel), and Freivalds verifies each result in the page. '
        + '"serial": verdict before the next lease. "pipelined" (the mining loop\'s way, and the one the target uses): the next lease is encoded and parsed, and the previous '
        + 'result verified, while the worker computes; on SwiftShader that page work competes with the "GPU" for the same 2 cores. '
        + 'Raw kernel rate = ops / sum of the worker\'s gpuSeconds for the same units: the compute passes on the GPU\'s clock where the adapter has timestamp queries (the stricter figure; the ratio against submit-to-completion time is printed beside it).',
      `ORT WASM threads: ${environment.crossOriginIsolated ? `${environment.hardwareConcurrency} (crossOriginIsolated via COOP/COEP)` : '1 (not crossOriginIsolated)'}.`,
    ];
    if (a.isFallbackAdapter || a.architecture === 'swiftshader') {
      notes.push('The adapter is SwiftShader (WebGPU on the CPU): GPU-kernel ratios here say little about real GPUs, and ORT WASM (CPU SIMD) is expected to beat every WebGPU implementation.');
    }

    const report: BenchReport = {
      benchmark: 'gemm',
      createdAt: new Date().toISOString(),
      command: ['npm run bench:gemm --', ...process.argv.slice(2)].join(' '),
      settings: { ...options, sizes: options.sizes.map(shapeLabel) },
      host: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpus().map((c) => c.model).filter((m, i, all) => all.indexOf(m) === i), logicalCores: cpus().length, loadavg: loadavg() },
      browser: { version: browser.version(), executable, args: CHROMIUM_ARGS },
      environment,
      timingIncludes,
      notes,
      shapes,
      endToEnd,
      targets: targets(shapes, endToEnd),
      pageMessages,
      durationSeconds: (performance.now() - began) / 1000,
    };

    log('');
    log(formatTables(report, options.impls));
    const failures = formatFailures(report);
    if (failures.length > 0) log(['', 'Failures:', ...failures].join('\n'));
    log('');
    for (const line of formatEndToEnd(endToEnd)) log(line);
    log('');
    log('What each time includes:');
    for (const [impl, text] of Object.entries(timingIncludes)) log(`  ${impl}: ${text}`);
    log('Notes:');
    for (const note of notes) log(`  - ${note}`);
    log('');
    log(`Targets (issue 4), adapter ${a.vendor}/${a.architecture}:`);
    for (const line of formatTargets(report.targets)) log(line);

    const outPath = resolve(REPO, options.out);
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, `${JSON.stringify(report, null, 2)}\n`);
    log('');
    log(`Wrote ${options.out} in ${seconds(report.durationSeconds)} total.`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:gemm failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
