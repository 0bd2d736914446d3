// The bench page: holds the device, the operands and the prepared implementations; the Node driver calls it.
import { adapterKey, tune } from '../../src/miner/gpu/autotune.ts';
import { acquireDevice, type AcquiredDevice } from '../../src/miner/gpu/device.ts';
import { freivalds } from '../../src/work/gemm/freivalds.ts';
import { cryptoRandomBytes } from '../../src/work/kind.ts';
import type { BenchPage, CheckResult, Environment, ImplName, PageOptions, Shape } from './bench-api.ts';
import { endToEnd } from './end-to-end.ts';
import { naiveRunner } from './naive.ts';
import { ortWasmRunner, ortWebGpuRunner } from './ort.ts';
import { oursF16Runner, oursRunner, type OursConfig } from './ours.ts';
import { compare, makeOperands, referenceRows, type Operands, type Reference } from './reference.ts';
import { nowSeconds, type Runner } from './runner.ts';
import { median } from './stats.ts';
import { tfjsRunner } from './tfjs.ts';


interface Prepared {
  ops: Operands;
  seed: number;
  reference?: Reference;
}

let gpu: AcquiredDevice | undefined;
let oursConfig: OursConfig | undefined;
let operands: Prepared | undefined;
const runners = new Map<ImplName, Runner>();

function device(): AcquiredDevice {
  if (!gpu) throw new Error('call environment() first');
  return gpu;
}

/** The config the miner's autotuner picks on this adapter (it tunes afresh: stored tunings are not read). */
async function tunedConfig(acquired: AcquiredDevice): Promise<OursConfig> {
  const record = await tune(acquired.device, adapterKey(acquired.adapter, navigator.userAgent));
  return { value: record.config, source: 'autotune', tuning: JSON.stringify({ gflops: record.gflops, trials: record.trials }) };
}

function operandsFor(shape: Shape, seed: number): Prepared {
  const same = operands && operands.seed === seed && operands.ops.shape.m === shape.m && operands.ops.shape.k === shape.k && operands.ops.shape.n === shape.n;
  if (!same || !operands) operands = { ops: makeOperands(shape, seed), seed };
  return operands;
}

function runnerOf(impl: ImplName): Runner {
  const runner = runners.get(impl);
  if (!runner) throw new Error(`${impl} is not prepared`);
  return runner;
}

const page: BenchPage = {
  async environment(options: PageOptions): Promise<Environment> {
    gpu ??= await acquireDevice();
    if (!oursConfig) {
      oursConfig = options.tune ? await tunedConfig(gpu) : { value: undefined, source: 'default' };
    }
    return {
      userAgent: navigator.userAgent,
      crossOriginIsolated,
      hardwareConcurrency: navigator.hardwareConcurrency,
      ours: { config: oursConfig.value === undefined ? 'GemmKernel.create(device) default' : JSON.stringify(oursConfig.value), source: oursConfig.source, tuning: oursConfig.tuning },
      adapter: { ...gpu.adapter, features: gpu.features, limits: gpu.limits },
    };
  },

  async prepare(impl, shape, seed) {
    await page.release(impl);
    const { ops } = operandsFor(shape, seed);
    const acquired = device();
    let runner: Runner;
    switch (impl) {
      case 'ours':
        runner = await oursRunner(acquired.device, ops, oursConfig ?? { value: undefined, source: 'default' });
        break;
      case 'ours-f16':
        runner = await oursF16Runner(acquired.device, ops, oursConfig ?? { value: undefined, source: 'default' });
        break;
      case 'naive':
        runner = await naiveRunner(acquired.device, ops);
        break;
      case 'tfjs':
        runner = await tfjsRunner(ops);
        break;
      case 'ort-webgpu':
        runner = await ortWebGpuRunner(ops);
        break;
      case 'ort-wasm':
        runner = await ortWasmRunner(ops);
        break;
    }
    runners.set(impl, runner);
    return runner.info;
  },

  time: (impl) => runnerOf(impl).time(),

  async check(impl): Promise<CheckResult> {
    const c = await runnerOf(impl).product();
    if (!operands) throw new Error('no operands prepared');
    operands.reference ??= referenceRows(operands.ops, operands.seed);
    return compare(c, operands.reference, operands.ops.shape);
  },

  async verificationCost(impl, reps) {
    const c = await runnerOf(impl).product();
    if (!operands) throw new Error('no operands prepared');
    const { a, b, shape } = operands.ops;
    const runs: number[] = [];
    let accepted = true;
    for (let i = 0; i < reps; i++) {
      const started = nowSeconds();
      const verdict = freivalds({ a, b, c, rows: shape.m, depth: shape.k, cols: shape.n }, cryptoRandomBytes);
      runs.push(nowSeconds() - started);
      accepted &&= verdict.ok;
    }
    return { freivaldsSeconds: median(runs), runs, accepted };
  },

  async release(impl) {
    const runner = runners.get(impl);
    runners.delete(impl);
    await runner?.release();
  },

  endToEnd: (spec) => endToEnd(spec),
};

window.ergonBench = page;
document.body.dataset.ready = 'true';
