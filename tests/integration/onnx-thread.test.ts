// The coordinator runs onnxruntime-node on a thread of its own: an audit's re-run computes what onnxruntime-node
// computes, and while it runs the coordinator's event loop stays free (on the main thread a run stops it for its
// whole length, and miners' links count 1.5 s of silence as a dead coordinator).
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as OrtNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelStore } from '../../src/coordinator/model-store.ts';
import { mlpModel, seeded } from '../helpers/onnx-builder.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;
// 1 MFLOP a sample against 7 KiB of inputs, activations and outputs: a long run stays small in memory.
const [IN, HIDDEN, OUT] = [256, 1024, 256];
/** A run at least this long is measured: long against timer jitter, whatever the machine's speed. */
const LONG_RUN_MS = 400;
/** At most 34 GFLOP and 230 MiB a run: longer than LONG_RUN_MS on any CPU below 85 GFLOP/s. */
const MAX_BATCH = 1 << 15;

describe('onnxruntime-node on its own thread', () => {
  let dir = '';
  let store: ModelStore;
  let sha = '';
  const model = mlpModel(IN, HIDDEN, OUT, 3);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-onnx-thread-'));
    store = await ModelStore.open(dir);
    const added = await store.add(model);
    if (!added.ok) throw new Error(added.error.message);
    sha = added.value.sha256;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an audit re-run gives the outputs onnxruntime-node gives here, its inputs a view into a larger batch', async () => {
    const x = seeded(64 * IN, 5);
    const session = await ort.InferenceSession.create(model);
    const direct = await session.run({ x: new ort.Tensor('float32', x, [64, IN]) });
    // A unit's rows of a job's input, as the onnx kind passes them: only the rows cross to the thread.
    const job = new Float32Array(3 * 64 * IN);
    job.set(x, 64 * IN);
    const rows = job.subarray(64 * IN, 2 * 64 * IN);
    const threaded = await store.runner.run(sha, new Map([['x', { shape: [64, IN], data: rows }]]));
    expect(rows.length).toBe(64 * IN); // the caller's view is left as it was
    for (const name of ['prob', 'logits']) {
      expect(threaded.get(name)?.shape).toEqual([64, OUT]);
      expect(threaded.get(name)?.data).toEqual(direct[name].data);
    }
    await session.release();
  });

  it('the event loop keeps turning while a long re-run computes', async () => {
    // Grows the batch until one run takes LONG_RUN_MS here, so the comparison below holds on any machine.
    let batch = 256;
    let runMs = 0;
    let worstGapMs = 0;
    while (batch <= MAX_BATCH) {
      const x = seeded(batch * IN, 9);
      let last = performance.now();
      worstGapMs = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        worstGapMs = Math.max(worstGapMs, now - last);
        last = now;
      }, 2);
      const started = performance.now();
      const outputs = await store.runner.run(sha, new Map([['x', { shape: [batch, IN], data: x }]]));
      runMs = performance.now() - started;
      clearInterval(ticker);
      // The gap still open when the run ends counts too: a loop that stood still never ticked at all.
      worstGapMs = Math.max(worstGapMs, performance.now() - last);
      expect(outputs.get('prob')?.shape).toEqual([batch, OUT]);
      if (runMs >= LONG_RUN_MS) break;
      batch *= 2;
    }
    // On the main thread the loop would stand still for the whole run (its worst gap about runMs). A machine that
    // runs even MAX_BATCH faster than LONG_RUN_MS still shows a gap well under the run, or 25 ms.
    expect(worstGapMs).toBeLessThan(Math.max(runMs / 4, 25));
  });
});
