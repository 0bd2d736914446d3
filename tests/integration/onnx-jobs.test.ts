// ONNX jobs through the real stack: models by hash, .npz jobs split along the batch, leased to scripted miners
// running onnxruntime-node over real WebRTC, audited on the coordinator, paid by exact ops, assembled into an .npz.
import { request } from 'node:http';
import { createRequire } from 'node:module';
import type * as OrtNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReceipt } from '../../src/protocol/receipt.ts';
import { f32Tensor } from '../../src/protocol/tensor.ts';
import { readNpz, writeNpz } from '../../src/work/onnx/npz.ts';
import { packResult, RESULT_COLUMNS } from '../../src/work/onnx/onnx.ts';
import { buildModel, mlpModel, seeded } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_API_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;

// 256 -> 2048 -> 256: 2.1 MFLOP a sample, so a unit (about 4 GFLOP) holds 1903 samples and 4000 samples make 3 units.
const IN = 256;
const HIDDEN = 2048;
const OUT = 256;
const BATCH = 4000;
const OPS_PER_SAMPLE = 2n * BigInt(IN * HIDDEN) + BigInt(HIDDEN) * 2n + 2n * BigInt(HIDDEN * OUT) + BigInt(OUT) * 2n;

const npz = (arrays: Record<string, { shape: number[]; data: Float32Array }>) => writeNpz(new Map(Object.entries(arrays)));

