// The requester's HTTP API: bad jobs get a 4xx and a reason; good ones are accepted and reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startStack, submitGemm, type TestStack } from '../helpers/stack.ts';

describe('requester API', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const post = (query: string, body: Float32Array<ArrayBuffer>) =>
    api(stack.url, `jobs/gemm?${query}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });

  it('refuses bad shapes, wrong body lengths and non-finite operands with a reason', async () => {
    const cases: [string, Float32Array<ArrayBuffer>, number, string][] = [
      ['m=0&n=2&k=2', new Float32Array(4), 400, 'bad-shape'],
      ['m=2&n=2', new Float32Array(8), 400, 'bad-shape'],
      ['m=2.5&n=2&k=2', new Float32Array(8), 400, 'bad-shape'],
      ['m=99999999&n=2&k=2', new Float32Array(8), 400, 'bad-shape'],
      ['m=2&n=2&k=2', new Float32Array(7), 400, 'bad-body-length'],
      ['m=2&n=2&k=2', new Float32Array(9), 400, 'bad-body-length'],
      ['m=2&n=2&k=2', Float32Array.from([1, 2, 3, NaN, 5, 6, 7, 8]), 400, 'non-finite'],
      ['m=2&n=2&k=2', Float32Array.from([1, 2, 3, Infinity, 5, 6, 7, 8]), 400, 'non-finite'],
    ];
    for (const [query, body, status, code] of cases) {
      const res = await post(query, body);
      expect(res.status, query).toBe(status);
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code, query).toBe(code);
      expect(json.error.message.length).toBeGreaterThan(10);
    }
    expect((await (await fetch(new URL('api/status', stack.url))).json()).jobs).toBe(0);
  });

  it('reports a queued job and refuses its result until it is done', async () => {
    const job = await submitGemm(stack.url, 3, 5, 4, new Float32Array(12).fill(1), new Float32Array(20).fill(2));
    expect(job).toMatchObject({ status: 'queued', unitsTotal: 1, unitsDone: 0 });
    const res = await api(stack.url, `jobs/${job.id}/result`);
    expect(res.status).toBe(409);
    expect((await api(stack.url, 'jobs/no-such-job')).status).toBe(404);
  });
});
