// The requester API's guards: API keys, jobs visible only to their owner, same-origin CORS, rate limits, sizes checked first.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, OTHER_API_KEY, startStack, submitGemm, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

type ErrorBody = { error: { code: string; message: string } };

describe('requester API security', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ rateLimits: { apiRequests: { perSecond: 5, burst: 10 } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const url = (path: string) => new URL(`api/${path}`, stack.url);
  const body = new Float32Array(8);

  it('refuses requests without a key or with an unknown key, with a reason', async () => {
    const none = await fetch(url('jobs/gemm?m=2&n=2&k=2'), { method: 'POST', body });
    expect(none.status).toBe(401);
    expect(((await none.json()) as ErrorBody).error.code).toBe('no-api-key');
    const wrong = await fetch(url('jobs/gemm?m=2&n=2&k=2'), { method: 'POST', body, headers: { authorization: 'Bearer ergon_not_a_real_key_000' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as ErrorBody).error).toMatchObject({ code: 'bad-api-key' });
    expect((await fetch(url('jobs/anything'))).status).toBe(401);
    // What a miner page needs stays public.
    expect((await fetch(url('config'))).status).toBe(200);
  });

  it('shows, serves and deletes a job only for the key that submitted it', async () => {
    const job = await submitGemm(stack.url, 2, 2, 2, new Float32Array(4).fill(1), new Float32Array(4).fill(1));
    const other = await api(stack.url, `jobs/${job.id}`, {}, OTHER_API_KEY);
    expect(other.status).toBe(404);
    expect((await api(stack.url, `jobs/${job.id}`, { method: 'DELETE' }, OTHER_API_KEY)).status).toBe(404);
    expect((await api(stack.url, `jobs/${job.id}`, {}, TEST_API_KEY)).status).toBe(200);
    expect((await api(stack.url, `jobs/${job.id}`, { method: 'DELETE' }, TEST_API_KEY)).status).toBe(204);
  });

  it('answers browsers only from the coordinator\'s own origin', async () => {
    const own = stack.url.replace(/\/$/, '');
    const foreign = await fetch(url('config'), { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await foreign.json()) as ErrorBody).error.code).toBe('origin-not-allowed');
    const preflight = await fetch(url('jobs/gemm'), { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(403);
    const same = await fetch(url('config'), { headers: { origin: own } });
    expect(same.status).toBe(200);
    expect(same.headers.get('access-control-allow-origin')).toBe(own);
  });

  it('refuses a huge declared job or a missing length before reading or allocating the body', async () => {
    // 16384^3 operands would be 2 GiB: refused from the query alone, whatever the body.
    const huge = await api(stack.url, 'jobs/gemm?m=16384&n=16384&k=16384', { method: 'POST', body });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as ErrorBody).error.code).toBe('job-too-large');
    const lying = await rawPost('jobs/gemm?m=2&n=2&k=2', { 'content-length': String(2 ** 40) });
    expect(lying.status).toBe(400);
    expect(lying.body).toMatch(/bad-body-length/);
    const chunked = await rawPost('jobs/gemm?m=2&n=2&k=2', { 'transfer-encoding': 'chunked' });
    expect(chunked.status).toBe(411);
  });

  it('limits each key\'s request rate with 429 and Retry-After, and leaves other keys alone', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await api(stack.url, 'jobs/none', {}, OTHER_API_KEY)).status);
    // The bucket holds 10 and refills 5 a second: the first few pass, then most are refused.
    expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(15);
    const limited = await api(stack.url, 'jobs/none', {}, OTHER_API_KEY);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as ErrorBody).error.code).toBe('rate-limited');
    expect((await api(stack.url, 'jobs/none', {}, TEST_API_KEY)).status).toBe(404);
  });

  /** A POST whose headers say what a test wants, sending no body: fetch would not let it lie. */
  function rawPost(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(url(path), { method: 'POST', headers: { ...headers, authorization: `Bearer ${TEST_API_KEY}` } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.flushHeaders();
      if (headers['transfer-encoding']) req.end();
    });
  }
});
