// `npm run bench:onnx`: per model (PP-OCRv4 det and rec, a generated transformer block), its exact ops per inference
// and its speed on the miners' engines, onnxruntime-web's WebGPU and WASM EPs in one headless Chromium (the project's
// flags; here WebGPU is SwiftShader, on the CPU), and on onnxruntime-node's CPU EP, the coordinator's audit runtime;
// hence what auditing costs the coordinator as a fraction of what the miners compute.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { AUDIT_FLOOR } from '../src/coordinator/audits.ts';
import { ModelStore } from '../src/coordinator/model-store.ts';
import { seeded, transformerBlockModel } from '../tests/helpers/onnx-builder.ts';
import { openOrtPage } from './ort-page.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPS = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3);
/** Per engine in Chromium: a first run (shader compilation, buffer sizing) is not timed. */
const WARM_RUNS = 1;
/**
 * Timed runs stop once they pass this many seconds (at least one): WebGPU on SwiftShader takes over a minute per rec
 * batch, and the default run should stay within about five minutes.
 */
const ENGINE_BUDGET_SECONDS = 20;
const ENGINES = ['webgpu', 'wasm'] as const;
type Engine = (typeof ENGINES)[number];

// d_model 512, 8 heads, 256 tokens: 1.75 GFLOP an inference, about four fifths of it in the MLP and projections.
const BLOCK = { seq: 256, dModel: 512, heads: 8 };

interface Case { name: string; sha: string; sample: number[]; batch: number }
interface EngineTiming { medianSeconds: number; runs?: number; error?: undefined }

const dir = await mkdtemp(join(tmpdir(), 'ergon-bench-onnx-'));
try {
  const store = await ModelStore.open(join(dir, 'store'));
  const block = await store.add(transformerBlockModel(BLOCK.seq, BLOCK.dModel, BLOCK.heads, 1));
  if (!block.ok) throw new Error(block.error.message);
  const cases: Case[] = [
    { name: 'PP-OCRv4 det', sha: store.shipped.det, sample: [3, 256, 896], batch: 1 },
    { name: 'PP-OCRv4 rec', sha: store.shipped.rec, sample: [3, 48, 320], batch: 8 },
    { name: `transformer block d${BLOCK.dModel} h${BLOCK.heads} s${BLOCK.seq}`, sha: block.value.sha256, sample: [1, BLOCK.seq, BLOCK.dModel], batch: 1 },
  ];

  const ort = await openOrtPage(dir, 'bench:onnx', store, cases.map((c) => c.sha));
  const { page, adapter } = ort;
  const rows = [];
  try {
    console.log(`bench:onnx: Chromium ${ort.chromium}, WebGPU adapter ${adapter}; ${WARM_RUNS} warm-up + up to ${REPS} timed runs each (fewer past ${ENGINE_BUDGET_SECONDS} s), median`);
    for (const c of cases) {
      const profile = await store.measure(c.sha, [c.sample]);
      const shape = [c.batch, ...c.sample];
      const gflop = (Number(profile.opsPerSample) * c.batch) / 1e9;
      const node = await nodeSeconds(store, c.sha, shape);
      const web: Partial<Record<Engine, EngineTiming | { error: string }>> = {};
      for (const engine of ENGINES) web[engine] = await chromiumSeconds(page, c.sha, shape, engine);
      const timed = ENGINES.flatMap((e) => { const t = web[e]; return t && t.error === undefined ? [{ engine: e, seconds: t.medianSeconds }] : []; });
      const fastest = timed.sort((a, b) => a.seconds - b.seconds)[0];
      rows.push({
        model: c.name, shape: shape.join('x'), gflop,
        webgpu: summary(web.webgpu, c.batch, gflop), wasm: summary(web.wasm, c.batch, gflop), node: summary({ medianSeconds: node }, c.batch, gflop),
        minerEngine: fastest?.engine ?? null,
        // Re-running a unit on the coordinator against computing it on the miner's faster engine, at the audit rate
        // floor (an established miner); a new key's every unit is audited, i.e. 1 / AUDIT_FLOOR times this.
        auditCostAtFloor: fastest ? (AUDIT_FLOOR * node) / fastest.seconds : null,
      });
      console.log(`  ${c.name} done`);
    }
  } finally {
    await ort.close();
  }
  const fmt = (s: ReturnType<typeof summary>) => ('error' in s && s.error !== undefined ? `failed: ${s.error.slice(0, 40)}` : `${s.inferencesPerSecond.toFixed(2)}/s ${s.gflopPerSecond.toFixed(1)} GFLOP/s`);
  console.table(rows.map((r) => ({
    model: r.model, shape: r.shape, GFLOP: r.gflop.toFixed(2), 'WebGPU EP': fmt(r.webgpu), 'WASM EP': fmt(r.wasm), 'node CPU (audit)': fmt(r.node),
    miner: r.minerEngine, 'audit cost @5%': r.auditCostAtFloor === null ? '-' : `${(100 * r.auditCostAtFloor).toFixed(1)}%`,
  })));
  const out = resolve(REPO, 'bench/results/onnx.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({
    note: 'WebGPU and WASM: onnxruntime-web in headless Chromium (one thread, no cross-origin isolation); node: onnxruntime-node CPU EP, the coordinator\'s audit runtime. auditCostAtFloor: AUDIT_FLOOR x node seconds / the faster web engine\'s seconds.',
    adapter, cpu: cpus()[0]?.model, cores: cpus().length, loadavg: loadavg(), reps: REPS, auditFloor: AUDIT_FLOOR, rows,
  }, null, 2)}\n`);
  console.log(`wrote ${out}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

