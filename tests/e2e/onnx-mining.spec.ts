// A visitor's page mines an onnx job: the worker fetches the model and the input batch by hash from the coordinator,
// runs it on onnxruntime-web, and the requester's outputs match onnxruntime-node; a second page load takes the model
// from its cache. An input batch whose bytes do not match their hash is refused, never computed.
import { createRequire } from 'node:module';
import { expect, test, type Page } from '@playwright/test';
import type * as OrtNode from 'onnxruntime-node';
import { LEASE_MAX_MS } from '../../src/coordinator/scheduler.ts';
import { readNpz, writeNpz } from '../../src/work/onnx/npz.ts';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { mlpModel, seeded } from '../helpers/onnx-builder.ts';
import { api, startStack, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';
const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;

const [IN, HIDDEN, OUT, BATCH] = [64, 256, 32, 48];

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

async function startMining(page: Page): Promise<void> {
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
}

async function submit(sha: string, x: Float32Array<ArrayBuffer>): Promise<string> {
  const res = await api(stack.url, `jobs/onnx?model=${sha}`, { method: 'POST', body: writeNpz(new Map([['x', { shape: [BATCH, IN], data: x }]])) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

test('a page mines an onnx job on the engine it measured fastest, named in the page and the receipts; outputs match onnxruntime-node; a reload fetches no model bytes', async ({ page, context }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  // The worker logs each model's engine choice: measured (with seconds per run on each engine) or remembered.
  const choices: string[] = [];
  page.on('console', (message) => {
    if (message.text().startsWith('onnx model ')) choices.push(message.text());
  });
  const modelFetches: string[] = [];
  context.on('response', (response) => {
    if (response.url().includes('/api/models/') && !response.fromServiceWorker()) modelFetches.push(response.url());
  });
  const model = mlpModel(IN, HIDDEN, OUT, 5);
  const posted = await api(stack.url, 'models', { method: 'POST', body: model });
  expect(posted.status).toBe(201);
  const sha = ((await posted.json()) as { id: string }).id;

  await startMining(page);
  const x = Float32Array.from(seeded(BATCH * IN, 21));
  const id = await submit(sha, x);
  await waitForJob(stack.url, id, 240_000);
  const res = await api(stack.url, `jobs/${id}/result`);
  const outputs = readNpz(new Uint8Array(await res.arrayBuffer()), 1 << 24);
  if (!outputs.ok) throw new Error(outputs.error.message);
  const reference = await (await ort.InferenceSession.create(model)).run({ x: new ort.Tensor('float32', x, [BATCH, IN]) });
  let worst = 0;
  for (const name of ['prob', 'logits']) {
    const want = reference[name].data as Float32Array;
    const got = outputs.value.get(name)?.data ?? new Float32Array(0);
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  // The job was paid, so it held within the audit's tolerance (src/work/onnx/tolerance.ts); its largest difference is shown.
  console.log(`onnx e2e: largest |web - node| over ${BATCH} samples: ${worst.toExponential(2)}`);
  expect(worst).toBeLessThan(1e-4);
  await expect(page.getByTestId('units-done')).toHaveText('1');
  expect(modelFetches.length).toBe(1);
  // The input batch came over HTTP by hash, once, as f32: the lease carried none of it.
  expect(stack.operandBlobs.bytesServedTotal).toBe(BATCH * IN * 4);

  // The page names the engine it measured fastest for this model, and the wallet's receipt names the same engine.
  const chosen = page.getByTestId('model-engines').locator(`li[data-model="${sha}"]`);
  await expect(chosen).toHaveAttribute('data-engine', /^(webgpu|wasm)$/);
  const engine = await chosen.getAttribute('data-engine');
  console.log(`onnx e2e: the page chose ${engine} for the model: ${choices.join('; ')}`);
  expect(choices).toEqual([expect.stringMatching(/wasm: [\d.e-]+, webgpu: [\d.e-]+/)]);
  await expect.poll(() => receiptKinds(page)).toEqual([engine === 'webgpu' ? 'onnx-webgpu' : 'onnx']);

  // A second visit: the model comes from Cache Storage, no model bytes on the wire.
  await page.reload();
  await startMining(page);
  const again = await submit(sha, Float32Array.from(seeded(BATCH * IN, 22)));
  await waitForJob(stack.url, again, 240_000);
  expect(modelFetches.length).toBe(1);
  expect(await page.evaluate(async () => (await (await caches.open('ergon-models-v1')).keys()).length)).toBe(1);
  // onnxruntime-web's .wasm, served from the app's origin, is kept too (by the service worker, once it controls the
  // page): the next visit loads the runtime from Cache Storage, not the network.
  const kept = await page.evaluate(async () => (await (await caches.open('ergon-ort-wasm-v1')).keys()).map((r) => new URL(r.url).pathname));
  expect(kept).toContainEqual(expect.stringMatching(/^\/assets\/ort-.*\.wasm$/));
  // The second visit takes the engine it remembered (per model and adapter) without measuring, and says it again.
  expect(choices[1]).toMatch(/\(remembered\)$/);
  await expect(page.getByTestId('model-engines').locator(`li[data-model="${sha}"]`)).toHaveAttribute('data-engine', engine ?? '');
  await expect.poll(() => receiptKinds(page)).toEqual(Array(2).fill(engine === 'webgpu' ? 'onnx-webgpu' : 'onnx'));
});

test('an input batch whose bytes do not match its hash is refused by the page and not computed; sent again genuine, it is paid', async ({ page, context }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  const model = mlpModel(IN, HIDDEN, OUT, 6);
  const posted = await api(stack.url, 'models', { method: 'POST', body: model });
  expect(posted.status).toBe(201);
  const sha = ((await posted.json()) as { id: string }).id;
  const modelFetches: string[] = [];
  context.on('response', (response) => {
    if (response.url().includes(`/api/models/${sha}`) && !response.fromServiceWorker()) modelFetches.push(response.url());
  });
  // The coordinator (or anything between it and the page) sends the first operand with one bit flipped.
  const blobs = stack.operandBlobs;
  const read = blobs.read.bind(blobs);
  let tampered = 0;
  blobs.read = async (token, hash) => {
    const genuine = await read(token, hash);
    if (!genuine.ok || tampered > 0) return genuine;
    tampered++;
    const bytes = Uint8Array.from(genuine.bytes);
    bytes[100] ^= 1;
    return { ok: true, bytes };
  };
  try {
    await startMining(page);
    const x = Float32Array.from(seeded(BATCH * IN, 23));
    const id = await submit(sha, x);
    await expect(page.getByTestId('units-rejected')).toHaveText('1');
    expect(tampered).toBe(1);
    // Not computed: the model, which the worker fetches only to run a unit, was never asked for, and no result came.
    expect(modelFetches).toEqual([]);
    expect(await (await api(stack.url, `jobs/${id}`)).json()).toMatchObject({ status: expect.not.stringMatching(/^done$/), unitsDone: 0 });
    await expect(page.getByTestId('units-done')).toHaveText('0');

    // The clock passes the lease's deadline: the unit goes back to the queue and the page, fetching the genuine
    // bytes this time, computes it and is paid; the outputs are those of the genuine inputs.
    await stack.queue.expire(Date.now() + LEASE_MAX_MS + 1);
    await waitForJob(stack.url, id, 240_000);
    await expect(page.getByTestId('units-done')).toHaveText('1');
    expect(modelFetches.length).toBe(1);
    const outputs = readNpz(new Uint8Array(await (await api(stack.url, `jobs/${id}/result`)).arrayBuffer()), 1 << 24);
    if (!outputs.ok) throw new Error(outputs.error.message);
    const reference = await (await ort.InferenceSession.create(model)).run({ x: new ort.Tensor('float32', x, [BATCH, IN]) });
    const want = reference.prob.data as Float32Array;
    const got = outputs.value.get('prob')?.data ?? new Float32Array(0);
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4);
  } finally {
    blobs.read = read;
  }
});

/** The kinds of the receipts in the page's wallet (IndexedDB), as stored. */
function receiptKinds(page: Page): Promise<string[]> {
  return page.evaluate(() => new Promise<string[]>((resolve, reject) => {
    const open = indexedDB.open('ergon-wallet');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const all = open.result.transaction('receipts').objectStore('receipts').getAll();
      all.onerror = () => reject(all.error);
      all.onsuccess = () => {
        resolve((all.result as { kind: string }[]).map((r) => r.kind));
        open.result.close();
      };
    };
  }));
}
