// A visitor's page mines an onnx job: the worker fetches the model by hash from the coordinator, runs it on
// onnxruntime-web, and the requester's outputs match onnxruntime-node; a second page load takes the model from its cache.
import { createRequire } from 'node:module';
import { expect, test, type Page } from '@playwright/test';
import type * as OrtNode from 'onnxruntime-node';
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

test('a page mines an onnx job whose outputs match onnxruntime-node, and a reload fetches no model bytes', async ({ page, context }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
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
  // The audit's tolerance (1e-4 + 1e-3 |x|): the job was paid, so it held; here its largest difference is shown.
  console.log(`onnx e2e: largest |web - node| over ${BATCH} samples: ${worst.toExponential(2)}`);
  expect(worst).toBeLessThan(1e-4);
  await expect(page.getByTestId('units-done')).toHaveText('1');
  expect(modelFetches.length).toBe(1);

  // A second visit: the model comes from Cache Storage, no model bytes on the wire.
  await page.reload();
  await startMining(page);
  const again = await submit(sha, Float32Array.from(seeded(BATCH * IN, 22)));
  await waitForJob(stack.url, again, 240_000);
  expect(modelFetches.length).toBe(1);
  expect(await page.evaluate(async () => (await (await caches.open('ergon-models-v1')).keys()).length)).toBe(1);
});
