// OCR end to end: Chromium draws a few lines of text on an OffscreenCanvas and encodes a PNG, the requester POSTs it
// to /api/jobs/ocr, a visitor's miner page mines the detection and recognition units (onnxruntime-web, uint8 pixels
// fetched by hash and normalised in its worker), and the result has the text that was drawn.
import { expect, test } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { api, startStack, waitForJob, type TestStack } from '../helpers/stack.ts';
import { editDistance, renderTextPage } from '../helpers/text-page.ts';

process.env.ERGON_LOG ??= 'silent';

/** Two short lines: a page that mines in seconds on the WASM EP. */
const LINES = ['Ergon reads this page', 'Total 58.40 EUR'];

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

test('a page of text rendered in Chromium comes back from /api/jobs/ocr, mined by a visitor\'s page', async ({ page, context }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  const drawing = await context.newPage();
  await drawing.goto(stack.url);
  const png = await renderTextPage(drawing, { lines: LINES, width: 640, height: 160 });
  await drawing.close();

  // Each unit's pixels come by hash over HTTP (GET /api/operands/SHA256), not inside its lease.
  const operandFetches: string[] = [];
  context.on('response', (response) => {
    if (response.url().includes('/api/operands/') && response.status() === 200) operandFetches.push(response.url());
  });
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });

  const submitted = await api(stack.url, 'jobs/ocr', { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
  expect(submitted.status).toBe(201);
  const { id } = (await submitted.json()) as { id: string };
  const done = await waitForJob(stack.url, id, 300_000);
  expect(done).toMatchObject({ kind: 'ocr', stage: 'done' });

  const result = (await (await api(stack.url, `jobs/${id}/result`)).json()) as { lines: { text: string; confidence: number }[] };
  console.log(`ocr e2e: ${JSON.stringify(result.lines.map((l) => l.text))}`);
  expect(result.lines).toHaveLength(LINES.length);
  // Compared without spaces (the model is trained on Chinese and may drop them), by edit distance.
  result.lines.forEach((line, i) => {
    const want = LINES[i].replace(/\s+/g, '');
    expect(editDistance(line.text.replace(/\s+/g, ''), want)).toBeLessThanOrEqual(Math.floor(0.2 * want.length));
  });
  // The page mined every unit (detection and recognition) and was paid for them.
  await expect(page.getByTestId('units-done')).not.toHaveText('0');
  // Detection's page and at least one batch of recognition's line crops.
  expect(new Set(operandFetches).size).toBeGreaterThanOrEqual(2);
});
