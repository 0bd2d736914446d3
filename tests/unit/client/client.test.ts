// The typed client's handling of what comes back: refusals with the API's code and sentence, answers that are not
// the API's, and a coordinator that is away for a while during a wait.
import { describe, expect, it } from 'vitest';
import { ErgonApiError, ErgonClient, ErgonInputError, ErgonUnreachableError, gemmShape } from '../../../src/client/client.ts';
import { ndarray } from '../../../src/protocol/npy.ts';

const refused = () => Promise.reject(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) }));
const answer = (status: number, body: string) => Promise.resolve(new Response(body, { status }));
const view = (status: string) => JSON.stringify({ id: 'j', kind: 'gemm', status, unitsTotal: 1, unitsDone: status === 'done' ? 1 : 0, miners: 0, createdAtMs: 0 });

describe('ErgonClient', () => {
  it('carries the API\'s code and sentence, and names a non-API answer by its status', async () => {
    const api = new ErgonClient({ url: 'http://c.test', apiKey: 'k', fetch: () => answer(401, '{"error":{"code":"bad-api-key","message":"that API key is not known"}}') });
    await expect(api.job('j')).rejects.toMatchObject({ status: 401, code: 'bad-api-key', message: 'that API key is not known' });
    const proxy = new ErgonClient({ url: 'http://c.test', apiKey: 'k', fetch: () => answer(502, '<html>bad gateway</html>') });
    const err = await proxy.jobs().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErgonApiError);
    expect(err).toMatchObject({ code: 'http-502', message: expect.stringMatching(/answered 502.*bad gateway/) });
  });

  it('says why the coordinator cannot be reached', async () => {
    const api = new ErgonClient({ url: 'http://127.0.0.1:1/', apiKey: 'k', fetch: refused });
    const err = await api.jobs().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErgonUnreachableError);
    expect((err as Error).message).toBe('cannot reach the coordinator at http://127.0.0.1:1: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:1)');
  });

  it('keeps waiting through a coordinator that is away for a while, and gives up after unreachableMs', async () => {
    const replies = [refused, refused, () => answer(200, view('running')), refused, () => answer(200, view('done'))];
    const api = new ErgonClient({ url: 'http://c.test', apiKey: 'k', fetch: () => (replies.shift() ?? refused)() });
    await expect(api.wait('j', { pollMs: 1 })).resolves.toMatchObject({ status: 'done' });
    const away = new ErgonClient({ url: 'http://c.test', apiKey: 'k', fetch: refused });
    await expect(away.wait('j', { pollMs: 1, unreachableMs: 20 })).rejects.toBeInstanceOf(ErgonUnreachableError);
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => new ErgonClient({ url: 'ftp://c.test', apiKey: 'k' })).toThrow(ErgonInputError);
    expect(() => new ErgonClient({ url: 'not a url', apiKey: 'k' })).toThrow(/is not a URL/);
  });

  it('checks that A and B can be multiplied', () => {
    const m = (rows: number, cols: number) => ndarray('f4', [rows, cols], new Float32Array(rows * cols));
    expect(gemmShape(m(3, 4), m(4, 5))).toEqual({ m: 3, n: 5, k: 4 });
    expect(() => gemmShape(m(3, 4), m(5, 4))).toThrow(/A's columns \(4\) must equal B's rows \(5\)/);
    expect(() => gemmShape(ndarray('f4', [4], new Float32Array(4)), m(4, 5))).toThrow(/A must be a matrix/);
    expect(() => gemmShape(m(0, 4), m(4, 5))).toThrow(/no dimension may be 0/);
  });
});
