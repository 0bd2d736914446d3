// `npm run bench:tolerance`: how much of the audit's tolerance honest miners use. Per model (PP-OCRv4 det and rec on
// rendered text normalised as the OCR pipeline does and on seeded noise, a generated transformer block, the tests'
// MLP), over many seeded inputs, onnxruntime-web's WASM and WebGPU EPs in headless Chromium (here WebGPU is
// SwiftShader, on the CPU) against onnxruntime-node, the coordinator's audit runtime: per element the fraction of the
// tolerance used, |web - node| / (abs + rel (|node| + RMS of node's output)) (src/work/onnx/tolerance.ts, the audit's
// own rule), its 99th percentile and largest, and the margin, 1 / the largest.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { decodePage } from '../src/coordinator/page-image.ts';
import { ModelStore } from '../src/coordinator/model-store.ts';
import type { Tolerance } from '../src/work/onnx/model.ts';
import { normalizeU8, type Normalize } from '../src/work/onnx/normalize.ts';
import { toleranceFractions, worstElement } from '../src/work/onnx/tolerance.ts';
import { DET_NORMALIZE, detectionInput, recognitionBatches, REC_NORMALIZE } from '../src/work/ocr/ocr.ts';
import { mlpModel, seeded, transformerBlockModel } from '../tests/helpers/onnx-builder.ts';
import { renderTextPage } from '../tests/helpers/text-page.ts';
import { openOrtPage } from './ort-page.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Inputs per model on WASM and node; half rendered text (for the OCR models), half seeded noise. */
const INPUTS = Number(process.argv.find((a) => a.startsWith('--inputs='))?.slice(9) ?? 24);
/**
 * WebGPU on SwiftShader takes seconds per OCR inference: its inputs stop once this many seconds have passed on a model
 * (at least MIN_WEBGPU_INPUTS), so the run stays within a few minutes.
 */
const WEBGPU_BUDGET_SECONDS = Number(process.argv.find((a) => a.startsWith('--webgpu-seconds='))?.slice(17) ?? 40);
const MIN_WEBGPU_INPUTS = 4;
const ENGINES = ['wasm', 'webgpu'] as const;
type Engine = (typeof ENGINES)[number];
const PERCENTILE = 0.99;

// Small OCR shapes, so that SwiftShader gets through several: a 320x96 page of two lines (det's input is the page's
// size, rounded to 32), one line cropped at height 48 and padded to 256 (rec); a transformer block with the
// bench:onnx block's reduction lengths (d_model 512, MLP 2048) on 64 tokens; the integration tests' MLP.
const DET_PAGE = { width: 320, height: 96 };
const REC_LINE = { width: 256, height: 48 };
const BLOCK = { seq: 64, dModel: 512, heads: 8 };
const MLP = { in: 256, hidden: 2048, out: 256 };

const WORDS = ['Invoice', 'total', 'EUR', '58.40', 'quick', 'brown', 'fox', 'Paid', 'job', '#42', 'OK', 'Ergon', 'unit', 'receipt', '2024-117', 'GPU', 'node', 'lease', 'miner', 'audit'];

type Input = { kind: 'text' | 'noise'; shape: number[]; data: Float32Array };
interface Case { name: string; sha: string; tolerance: Tolerance; inputs: Input[] }

/** A deterministic generator of indices (the inputs' seeds). */
function picker(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return Math.floor((state / 2_147_483_648) * n);
  };
}

const words = (pick: (n: number) => number, count: number) => Array.from({ length: count }, () => WORDS[pick(WORDS.length)]).join(' ');

async function textInput(page: Page, lines: string[], size: { width: number; height: number }, stage: 'det' | 'rec'): Promise<Input> {
  const image = await decodePage(await renderTextPage(page, { lines, ...size }), 'image/png');
  const { shape, pixels } = stage === 'det'
    ? detectionInput(image)
    : recognitionBatches(image, [[[0, 0], [image.width, 0], [image.width, image.height], [0, image.height]]])[0];
  return { kind: 'text', shape, data: normalizeU8(pixels, shape, stage === 'det' ? DET_NORMALIZE : REC_NORMALIZE) };
}

/** Noise over the normalised pixels' range: uint8 values through the stage's own normalisation. */
function noiseInput(shape: number[], normalize: Normalize, seed: number): Input {
  const pixels = Uint8Array.from(seeded(shape.reduce((n, d) => n * d, 1), seed), (x) => Math.floor((x + 1) * 128));
  return { kind: 'noise', shape, data: normalizeU8(pixels, shape, normalize) };
}

