// The CLI's onnx and ocr commands (whose coordinator side lands with the onnx kind): their arguments, the requests
// they build against the API contract (POST /api/models, /api/jobs/onnx?model=SHA256, /api/jobs/ocr), what they
// write, and their exit codes; and the progress bar on a terminal. Requests are answered by a recording fetch.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../../src/client/cli.ts';
import { ProgressReporter } from '../../../src/client/progress.ts';
import { ndarray } from '../../../src/protocol/npy.ts';
import { decodeNpz, encodeNpz } from '../../../src/protocol/npz.ts';

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

const JOB_ID = '6f1c2b9e-0000-4000-8000-000000000001';
const KEY = 'ergon_unit_key';

/** A fetch that records each request and answers it as the coordinator's API would, from `routes`. */
function fakeApi(routes: Record<string, (req: Recorded) => Response>) {
  const requests: Recorded[] = [];
  const fetch = (async (input: URL | RequestInfo, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    const req: Recorded = { method: init.method ?? 'GET', path: `${url.pathname}${url.search}`, headers, body: init.body instanceof Uint8Array ? Uint8Array.from(init.body) : undefined };
    requests.push(req);
    const route = routes[`${req.method} ${url.pathname}`];
    if (!route) return json(404, { error: { code: 'not-found', message: 'no such API route' } });
    return route(req);
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function bytes(status: number, body: Uint8Array, contentType: string): Response {
  return new Response(Uint8Array.from(body), { status, headers: { 'content-type': contentType, 'content-length': String(body.byteLength) } });
}

const job = (kind: string, status: string, done: number) => ({ id: JOB_ID, kind, status, unitsTotal: 2, unitsDone: done, miners: 1, createdAtMs: 0 });

function io(fetch: typeof globalThis.fetch) {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      env: { ERGON_URL: 'http://coordinator.test:8787', ERGON_API_KEY: KEY },
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
      fetch,
    },
  };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ergon-cli-unit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ergon onnx', () => {
  const model = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
  const sha = createHash('sha256').update(model).digest('hex');
  const inputs = encodeNpz({ x: ndarray('f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])) });
  const outputs = encodeNpz({ y: ndarray('f4', [2], Float32Array.from([6, 15])) });
  const routes = {
    'POST /api/models': () => json(201, { id: sha, inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }], outputs: [] }),
    'POST /api/jobs/onnx': () => json(201, job('onnx', 'queued', 0)),
    [`GET /api/jobs/${JOB_ID}`]: () => json(200, job('onnx', 'done', 2)),
    [`GET /api/jobs/${JOB_ID}/result`]: () => bytes(200, outputs, 'application/octet-stream'),
    [`DELETE /api/jobs/${JOB_ID}`]: () => new Response(null, { status: 204 }),
  };

  it('stores the model, submits the .npz against its sha256, writes the outputs and deletes the job', async () => {
    writeFileSync(join(dir, 'model.onnx'), model);
    writeFileSync(join(dir, 'inputs.npz'), inputs);
    const api = fakeApi(routes);
    const { io: cliIo, out } = io(api.fetch);
    const code = await runCli(['onnx', join(dir, 'model.onnx'), join(dir, 'inputs.npz'), '-o', join(dir, 'out.npz')], cliIo);
    expect(out.stderr).toMatch(/outputs y written to/);
    expect(code).toBe(EXIT.ok);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /api/models',
      `POST /api/jobs/onnx?model=${sha}`,
      `GET /api/jobs/${JOB_ID}`,
      `GET /api/jobs/${JOB_ID}/result`,
      `DELETE /api/jobs/${JOB_ID}`,
    ]);
    for (const r of api.requests) expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(api.requests[0].body).toEqual(model);
    expect(api.requests[1].body).toEqual(inputs);
    expect(api.requests[1].headers['content-type']).toBe('application/octet-stream');
    const written = decodeNpz(readFileSync(join(dir, 'out.npz')));
    expect(written.ok && Array.from(written.value.get('y')?.data as Float32Array)).toEqual([6, 15]);
  });

  it('refuses inputs that are not an .npz before sending anything (exit 3), and needs -o (exit 2)', async () => {
    writeFileSync(join(dir, 'bad.npz'), 'PK not really');
    const api = fakeApi(routes);
    const bad = io(api.fetch);
    expect(await runCli(['onnx', join(dir, 'model.onnx'), join(dir, 'bad.npz'), '-o', join(dir, 'o.npz')], bad.io)).toBe(EXIT.badInput);
    expect(bad.out.stderr).toMatch(/bad\.npz: not a readable \.npz/);
    const noOut = io(api.fetch);
    expect(await runCli(['onnx', join(dir, 'model.onnx'), join(dir, 'inputs.npz')], noOut.io)).toBe(EXIT.usage);
    expect(noOut.out.stderr).toMatch(/needs -o FILE/);
    expect(api.requests).toEqual([]);
  });

  it('passes on the coordinator\'s refusal of a model with its code (exit 4)', async () => {
    const api = fakeApi({ ...routes, 'POST /api/models': () => json(400, { error: { code: 'unsupported-operator', message: 'operator Foo is not run by the miners' } }) });
    const run = io(api.fetch);
    expect(await runCli(['onnx', join(dir, 'model.onnx'), join(dir, 'inputs.npz'), '-o', join(dir, 'o.npz')], run.io)).toBe(EXIT.refused);
    expect(run.out.stderr).toBe('ergon: the coordinator refused: unsupported-operator: operator Foo is not run by the miners\n');
  });
});

