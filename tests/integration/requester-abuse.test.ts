// The requester API under abuse: identical concurrent submits, per-key and per-job bounds, uploads streamed to disk and
// bounded, stalled uploads closed, and Host names the coordinator does not serve refused (DNS rebinding).
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keyId } from '../../src/coordinator/api-keys.ts';
import type { GemmJob } from '../../src/work/gemm/gemm.ts';
import { toHalves } from '../../src/work/gemm/halves.ts';
import { randomMatrix } from '../helpers/random.ts';
import { api, OTHER_API_KEY, startStack, TEST_API_KEY, type JobView, type TestStack } from '../helpers/stack.ts';

type ErrorBody = { error: { code: string; message: string } };
const MiB = 1024 * 1024;

/** A, then B: the body of an m x n x k job. */
function operands(m: number, n: number, k: number, seed: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Float32Array.from(randomMatrix(m * k + k * n, seed)).buffer);
}

function post(stack: TestStack, m: number, n: number, k: number, body: Uint8Array<ArrayBuffer>, apiKey = TEST_API_KEY): Promise<Response> {
  return api(stack.url, `jobs/gemm?m=${m}&n=${n}&k=${k}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body }, apiKey);
}

/** Deletes every job the stack holds, so that each test starts with nothing charged to either key. */
async function deleteAllJobs(stack: TestStack): Promise<void> {
  for (const id of await stack.queue.jobIds()) {
    const state = await stack.queue.job(id);
    if (state) await stack.jobs.remove(state);
  }
}

async function temporaryFiles(stack: TestStack): Promise<{ count: number; bytes: number }> {
  const dir = join(stack.dataDir, 'operands');
  const names = (await readdir(dir)).filter((name) => name.endsWith('.partial'));
  // A file listed here may be removed before it is measured (an upload closing meanwhile): count what is still there.
  let count = 0;
  let bytes = 0;
  for (const name of names) {
    const size = await stat(join(dir, name)).then(
      (info) => info.size,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      },
    );
    if (size === undefined) continue;
    count += 1;
    bytes += size;
  }
  return { count, bytes };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request whose headers (Host included) and body pacing the test controls: fetch would not let it lie or stall. */
function raw(stack: TestStack, method: string, path: string, headers: Record<string, string>): { req: ClientRequest; response: Promise<RawResponse> } {
  const req = request(new URL(path, stack.url), { method, headers });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { req, response };
}

/** Starts an upload of an m x n x k job, sends `sentBytes` of its body and then nothing more. */
function stalledUpload(stack: TestStack, m: number, n: number, k: number, sentBytes: number, apiKey = TEST_API_KEY) {
  const bodyBytes = 4 * (m * k + k * n);
  const upload = raw(stack, 'POST', `api/jobs/gemm?m=${m}&n=${n}&k=${k}`, {
    authorization: `Bearer ${apiKey}`,
    'content-type': 'application/octet-stream',
    'content-length': String(bodyBytes),
  });
  // A test that hangs up on purpose reads no response.
  upload.response.catch(() => {});
  upload.req.write(operands(m, n, k, 7).subarray(0, sentBytes));
  return upload;
}

describe('requester API under abuse, default limits', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses a job whose product would exceed 256 MiB, however small its body', async () => {
    // 16384 x 1 times 1 x 16384: 128 KiB of operands, a 1 GiB product.
    const res = await post(stack, 16384, 16384, 1, operands(16384, 16384, 1, 2));
    expect(res.status).toBe(413);
    const { error } = (await res.json()) as ErrorBody;
    expect(error.code).toBe('product-too-large');
    expect(error.message).toContain('16384x16384');
    expect((await stack.queue.counts()).jobs).toBe(0);
    // An 8192 x 8192 product, 256 MiB, the product of the largest square operands, is still accepted.
    const largest = await post(stack, 8192, 8192, 1, operands(8192, 8192, 1, 3));
    expect(largest.status).toBe(201);
    await deleteAllJobs(stack);
  });

  it('refuses a Host it does not serve before any CORS header, so a rebinding page cannot read it', async () => {
    const port = String(stack.port);
    const rebound = raw(stack, 'GET', 'api/config', { host: `rebind.example:${port}`, origin: `http://rebind.example:${port}` });
    rebound.req.end();
    const refused = await rebound.response;
    expect(refused.status).toBe(421);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    expect((JSON.parse(refused.body) as ErrorBody).error.code).toBe('unknown-host');
    const preflight = raw(stack, 'OPTIONS', 'api/jobs/gemm', {
      host: `rebind.example:${port}`, origin: `http://rebind.example:${port}`, 'access-control-request-method': 'POST',
    });
    preflight.req.end();
    expect((await preflight.response).status).toBe(421);
    // The job routes too, key or not.
    const submit = raw(stack, 'GET', 'api/jobs/none', { host: `rebind.example:${port}`, authorization: `Bearer ${TEST_API_KEY}` });
    submit.req.end();
    expect((await submit.response).status).toBe(421);
    // Its own address and the loopback names of it are served.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost']) {
      const own = raw(stack, 'GET', 'api/config', { host });
      own.req.end();
      expect((await own.response).status, host).toBe(200);
    }
  });

  it('answers 100 concurrent submits of identical operands with 201 or 429, never a 500, and stores the operands of each job once', async () => {
    const body = operands(16, 16, 16, 1);
    const responses = await Promise.all(Array.from({ length: 100 }, () => post(stack, 16, 16, 16, body)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s !== 201 && s !== 429)).toEqual([]);
    const accepted = responses.filter((r) => r.status === 201);
    for (const res of responses.filter((r) => r.status === 429)) {
      expect(['rate-limited', 'quota-exceeded']).toContain(((await res.json()) as ErrorBody).error.code);
    }
    const ids = new Set(await Promise.all(accepted.map(async (r) => ((await r.json()) as JobView).id)));
    expect(ids.size).toBe(accepted.length);
    expect(accepted.length).toBeGreaterThan(0);
    for (const id of ids) expect(await stack.jobs.find(id, keyId(TEST_API_KEY)), id).toBeDefined();
    // Each job's A and B are stored once, content-addressed (each job's depth is shuffled, so identical bodies make
    // different operands; identical puts at once are tested in tests/unit/coordinator/operand-store.test.ts), and
    // no temporary file is left behind.
    expect((await readdir(join(stack.dataDir, 'operands'))).filter((name) => /^[0-9a-f]{64}$/.test(name))).toHaveLength(2 * accepted.length);
    expect((await temporaryFiles(stack)).count).toBe(0);
    await deleteAllJobs(stack);
  });
});