const dir = await mkdtemp(join(tmpdir(), 'ergon-bench-tolerance-'));
try {
  const store = await ModelStore.open(join(dir, 'store'));
  const block = await store.add(transformerBlockModel(BLOCK.seq, BLOCK.dModel, BLOCK.heads, 1));
  const mlp = await store.add(mlpModel(MLP.in, MLP.hidden, MLP.out, 3));
  if (!block.ok) throw new Error(block.error.message);
  if (!mlp.ok) throw new Error(mlp.error.message);

  const shas = [store.shipped.det, store.shipped.rec, block.value.sha256, mlp.value.sha256];
  const ort = await openOrtPage(dir, 'bench:tolerance', store, shas);
  const { page, adapter } = ort;
  const rows = [];
  const cheats: { model: string; scaledBy099: number }[] = [];
  try {
    console.log(`bench:tolerance: Chromium ${ort.chromium}, WebGPU adapter ${adapter}; ${INPUTS} inputs per model (WebGPU: until ${WEBGPU_BUDGET_SECONDS} s, at least ${MIN_WEBGPU_INPUTS})`);

    // Inputs alternate text and noise, so that WebGPU's first few hold both.
    const pick = picker(11);
    const det: Input[] = [];
    const rec: Input[] = [];
    for (let i = 0; i < INPUTS; i++) {
      const textual = i % 2 === 0;
      det.push(textual ? await textInput(page, [words(pick, 2), words(pick, 2)], DET_PAGE, 'det') : noiseInput([1, 3, DET_PAGE.height, DET_PAGE.width], DET_NORMALIZE, 100 + i));
      rec.push(textual ? await textInput(page, [words(pick, 1 + pick(2))], REC_LINE, 'rec') : noiseInput([1, 3, REC_LINE.height, REC_LINE.width], REC_NORMALIZE, 200 + i));
    }
    const seededInputs = (shape: number[], base: number): Input[] => Array.from({ length: INPUTS }, (_, i) => ({ kind: 'noise', shape, data: seeded(shape.reduce((n, d) => n * d, 1), base + i) }));
    const cases: Case[] = [
      { name: 'PP-OCRv4 det', sha: store.shipped.det, inputs: det },
      { name: 'PP-OCRv4 rec', sha: store.shipped.rec, inputs: rec },
      { name: `transformer block d${BLOCK.dModel} h${BLOCK.heads} s${BLOCK.seq}`, sha: block.value.sha256, inputs: seededInputs([1, 1, BLOCK.seq, BLOCK.dModel], 300) },
      { name: `test MLP ${MLP.in}-${MLP.hidden}-${MLP.out}`, sha: mlp.value.sha256, inputs: seededInputs([4, MLP.in], 400) },
    ].map((c) => ({ ...c, tolerance: store.model(c.sha)?.tolerance ?? fail(`${c.name}: not in the store`) }));

    for (const c of cases) {
      const references = [];
      for (const input of c.inputs) references.push(await store.runner.run(c.sha, new Map([['x', input]])));
      // The tests' cheat beside the honest engines: every output x0.99, the least of its worst elements over the inputs
      // (for the OCR models, those with text: det's map of a noise image is near 0 everywhere, and 0.99 of it is too).
      const textual = c.inputs.some((x) => x.kind === 'text');
      const scaledCheat = Math.min(...references.filter((_, i) => !textual || c.inputs[i].kind === 'text')
        .map((ref) => Math.max(...[...ref.values()].map((o) => worstElement(o.data.map((x) => x * 0.99), o.data, c.tolerance).fraction))));
      cheats.push({ model: c.name, scaledBy099: scaledCheat });
      for (const engine of ENGINES) {
        const usage = new Map<string, Float32Array[]>();
        const worst = new Map<string, { ratio: number; got: number; want: number }>();
        const started = performance.now();
        let ran = 0;
        let error: string | undefined;
        await page.evaluate(openSession, { sha: c.sha, engine });
        for (const [i, input] of c.inputs.entries()) {
          if (engine === 'webgpu' && ran >= MIN_WEBGPU_INPUTS && (performance.now() - started) / 1000 > WEBGPU_BUDGET_SECONDS) break;
          const got = await page.evaluate(runSession, { shape: input.shape, data: base64(input.data) });
          if ('error' in got) {
            error = got.error;
            break;
          }
          for (const [name, want] of references[i]) {
            const web = fromBase64(got.outputs[name] ?? fail(`${c.name} on ${engine}: no output ${name}`));
            const ratios = toleranceFractions(web, want.data, c.tolerance);
            const w = worstElement(web, want.data, c.tolerance);
            if (!(w.fraction <= (worst.get(name)?.ratio ?? -1))) worst.set(name, { ratio: w.fraction, got: web[w.index], want: want.data[w.index] });
            usage.set(name, [...(usage.get(name) ?? []), ratios]);
          }
          ran++;
        }
        await page.evaluate(() => (globalThis as unknown as { benchSession?: { release(): Promise<void> } }).benchSession?.release());
        const perOutput = [...usage].map(([name, parts]) => ({ name, ...fractions(parts), worst: worst.get(name) }));
        const all = fractions([...usage.values()].flat());
        rows.push({
          model: c.name, sha256: c.sha, engine, inputs: ran, textInputs: c.inputs.slice(0, ran).filter((x) => x.kind === 'text').length,
          tolerance: c.tolerance, elements: all.elements, p99: all.p99, max: all.max, margin: all.max > 0 ? 1 / all.max : null, perOutput,
          seconds: (performance.now() - started) / 1000, error,
        });
        console.log(`  ${c.name} on ${engine}: ${ran} inputs${error ? `, failed: ${error}` : ''}`);
      }
    }
  } finally {
    await ort.close();
  }
  console.table(rows.map((r) => ({
    model: r.model, engine: r.engine, inputs: `${r.inputs} (${r.textInputs} text)`, elements: r.elements,
    'p99 of tol': r.p99.toExponential(2), 'max of tol': r.max.toExponential(2), margin: r.margin === null ? 'inf' : `${r.margin.toFixed(1)}x`,
  })));
  console.log('Outputs x0.99 (a cheat the audit tests try): the smallest, over the inputs (OCR: those with text), of the worst element\'s fraction of the tolerance:');
  console.table(cheats.map((c) => ({ model: c.model, 'x0.99 uses': `${c.scaledBy099.toFixed(1)}x` })));
  const out = resolve(REPO, 'bench/results/tolerance.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({
    note: 'Per element |web - node| / (abs + rel (|node| + rms(node output))), src/work/onnx/tolerance.ts: the fraction of the audit tolerance an honest result uses; p99 and max over every output element of every input; margin = 1 / max. web: onnxruntime-web in headless Chromium (WebGPU here is SwiftShader); node: onnxruntime-node CPU EP.',
    adapter, cpu: cpus()[0]?.model, cores: cpus().length, loadavg: loadavg(), percentile: PERCENTILE, rows, cheats,
  }, null, 2)}\n`);
  console.log(`wrote ${out}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