function summary(t: EngineTiming | { error: string } | undefined, batch: number, gflop: number) {
  if (!t || t.error !== undefined) return { error: t?.error ?? 'not run' };
  return { medianSeconds: t.medianSeconds, runs: t.runs ?? REPS, inferencesPerSecond: batch / t.medianSeconds, gflopPerSecond: gflop / t.medianSeconds };
}

async function nodeSeconds(store: ModelStore, sha: string, shape: number[]): Promise<number> {
  const inputs = new Map([['x', { shape, data: seeded(shape.reduce((n, d) => n * d, 1), 7) }]]);
  await store.runner.run(sha, inputs); // warm-up
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const started = performance.now();
    await store.runner.run(sha, inputs);
    times.push((performance.now() - started) / 1000);
  }
  return median(times);
}

/** One model on one EP in the page: a session, seeded inputs, warm-up and timed runs (outputs read back each time). */
async function chromiumSeconds(page: Page, sha: string, shape: number[], engine: Engine): Promise<EngineTiming | { error: string }> {
  const result = await page.evaluate(async ({ sha, shape, engine, warm, reps, budget }) => {
    try {
      const ort = (await import(/* @vite-ignore */ new URL('/vendor/ort/ort.webgpu.bundle.min.mjs', location.href).href)) as typeof import('onnxruntime-web');
      ort.env.logLevel = 'error';
      const model = new Uint8Array(await (await fetch(`/models/${sha}.onnx`)).arrayBuffer());
      const session = await ort.InferenceSession.create(model, { executionProviders: [engine], graphOptimizationLevel: 'all' });
      const count = shape.reduce((n, d) => n * d, 1);
      const data = new Float32Array(count);
      let state = 7;
      for (let i = 0; i < count; i++) {
        state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
        data[i] = state / 1_073_741_824 - 1;
      }
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
      const times: number[] = [];
      for (let i = 0; i < warm + reps; i++) {
        const started = performance.now();
        const outputs = await session.run(feeds);
        for (const output of Object.values(outputs)) output.dispose();
        if (i >= warm) times.push((performance.now() - started) / 1000);
        if (times.length > 0 && times.reduce((a, b) => a + b, 0) >= budget) break;
      }
      await session.release();
      return { times };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }, { sha, shape, engine, warm: WARM_RUNS, reps: REPS, budget: ENGINE_BUDGET_SECONDS });
  if ('error' in result && result.error !== undefined) return { error: result.error };
  return { medianSeconds: median(result.times ?? []), runs: result.times?.length ?? 0 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
