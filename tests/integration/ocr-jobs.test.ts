// OCR through the real stack: a page rendered by Chromium is POSTed to /api/jobs/ocr; its detection and recognition
// run as onnx units (uint8 pixels on the wire) leased to scripted miners running onnxruntime-node over real WebRTC,
// audited by the coordinator's own re-run; the result has the text that was drawn. Bad images get a 4xx.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/client/cli.ts';
import { ocrAsset, SHIPPED_MODELS } from '../../src/coordinator/model-store.ts';
import { LinkClosedError } from '../../src/miner/coordinator-link.ts';
import { generateSigningKeys } from '../../src/protocol/receipt.ts';
import { packResult } from '../../src/work/onnx/onnx.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';
import { editDistance, PAGE_LINES, renderTextPageHeadless } from '../helpers/text-page.ts';

interface OcrResult {
  lines: { text: string; box: [number, number][]; confidence: number }[];
}

/** A POST that declares a body of this length and sends none: refused before any byte is read. */
function declareOnly(url: string, length: number): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('api/jobs/ocr', url), {
      method: 'POST', headers: { 'content-length': String(length), 'content-type': 'image/png', authorization: `Bearer ${TEST_API_KEY}` },
    }, (res) => {
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

describe('OCR jobs', () => {
  let stack: TestStack;
  let png: Uint8Array<ArrayBuffer>;
  let turned: Uint8Array<ArrayBuffer>;
  let long: Uint8Array<ArrayBuffer>;
  /** 30 lines: four recognition jobs of the requester's at once, and a detection map with a Sigmoid's 1.0000001 in it. */
  const LONG_LINES = Array.from({ length: 30 }, (_, i) => `Line ${i + 1} of the long page`);
  const miners: ScriptedMiner[] = [];
  /** One runner for every miner here: each model's session is made once, before any miner connects. */
  let runner: OnnxRunnerForTests;
  beforeAll(async () => {
    [stack, png, turned, long] = await Promise.all([
      startStack(), renderTextPageHeadless(), renderTextPageHeadless({ height: 420, angleDegrees: 10 }), renderTextPageHeadless({ lines: LONG_LINES, height: 1800 }),
    ]);
    runner = new OnnxRunnerForTests(stack.url);
    for (const file of Object.values(SHIPPED_MODELS)) await runner.fetchModel(createHash('sha256').update(readFileSync(ocrAsset(file))).digest('hex'));
  }, 120_000);
  afterAll(async () => {
    for (const miner of miners) miner.close();
    await stack.stop();
  });

  const submit = async (body: Uint8Array<ArrayBuffer>, contentType = 'image/png') => {
    const res = await api(stack.url, 'jobs/ocr', { method: 'POST', body, headers: { 'content-type': contentType } });
    const json = await res.json();
    return { status: res.status, json, code: json.error?.code as string | undefined, message: json.error?.message as string | undefined };
  };

  /**
   * An honest onnx miner that mines until the OCR job is done; answers the leases it got. A link that drops (a
   * coordinator busy making an onnxruntime session on a loaded machine can miss heartbeats) is opened again, as the
   * page's mining loop does: the dropped lease comes back to the queue.
   */
  const mineUntilDone = async (jobId: string) => {
    // One wallet key across reconnections: the job's view counts one miner, and a dropped lease waits for it.
    const keys = await generateSigningKeys();
    const connect = async () => {
      const miner = await ScriptedMiner.connect(stack.url);
      miners.push(miner);
      await miner.hello(keys, undefined, ['onnx']);
      return miner;
    };
    let miner = await connect();
    const leases: Awaited<ReturnType<ScriptedMiner['lease']>>[] = [];
    for (;;) {
      const view = await (await api(stack.url, `jobs/${jobId}`)).json();
      if (view.status === 'done') return { view, leases };
      if (view.status === 'failed') throw new Error(`OCR job failed: ${JSON.stringify(view.error)}`);
      try {
        miner.send({ type: 'work-request' });
        const reply = await miner.next('lease', 'no-work', 'error');
        if (reply.type === 'error') throw new Error(`${reply.code}: ${reply.message}`);
        if (reply.type === 'no-work') {
          await new Promise((resolve) => setTimeout(resolve, Math.min(reply.retryAfterMs, 200)));
          continue;
        }
        // Kept before its verdict: a link dropped after the credit and before the verdict still counts the unit
        // (leased again, a unit keeps its id).
        leases.push(reply);
        // Past a new key's first results, credits are held pending until an audit: either is an honest result's due.
        const verdict = await runner.runHeld(miner, reply);
        if (verdict.type === 'rejected') throw new Error(`honest result refused: ${verdict.code}: ${verdict.message}`);
      } catch (err) {
        if (!(err instanceof LinkClosedError)) throw err;
        miner.close();
        miner = await connect();
      }
    }
  };

  it('reads a rendered page back: its lines in reading order, boxes in the page\'s pixels, pixels sent as uint8', async () => {
    const submitted = await submit(png);
    expect(submitted.status).toBe(201);
    expect(submitted.json).toMatchObject({ kind: 'ocr', status: 'queued', stage: 'detect', width: 900, height: 260, unitsTotal: 1, unitsDone: 0 });
    // The key's jobs list the OCR job, not its stages.
    const listed = (await (await api(stack.url, 'jobs')).json()) as { jobs: { id: string; kind: string }[] };
    expect(listed.jobs.map((j) => [j.id, j.kind])).toEqual([[submitted.json.id, 'ocr']]);
    const { leases, view } = await mineUntilDone(submitted.json.id);
    // Every unit mined counts once in its progress: detection's and recognition's.
    const unitsMined = new Set(leases.map((lease) => lease.unitId)).size;
    expect(view).toMatchObject({ status: 'done', stage: 'done', unitsTotal: unitsMined, unitsDone: unitsMined, miners: 1, lines: 3 });

    // Detection: one unit for the page, its pixels as uint8 planes (a byte each, not four) at the model's input size.
    const det = leases[0];
    expect(det.operands.i0).toMatchObject({ dtype: 'u8', shape: [1, 3, 256, 896] });
    expect(det.operands.i0.data.byteLength).toBe(3 * 256 * 896);
    // Fetched by hash over HTTP, not carried in the lease message.
    expect(det.refs.i0).toMatchObject({ dtype: 'u8', shape: [1, 3, 256, 896], bytes: 3 * 256 * 896, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // Recognition: crops at height 48, uint8 too.
    expect(leases.length).toBeGreaterThan(1);
    for (const lease of leases.slice(1)) expect(lease.operands.i0).toMatchObject({ dtype: 'u8', shape: [expect.any(Number), 3, 48, expect.any(Number)] });

    const res = await api(stack.url, `jobs/${submitted.json.id}/result`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const result = (await res.json()) as OcrResult;
    expect(result.lines).toHaveLength(PAGE_LINES.length);
    // The model is trained on Chinese and may drop English spaces: compared without them, by edit distance.
    const squash = (s: string) => s.replace(/\s+/g, '');
    result.lines.forEach((line, i) => {
      const want = squash(PAGE_LINES[i]);
      expect(editDistance(squash(line.text), want), `line ${i}: ${line.text}`).toBeLessThanOrEqual(Math.floor(0.2 * want.length));
      expect(line.confidence).toBeGreaterThan(0.5);
      expect(line.confidence).toBeLessThanOrEqual(1);
      for (const [x, y] of line.box) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(900);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(260);
      }
      // Each line's box covers the row it was drawn on (rows of 260 / 3 px, text from x = 30).
      const centreY = (line.box[0][1] + line.box[2][1]) / 2;
      expect(Math.floor(centreY / (260 / 3))).toBe(i);
      expect(line.box[0][0]).toBeLessThan(60);
    });

    // The stage jobs are gone once the OCR job is done; deleting it forgets it.
    const jobs = (await (await api(stack.url, 'jobs')).json()) as { jobs: { id: string }[] };
    expect(jobs.jobs.map((j) => j.id)).toEqual([submitted.json.id]);
    expect((await api(stack.url, `jobs/${submitted.json.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(stack.url, `jobs/${submitted.json.id}`)).status).toBe(404);
  }, 240_000);

  it('refuses what is not a page image with a 4xx and a sentence', async () => {
    const notImage = await submit(new TextEncoder().encode('this is not an image'));
    expect(notImage).toMatchObject({ status: 400, code: 'bad-image' });
    expect(notImage.message).toMatch(/PNG/);
    const wrongType = await submit(png, 'text/plain');
    expect(wrongType).toMatchObject({ status: 415, code: 'unsupported-media-type' });
    expect(wrongType.message).toMatch(/image\/png or image\/jpeg/);
    // A PNG sent as a JPEG is not decoded as one.
    expect(await submit(png, 'image/jpeg')).toMatchObject({ status: 400, code: 'bad-image' });
    // Truncated after its header: the decoder's complaint, as a 400.
    expect(await submit(png.slice(0, 200))).toMatchObject({ status: 400, code: 'bad-image' });
    // Zero pixels wide, as the header says.
    const zero = png.slice();
    new DataView(zero.buffer).setUint32(16, 0);
    expect(await submit(zero)).toMatchObject({ status: 400, code: 'bad-image' });
    // More pixels than a page may have, refused from the header before any pixel is decoded.
    const huge = png.slice();
    new DataView(huge.buffer).setUint32(16, 100_000);
    new DataView(huge.buffer).setUint32(20, 100_000);
    expect(await submit(huge)).toMatchObject({ status: 413, code: 'image-too-large' });
    expect(await submit(new Uint8Array(0))).toMatchObject({ status: 400, code: 'empty-body' });
    expect(await declareOnly(stack.url, 64 * 1024 * 1024)).toEqual({ status: 413, code: 'image-too-large' });
    const noKey = await fetch(new URL('api/jobs/ocr', stack.url), { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
    expect(noKey.status).toBe(401);
    // None of these left a job behind.
    expect(((await (await api(stack.url, 'jobs')).json()) as { jobs: unknown[] }).jobs).toEqual([]);
  });

  it('reads text turned 10 degrees, with boxes turned as much', async () => {
    const submitted = await submit(turned);
    expect(submitted.status).toBe(201);
    await mineUntilDone(submitted.json.id);
    const result = (await (await api(stack.url, `jobs/${submitted.json.id}/result`)).json()) as OcrResult;
    expect(result.lines).toHaveLength(PAGE_LINES.length);
    result.lines.forEach((line, i) => {
      const want = PAGE_LINES[i].replace(/\s+/g, '');
      expect(editDistance(line.text.replace(/\s+/g, ''), want), `line ${i}: ${line.text}`).toBeLessThanOrEqual(Math.floor(0.2 * want.length));
      const [tl, tr] = line.box;
      expect(Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * (180 / Math.PI)).toBeCloseTo(10, -0.5);
    });
    expect((await api(stack.url, `jobs/${submitted.json.id}`, { method: 'DELETE' })).status).toBe(204);
  }, 240_000);

  it('`ergon ocr PAGE.png` prints the page\'s lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ergon-ocr-'));
    const path = join(dir, 'page.png');
    writeFileSync(path, png);
    let stdout = '';
    let done = false;
    const cli = runCli(['ocr', path, '--url', stack.url, '--key', TEST_API_KEY, '-q'], {
      env: {}, stdout: { write: (text: string) => (stdout += text) }, stderr: { write: () => true },
    }).finally(() => {
      done = true;
    });
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(undefined, undefined, ['onnx']);
    while (!done) {
      miner.send({ type: 'work-request' });
      const reply = await miner.next('lease', 'no-work');
      if (reply.type === 'no-work') await new Promise((resolve) => setTimeout(resolve, Math.min(reply.retryAfterMs, 200)));
      else expect((await runner.runHeld(miner, reply)).type).toMatch(/^(receipt|pending)$/);
    }
    expect(await cli).toBe(0);
    rmSync(dir, { recursive: true, force: true });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(PAGE_LINES.length);
    lines.forEach((line, i) => expect(editDistance(line.replace(/\s+/g, ''), PAGE_LINES[i].replace(/\s+/g, ''))).toBeLessThanOrEqual(5));
    // The CLI deletes the job once its result is fetched.
    expect(((await (await api(stack.url, 'jobs')).json()) as { jobs: unknown[] }).jobs).toEqual([]);
  }, 240_000);

  it('refuses a stage result computed without the normalisation, or zeros, and pays nothing for it', async () => {
    const submitted = await submit(png);
    expect(submitted.status).toBe(201);
    const cheat = async (outputs: (lease: Awaited<ReturnType<ScriptedMiner['lease']>>) => Promise<Float32Array[]>) => {
      const miner = await ScriptedMiner.connect(stack.url);
      miners.push(miner);
      await miner.hello(undefined, undefined, ['onnx']);
      const lease = await miner.lease();
      miner.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output: packResult(await outputs(lease)) });
      const verdict = await miner.next('receipt', 'rejected');
      miner.close();
      return verdict;
    };
    // The model run on the raw bytes, as if they were the floats it takes: the audit's re-run tells.
    const raw = await cheat((lease) => runner.outputs({ ...lease, params: { ...lease.params, normalize: JSON.stringify({ scale: [1, 1, 1], offset: [0, 0, 0] }) } }));
    expect(raw).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    const zeros = await cheat(async (lease) => (await runner.outputs(lease)).map((o) => new Float32Array(o.length)));
    expect(zeros).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    await mineUntilDone(submitted.json.id);
    expect((await api(stack.url, `jobs/${submitted.json.id}`, { method: 'DELETE' })).status).toBe(204);
  }, 240_000);

  it('resumes a queued OCR job of a long page after a restart', async () => {
    const submitted = await submit(long);
    expect(submitted.status).toBe(201);
    for (const miner of miners.splice(0)) miner.close();
    await stack.close();
    stack = await startStack({ dataDir: stack.dataDir });
    expect(await (await api(stack.url, `jobs/${submitted.json.id}`)).json()).toMatchObject({ kind: 'ocr', stage: 'detect' });
    await mineUntilDone(submitted.json.id);
    const result = (await (await api(stack.url, `jobs/${submitted.json.id}/result`)).json()) as OcrResult;
    expect(result.lines).toHaveLength(LONG_LINES.length);
    result.lines.forEach((line, i) => expect(editDistance(line.text.replace(/\s+/g, ''), LONG_LINES[i].replace(/\s+/g, '')), line.text).toBeLessThanOrEqual(4));
  }, 240_000);
});
