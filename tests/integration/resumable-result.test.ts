// A job's result over HTTP Range: the coordinator answers ranges, and the client resumes a download whose connection
// drops mid-body from the byte where it stopped, through a proxy that cuts the first transfer.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErgonClient } from '../../src/client/client.ts';
import { ndarray } from '../../src/protocol/npy.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

/** Bytes of the first result response let through before the proxy cuts the connection. */
const CUT_AFTER_BYTES = 100_000;

/**
 * A TCP proxy to the coordinator that cuts the first connection on which a result is asked for without a Range,
 * after CUT_AFTER_BYTES of the answer; it records every request line and Range header it forwards.
 */
async function cuttingProxy(target: URL): Promise<{ url: string; requests: string[]; cuts: number; close(): Promise<void> }> {
  const state = { requests: [] as string[], cuts: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let cutting = false;
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      const head = chunk.toString('latin1');
      const line = /^(GET|POST|DELETE) \S+/.exec(head)?.[0];
      if (line) {
        const range = /^range: (.*)$/im.exec(head)?.[1]?.trim();
        state.requests.push(range ? `${line} [${range}]` : line);
        if (state.cuts === 0 && line.endsWith('/result') && !range) cutting = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cutting) return void client.write(chunk);
      const room = CUT_AFTER_BYTES - sent;
      client.write(chunk.subarray(0, Math.max(0, room)));
      sent += chunk.byteLength;
      if (sent >= CUT_AFTER_BYTES) {
        state.cuts++;
        cutting = false;
        client.destroy();
        upstream.destroy();
      }
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no proxy port');
  return {
    url: `http://127.0.0.1:${address.port}/`,
    get requests() { return state.requests; },
    get cuts() { return state.cuts; },
    close: () => new Promise<void>((r) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => r());
    }),
  };
}

describe('resumable results', () => {
  let stack: TestStack;
  let jobId: string;
  let product: Uint8Array;
  beforeAll(async () => {
    stack = await startStack();
    const client = new ErgonClient({ url: stack.url, apiKey: TEST_API_KEY });
    const values = (count: number) => Float32Array.from({ length: count }, (_, i) => Math.sin(i));
    // 256x512 f32: 512 KiB of product, five times the cut.
    const job = await client.submitGemm(ndarray('f4', [256, 32], values(256 * 32)), ndarray('f4', [32, 512], values(32 * 512)));
    jobId = job.id;
    await ScriptedMiner.mineJob(stack.url, jobId);
    const whole = await api(stack.url, `jobs/${jobId}/result`);
    product = new Uint8Array(await whole.arrayBuffer());
    expect(product.byteLength).toBe(256 * 512 * 4);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the coordinator answers a range with 206 and its Content-Range, and a range past the end with 416', async () => {
    const part = await api(stack.url, `jobs/${jobId}/result`, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${product.byteLength}`);
    expect(part.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.from(product.subarray(1000, 2000)))).toBe(true);
    const tail = await api(stack.url, `jobs/${jobId}/result`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(Buffer.from(product.subarray(product.byteLength - 10)))).toBe(true);
    const past = await api(stack.url, `jobs/${jobId}/result`, { headers: { range: `bytes=${product.byteLength}-` } });
    expect(past.status).toBe(416);
    expect(await past.json()).toMatchObject({ error: { code: 'range-not-satisfiable' } });
    // If-Range with another tag: the whole body, never a piece of something else.
    const stale = await api(stack.url, `jobs/${jobId}/result`, { headers: { range: 'bytes=10-', 'if-range': '"another"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(product.byteLength);
  });

  it('a download dropped mid-body continues from where it stopped and gives the same bytes', async () => {
    const proxy = await cuttingProxy(new URL(stack.url));
    try {
      const client = new ErgonClient({ url: proxy.url, apiKey: TEST_API_KEY });
      const seen: number[] = [];
      const c = await client.gemmResult(jobId, { onBytes: (received) => seen.push(received) });
      expect(proxy.cuts).toBe(1);
      expect(Buffer.from(c.data.buffer).equals(Buffer.from(product))).toBe(true);
      expect(c.shape).toEqual([256, 512]);
      // The second request asked only for the rest: from the byte after the last one that arrived.
      const results = proxy.requests.filter((r) => r.includes('/result'));
      expect(results).toHaveLength(2);
      const resumedAt = Number(/\[bytes=(\d+)-\]$/.exec(results[1])?.[1]);
      expect(resumedAt).toBeGreaterThan(0);
      expect(resumedAt).toBeLessThan(CUT_AFTER_BYTES);
      expect(seen).toContain(resumedAt);
    } finally {
      await proxy.close();
    }
  });
});