describe('ergon ocr', () => {
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 9, 9]);
  const lines = { lines: [{ text: '第一行', box: [[0, 0], [10, 0], [10, 5], [0, 5]], confidence: 0.98 }, { text: 'second', box: [[0, 6], [10, 6], [10, 9], [0, 9]], confidence: 0.9 }] };
  const routes = (status = 'done') => ({
    'POST /api/jobs/ocr': () => json(201, job('ocr', 'queued', 0)),
    [`GET /api/jobs/${JOB_ID}`]: () => json(200, { ...job('ocr', status, status === 'done' ? 2 : 1), error: { code: 'audit-failed', message: 'no miner could read it' } }),
    [`GET /api/jobs/${JOB_ID}/result`]: () => bytes(200, new TextEncoder().encode(JSON.stringify(lines)), 'application/json'),
    [`DELETE /api/jobs/${JOB_ID}`]: () => new Response(null, { status: 204 }),
  });

  it('sends a PNG as image/png and prints its lines of text', async () => {
    writeFileSync(join(dir, 'page.png'), png);
    const api = fakeApi(routes());
    const run = io(api.fetch);
    expect(await runCli(['ocr', join(dir, 'page.png')], run.io)).toBe(EXIT.ok);
    expect(run.out.stdout).toBe('第一行\nsecond\n');
    expect(api.requests[0]).toMatchObject({ method: 'POST', path: '/api/jobs/ocr', headers: { 'content-type': 'image/png' }, body: png });
  });

  it('sends a JPEG as image/jpeg, and --json prints the lines with boxes and confidences', async () => {
    writeFileSync(join(dir, 'page.jpg'), jpeg);
    const api = fakeApi(routes());
    const run = io(api.fetch);
    expect(await runCli(['ocr', join(dir, 'page.jpg'), '--json'], run.io)).toBe(EXIT.ok);
    expect(JSON.parse(run.out.stdout)).toEqual(lines);
    expect(api.requests[0].headers['content-type']).toBe('image/jpeg');
  });

  it('a job that fails is exit 6 with its reason; a second file or an unknown option is exit 2', async () => {
    const failed = io(fakeApi(routes('failed')).fetch);
    expect(await runCli(['ocr', join(dir, 'page.png')], failed.io)).toBe(EXIT.jobFailed);
    expect(failed.out.stderr).toMatch(/job .* ended failed: no miner could read it/);
    const api = fakeApi(routes());
    const two = io(api.fetch);
    expect(await runCli(['ocr', join(dir, 'page.png'), join(dir, 'page.jpg')], two.io)).toBe(EXIT.usage);
    const f16 = io(api.fetch);
    expect(await runCli(['ocr', join(dir, 'page.png'), '--f16'], f16.io)).toBe(EXIT.usage);
    expect(f16.out.stderr).toMatch(/--f16 does not apply to "ergon ocr"/);
    expect(api.requests).toEqual([]);
  });
});

describe('progress', () => {
  const view = (done: number) => ({ job: { ...job('gemm', done === 4 ? 'done' : 'running', done), unitsTotal: 4 }, unitsPerSecond: 2, etaMs: (4 - done) * 500, elapsedMs: 1000 });

  it('draws a bar in place on a terminal: units verified of total, throughput and ETA', () => {
    let text = '';
    const bar = new ProgressReporter({ write: (t: string) => (text += t), isTTY: true, columns: 100 }, { quiet: false });
    bar.update(view(1));
    bar.update(view(4));
    bar.end();
    expect(text).toBe('\r\x1b[2K[######..................] 1/4 units verified  2.00 units/s  ETA 2s\r\x1b[2K[########################] 4/4 units verified  2.00 units/s  done\n');
  });

  it('writes plain lines when piped, and nothing when quiet', () => {
    let text = '';
    const piped = new ProgressReporter({ write: (t: string) => (text += t) }, { quiet: false });
    piped.update(view(1));
    piped.update(view(4));
    expect(text).toBe('progress: 1/4 units verified, 2.00 units/s, ETA 2s\nprogress: 4/4 units verified, 2.00 units/s, done\n');
    let quietText = '';
    const quiet = new ProgressReporter({ write: (t: string) => (quietText += t), isTTY: true }, { quiet: true });
    quiet.update(view(1));
    quiet.end();
    expect(quietText).toBe('');
  });
});
