// `npm run bench:onnx` (partial, Node only): each model's exact ops per inference and its speed on onnxruntime-node's
// CPU EP, the runtime the coordinator audits with, so the table gives what one audited unit costs the coordinator.
// Not here yet: the miners' WebGPU and WASM EPs in Chromium, and a generated transformer block.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelStore } from '../src/coordinator/model-store.ts';
import { mlpModel, seeded } from '../tests/helpers/onnx-builder.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPS = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 5);

const dir = await mkdtemp(join(tmpdir(), 'ergon-bench-onnx-'));
try {
  const store = await ModelStore.open(dir);
  const mlp = await store.add(mlpModel(1024, 4096, 1024, 1));
  if (!mlp.ok) throw new Error(mlp.error.message);
  const cases = [
    { name: 'PP-OCRv4 det', sha: store.shipped.det, input: 'x', sample: [3, 256, 896], batch: 1 },
    { name: 'PP-OCRv4 rec', sha: store.shipped.rec, input: 'x', sample: [3, 48, 320], batch: 8 },
    { name: 'MLP 1024-4096-1024', sha: mlp.value.sha256, input: 'x', sample: [1024], batch: 256 },
  ];
  const rows = [];
  for (const c of cases) {
    const profile = await store.measure(c.sha, [c.sample]);
    const shape = [c.batch, ...c.sample];
    const data = seeded(shape.reduce((n, d) => n * d, 1), 7);
    const inputs = new Map([[c.input, { shape, data }]]);
    await store.runner.run(c.sha, inputs); // warm-up
    const times: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const started = performance.now();
      await store.runner.run(c.sha, inputs);
      times.push((performance.now() - started) / 1000);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    const gflop = (Number(profile.opsPerSample) * c.batch) / 1e9;
    rows.push({ model: c.name, shape: shape.join('x'), gflopPerSample: Number(profile.opsPerSample) / 1e9, batch: c.batch, medianSeconds: median, inferencesPerSecond: c.batch / median, gflopPerSecond: gflop / median });
  }
  console.table(rows.map((r) => ({ ...r, gflopPerSample: r.gflopPerSample.toFixed(3), medianSeconds: r.medianSeconds.toFixed(3), inferencesPerSecond: r.inferencesPerSecond.toFixed(1), gflopPerSecond: r.gflopPerSecond.toFixed(1) })));
  const out = resolve(REPO, 'bench/results/onnx.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ runtime: 'onnxruntime-node (CPU EP), the coordinator\'s audit runtime', cpu: cpus()[0]?.model, cores: cpus().length, loadavg: loadavg(), reps: REPS, rows }, null, 2)}\n`);
  console.log(`wrote ${out}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