describe('requester API under abuse, per-key bounds', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({
      rateLimits: { apiRequests: { perSecond: 1_000, burst: 1_000 } },
      quotas: { openJobs: 5, heldBytes: 40 * MiB },
      publicHosts: ['ergon.example.org'],
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  afterEach(async () => {
    await deleteAllJobs(stack);
  });

  it('accepts as many concurrent jobs as a key may have open and refuses the rest with a reason', async () => {
    const body = operands(8, 8, 8, 4);
    const responses = await Promise.all(Array.from({ length: 20 }, () => post(stack, 8, 8, 8, body)));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = responses.filter((r) => r.status !== 201);
    expect(refused.map((r) => r.status)).toEqual(Array(15).fill(429));
    const { error } = (await refused[0].json()) as ErrorBody;
    expect(error.code).toBe('quota-exceeded');
    expect(error.message).toMatch(/5 open jobs/);
    // Another key is not held back by this one's jobs.
    expect((await post(stack, 8, 8, 8, body, OTHER_API_KEY)).status).toBe(201);
    // Deleting one makes room for one.
    const first = (await responses.find((r) => r.status === 201)?.json()) as JobView;
    expect((await api(stack.url, `jobs/${first.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await post(stack, 8, 8, 8, body)).status).toBe(201);
    expect((await post(stack, 8, 8, 8, body)).status).toBe(429);
  });

  it('bounds the bytes a key\'s jobs hold on the coordinator: operands and product', async () => {
    // 1024^3 in f32: 8 MiB of operands and a 4 MiB product, 12 MiB a job; three fit in 40 MiB, a fourth does not.
    const jobs: JobView[] = [];
    for (let seed = 10; seed < 13; seed++) {
      const res = await post(stack, 1024, 1024, 1024, operands(1024, 1024, 1024, seed));
      expect(res.status).toBe(201);
      jobs.push((await res.json()) as JobView);
    }
    const fourth = await post(stack, 1024, 1024, 1024, operands(1024, 1024, 1024, 13));
    expect(fourth.status).toBe(429);
    const { error } = (await fourth.json()) as ErrorBody;
    expect(error.code).toBe('quota-exceeded');
    expect(error.message).toContain(String(40 * MiB));
    expect((await stack.queue.counts()).jobs).toBe(3);
    expect((await api(stack.url, `jobs/${jobs[0].id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await post(stack, 1024, 1024, 1024, operands(1024, 1024, 1024, 13))).status).toBe(201);
  });

  it('serves the public names the operator configured, with or without a port', async () => {
    for (const host of ['ergon.example.org', 'ergon.example.org:443', 'ERGON.example.org.']) {
      const named = raw(stack, 'GET', 'api/config', { host });
      named.req.end();
      expect((await named.response).status, host).toBe(200);
    }
    const other = raw(stack, 'GET', 'api/config', { host: 'example.org' });
    other.req.end();
    expect((await other.response).status).toBe(421);
  });
});

describe('requester API under abuse, uploads in progress', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // Three 8 MiB bodies fit in the coordinator's 24 MiB for uploads in progress; a stall here never times out.
    stack = await startStack({ uploadLimits: { bytesInFlight: 24 * MiB, idleTimeoutMs: 600_000 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('streams uploads to disk, holding a bounded buffer each, bounds the bytes in flight and frees them when a client leaves', async () => {
    const { UPLOAD_BUFFER_BYTES } = await import('../../src/coordinator/upload.ts');
    const sentBytes = 2.5 * MiB;
    const uploads = [stalledUpload(stack, 1024, 1024, 1024, sentBytes), stalledUpload(stack, 1024, 1024, 1024, sentBytes), stalledUpload(stack, 1024, 1024, 1024, sentBytes, OTHER_API_KEY)];
    await until(() => stack.uploads.stats().receivedBytes === 3 * sentBytes, 'the coordinator has received what was sent');
    const stats = stack.uploads.stats();
    expect(stats.uploads).toBe(3);
    expect(stats.reservedBytes).toBe(24 * MiB);
    // Not the 8 MiB each declared: at most one buffer each in memory, the rest on disk.
    expect(stats.bufferedBytes).toBeLessThanOrEqual(3 * UPLOAD_BUFFER_BYTES);
    const onDisk = await temporaryFiles(stack);
    expect(onDisk.count).toBe(3);
    expect(onDisk.bytes + stats.bufferedBytes).toBe(3 * sentBytes);

    // A fourth would pass the 24 MiB: refused at once, before its body is read.
    const fourth = stalledUpload(stack, 1024, 1024, 1024, 0, OTHER_API_KEY);
    const busy = await fourth.response;
    expect(busy.status).toBe(503);
    expect((JSON.parse(busy.body) as ErrorBody).error.code).toBe('uploads-busy');
    expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    fourth.req.destroy();

    // Clients that hang up leave nothing held: no reservation, no buffer, no temporary file.
    for (const upload of uploads) upload.req.destroy();
    await until(() => stack.uploads.stats().uploads === 0, 'the abandoned uploads are closed');
    expect(stack.uploads.stats()).toEqual({ uploads: 0, reservedBytes: 0, receivedBytes: 0, bufferedBytes: 0 });
    await until(async () => (await temporaryFiles(stack)).count === 0, 'the temporary files are removed');
    expect((await post(stack, 1024, 1024, 1024, operands(1024, 1024, 1024, 20))).status).toBe(201);
    expect(stack.uploads.stats().uploads).toBe(0);
  });

  it('checks every block of a body it streams: a NaN in the last block is refused, an f16 body is stored as its halves', async () => {
    // 1024^3: 8 MiB, eight blocks; the NaN is in the last, after seven have gone to disk.
    const values = Float32Array.from(randomMatrix(2 * 1024 * 1024, 21));
    values[values.length - 1] = NaN;
    const bad = await post(stack, 1024, 1024, 1024, new Uint8Array(values.buffer));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error.code).toBe('non-finite');
    expect((await temporaryFiles(stack)).count).toBe(0);

    values[values.length - 1] = 0.5;
    const res = await api(stack.url, 'jobs/gemm?m=1024&n=1024&k=1024&precision=f16', { method: 'POST', body: new Uint8Array(values.buffer) });
    expect(res.status).toBe(201);
    const job = (await stack.queue.job(((await res.json()) as JobView).id))?.job as GemmJob | undefined;
    if (job?.precision !== 'f16') throw new Error('an f16 job was expected');
    const halves = toHalves(values);
    const bytes = (h: Uint16Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength);
    // The job keeps the halves with its depth in a random order (see shuffleDepth): the same values, reordered.
    const sorted = (h: Uint16Array) => bytes(Uint16Array.from(h).sort());
    expect(sorted(job.halves.a).equals(sorted(halves.subarray(0, 1024 * 1024)))).toBe(true);
    expect(sorted(job.halves.b).equals(sorted(halves.subarray(1024 * 1024)))).toBe(true);
    await deleteAllJobs(stack);
  });
});

describe('requester API under abuse, stalled uploads', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ uploadLimits: { idleTimeoutMs: 500 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('closes an upload that sends nothing for a while with 408 and frees what it held', async () => {
    const upload = stalledUpload(stack, 1024, 1024, 1024, 1.5 * MiB);
    const res = await upload.response;
    expect(res.status).toBe(408);
    expect(res.headers.connection).toBe('close');
    const { error } = JSON.parse(res.body) as ErrorBody;
    expect(error.code).toBe('upload-stalled');
    expect(error.message).toMatch(/no bytes for 500 ms/);
    await until(() => stack.uploads.stats().uploads === 0, 'the stalled upload is closed');
    expect(stack.uploads.stats()).toEqual({ uploads: 0, reservedBytes: 0, receivedBytes: 0, bufferedBytes: 0 });
    await until(async () => (await temporaryFiles(stack)).count === 0, 'its temporary file is removed');
    expect((await stack.queue.counts()).jobs).toBe(0);
  });
});