/** A POST /api/models that declares a body of this length and sends none: refused before any byte is read. */
function declareOnly(length: number, url = stackUrl): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('api/models', url), { method: 'POST', headers: { 'content-length': String(length), authorization: `Bearer ${TEST_API_KEY}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error: { code: string } }).error.code });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}
let stackUrl = '';

describe('onnx jobs', () => {
  let stack: TestStack;
  let model: Uint8Array<ArrayBuffer>;
  let sha = '';
  const miners: ScriptedMiner[] = [];
  beforeAll(async () => {
    stack = await startStack({ maxModelBytes: 8 * 1024 * 1024 });
    model = mlpModel(IN, HIDDEN, OUT, 3);
    stackUrl = stack.url;
  }, 60_000);
  afterAll(async () => {
    for (const miner of miners) miner.close();
    await stack.stop();
  });

  const connect = async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(undefined, undefined, ['onnx']);
    return miner;
  };

  it('stores a model under its sha256 and answers its inputs and outputs, symbolic dimensions by name', async () => {
    const res = await api(stack.url, 'models', { method: 'POST', body: model, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(201);
    const info = await res.json();
    sha = info.id;
    expect(sha).toMatch(/^[0-9a-f]{64}$/);
    expect(info.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: ['batch', IN] }]);
    expect(info.outputs).toEqual([
      { name: 'prob', dtype: 'float32', shape: ['batch', OUT] },
      { name: 'logits', dtype: 'float32', shape: ['batch', OUT] },
    ]);
    // The same bytes again: the same id.
    const again = await api(stack.url, 'models', { method: 'POST', body: model });
    expect((await again.json()).id).toBe(sha);
    // Miners fetch it by hash, without a key.
    const fetched = await fetch(new URL(`api/models/${sha}`, stack.url));
    // Compared as one Buffer: a deep equality over 4 MB of elements takes the test runner most of a minute.
    expect(Buffer.from(await fetched.arrayBuffer()).equals(Buffer.from(model))).toBe(true);
  });

  it('refuses a model that is too large, malformed, or uses operators the miners cannot run', async () => {
    const post = async (body: Uint8Array<ArrayBuffer>) => {
      const res = await api(stack.url, 'models', { method: 'POST', body });
      return { status: res.status, code: (await res.json()).error?.code as string };
    };
    expect(await declareOnly(9 * 1024 * 1024)).toEqual({ status: 413, code: 'model-too-large' });
    expect(await post(new TextEncoder().encode('this is not a model at all'))).toEqual({ status: 400, code: 'bad-model' });
    const foreign = buildModel({
      inputs: [{ name: 'x', shape: ['n', 4] }], outputs: [{ name: 'y', shape: ['n', 4] }], initializers: [],
      nodes: [{ op: 'Frobnicate', inputs: ['x'], outputs: ['y'], domain: 'com.example' }],
    });
    expect(await post(foreign)).toEqual({ status: 422, code: 'unsupported-operator' });
    const unknownOp = buildModel({
      inputs: [{ name: 'x', shape: ['n', 4] }], outputs: [{ name: 'y', shape: ['n', 4] }], initializers: [],
      nodes: [{ op: 'Frobnicate', inputs: ['x'], outputs: ['y'] }],
    });
    expect(await post(unknownOp)).toEqual({ status: 422, code: 'unsupported-operator' });
    const noKey = await fetch(new URL('api/models', stack.url), { method: 'POST', body: model });
    expect(noKey.status).toBe(401);
  });

  it('refuses bad inputs with a 4xx and a sentence', async () => {
    const submit = async (query: string, body: Uint8Array<ArrayBuffer>) => {
      const res = await api(stack.url, `jobs/onnx?${query}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      const json = await res.json();
      return { status: res.status, code: json.error?.code as string, message: json.error?.message as string };
    };
    const good = npz({ x: { shape: [4, IN], data: seeded(4 * IN, 1) } });
    expect(await submit(`model=${'0'.repeat(64)}`, good)).toMatchObject({ status: 404, code: 'unknown-model' });
    expect(await submit('model=nope', good)).toMatchObject({ status: 400, code: 'bad-params' });
    expect(await submit(`model=${sha}`, npz({ y: { shape: [4, IN], data: seeded(4 * IN, 1) } }))).toMatchObject({ status: 400, code: 'bad-input' });
    expect(await submit(`model=${sha}`, npz({ x: { shape: [4, IN], data: seeded(4 * IN, 1) }, extra: { shape: [1], data: new Float32Array(1) } }))).toMatchObject({ status: 400, code: 'bad-input' });
    const wrongShape = await submit(`model=${sha}`, npz({ x: { shape: [4, IN - 1], data: seeded(4 * (IN - 1), 1) } }));
    expect(wrongShape).toMatchObject({ status: 400, code: 'bad-shape' });
    expect(wrongShape.message).toContain(String(IN));
    // float64, as np.savez writes an array made without dtype=np.float32
    const f64 = npz({ x: { shape: [2, IN], data: seeded(2 * IN, 1) } });
    const text = new TextDecoder('latin1').decode(f64);
    const asF64 = new Uint8Array([...text.replace("'<f4'", "'<f8'")].map((c) => c.charCodeAt(0)));
    expect((await submit(`model=${sha}`, asF64)).status).toBe(400);
    expect(await submit(`model=${sha}`, new TextEncoder().encode('not a zip'))).toMatchObject({ status: 400, code: 'bad-input' });
    const nan = seeded(4 * IN, 1);
    nan[7] = NaN;
    expect(await submit(`model=${sha}`, npz({ x: { shape: [4, IN], data: nan } }))).toMatchObject({ status: 400, code: 'non-finite' });
  });

  it('splits a job along the batch, pays only outputs that match the coordinator\'s re-run, and assembles an .npz', async () => {
    const x = seeded(BATCH * IN, 11);
    const submitted = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body: npz({ x: { shape: [BATCH, IN], data: x } }) });
    expect(submitted.status).toBe(201);
    const job = await submitted.json();
    expect(job).toMatchObject({ kind: 'onnx', model: sha, batch: BATCH, unitsTotal: 3, opsPerSample: OPS_PER_SAMPLE.toString() });

    const runner = new OnnxRunnerForTests(stack.url);
    // Each cheat on a fresh key: three rejected results ban a key, and each of these must be refused for its own reason.
    const cheatOnce = async (tamper: (outs: Float32Array[], lease: Awaited<ReturnType<ScriptedMiner['lease']>>) => Float32Array[] | 'garbage') => {
      const cheat = await connect();
      const lease = await cheat.lease();
      expect(lease.kind).toBe('onnx');
      const honestOutputs = await runner.outputs(lease);
      const tampered = tamper(honestOutputs, lease);
      const output = tampered === 'garbage' ? f32Tensor([3, 7], new Float32Array(21)) : packResult(tampered);
      cheat.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output });
      const verdict = await cheat.next('receipt', 'rejected');
      cheat.close();
      return { verdict, lease, honestOutputs };
    };
    // Outputs perturbed by 1%: refused by the audit.
    const first = await cheatOnce((outs) => outs.map((o) => o.map((v) => v * 1.01)));
    expect(first.verdict).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    // Zeros: probabilities of 0 are in range, but not what the model gives.
    expect((await cheatOnce((outs) => outs.map((o) => new Float32Array(o.length)))).verdict).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    // A Sigmoid's output above 1 is caught without any re-run.
    expect((await cheatOnce((outs) => [outs[0].map(() => 2), outs[1]])).verdict).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    // Garbage shape.
    expect((await cheatOnce(() => 'garbage')).verdict).toMatchObject({ type: 'rejected', code: 'shape-mismatch' });
    // Another unit's outputs, cut or padded to this unit's size: refused.
    const copied = await cheatOnce((outs, lease) => {
      if (lease.unitId === first.lease.unitId) return outs.map((o) => o.map((v) => v + 0.5));
      return outs.map((o, i) => {
        const out = new Float32Array(o.length);
        out.set(first.honestOutputs[i].subarray(0, Math.min(o.length, first.honestOutputs[i].length)));
        return out;
      });
    });
    expect(copied.verdict).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    expect(RESULT_COLUMNS).toBe(1024);

    // An honest miner does the job and is paid exactly ops x rate.
    const honest = await connect();
    const honestRunner = new OnnxRunnerForTests(stack.url);
    let paid = 0n;
    let ops = 0n;
    for (let done = 0; done < 3; done++) {
      const lease = await honest.lease();
      const verdict = await honestRunner.run(honest, lease);
      if (verdict.type !== 'receipt') throw new Error(`honest result refused: ${verdict.code}: ${verdict.message}`);
      expect(await verifyReceipt(verdict.receipt)).toBe(true);
      expect(verdict.receipt.kind).toBe('onnx');
      ops += verdict.receipt.ops;
      paid += verdict.receipt.microCredits;
    }
    expect(honestRunner.modelFetches).toBe(1);
    expect(ops).toBe(OPS_PER_SAMPLE * BigInt(BATCH));
    await waitForJob(stack.url, job.id);

    const result = await api(stack.url, `jobs/${job.id}/result`);
    expect(result.status).toBe(200);
    const outputs = readNpz(new Uint8Array(await result.arrayBuffer()), 1 << 26);
    if (!outputs.ok) throw new Error(outputs.error.message);
    const session = await ort.InferenceSession.create(model);
    const reference = await session.run({ x: new ort.Tensor('float32', x, [BATCH, IN]) });
    for (const name of ['prob', 'logits']) {
      const got = outputs.value.get(name);
      expect(got?.shape).toEqual([BATCH, OUT]);
      const want = reference[name].data as Float32Array;
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((got?.data[i] ?? NaN) - want[i]) / (1e-4 + 1e-3 * Math.abs(want[i])));
      expect(worst).toBeLessThanOrEqual(1);
    }
    expect(paid).toBeGreaterThan(0n);
  }, 180_000);

  it('resumes an open job after a restart: its model and units come back from the data folder', async () => {
    const submitted = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body: npz({ x: { shape: [10, IN], data: seeded(10 * IN, 5) } }) });
    expect(submitted.status).toBe(201);
    const job = await submitted.json();
    for (const miner of miners.splice(0)) miner.close();
    await stack.close();
    stack = await startStack({ dataDir: stack.dataDir, maxModelBytes: 8 * 1024 * 1024 });
    const view = await (await api(stack.url, `jobs/${job.id}`)).json();
    expect(view).toMatchObject({ kind: 'onnx', model: sha, batch: 10, unitsTotal: 1, opsPerSample: OPS_PER_SAMPLE.toString() });
    const miner = await connect();
    const verdict = await new OnnxRunnerForTests(stack.url).run(miner, await miner.lease());
    expect(verdict.type).toBe('receipt');
    await waitForJob(stack.url, job.id);
  }, 120_000);
});