function fail(message: string): never {
  throw new Error(message);
}

function fractions(parts: Float32Array[]): { elements: number; p99: number; max: number } {
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  all.sort();
  return { elements: all.length, p99: all[Math.min(all.length - 1, Math.floor(PERCENTILE * all.length))] ?? 0, max: all[all.length - 1] ?? 0 };
}

function base64(data: Float32Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

function fromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** In the page: a session of the model on the engine, kept on globalThis for runSession. */
async function openSession({ sha, engine }: { sha: string; engine: Engine }): Promise<void> {
  const ort = (await import(/* @vite-ignore */ new URL('/vendor/ort/ort.webgpu.bundle.min.mjs', location.href).href)) as typeof import('onnxruntime-web');
  ort.env.logLevel = 'error';
  const model = new Uint8Array(await (await fetch(`/models/${sha}.onnx`)).arrayBuffer());
  const g = globalThis as unknown as Record<string, unknown>;
  g.benchOrt = ort;
  g.benchSession = await ort.InferenceSession.create(model, { executionProviders: [engine], graphOptimizationLevel: 'all' });
}

/** In the page: one run of the open session; its outputs as base64 float32. */
async function runSession({ shape, data }: { shape: number[]; data: string }): Promise<{ outputs: Record<string, string> } | { error: string }> {
  try {
    const g = globalThis as unknown as { benchOrt: typeof import('onnxruntime-web'); benchSession: import('onnxruntime-web').InferenceSession };
    const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
    const feeds = { [g.benchSession.inputNames[0]]: new g.benchOrt.Tensor('float32', new Float32Array(bytes.buffer), shape) };
    const results = await g.benchSession.run(feeds);
    const outputs: Record<string, string> = {};
    for (const [name, tensor] of Object.entries(results)) {
      const values = (await tensor.getData()) as Float32Array;
      const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      let binary = '';
      for (let i = 0; i < raw.length; i += 0x8000) binary += String.fromCharCode(...raw.subarray(i, i + 0x8000));
      outputs[name] = btoa(binary);
      tensor.dispose();
    }
    return { outputs };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
