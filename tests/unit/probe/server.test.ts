import { afterEach, describe, expect, it } from 'vitest';
import { startProbeServer, type RunningProbeServer } from '../../../src/probe/server.ts';
import type { ProbeReading } from '../../../src/protocol/energy.ts';

const APP = 'http://localhost:8787';
const READING: ProbeReading = { probe: 'ergon-probe', atMs: 1, method: 'rapl', joules: 12, uncertaintyJoules: 0.6, sources: [] };

describe('probe server', () => {
  let running: RunningProbeServer | undefined;
  afterEach(async () => {
    await running?.close();
  });
  const start = async () => {
    running = await startProbeServer({
      host: '127.0.0.1', port: 0, allowedOrigins: [APP], pairingCode: 'ABCD-EFGH',
      hello: () => ({ probe: 'ergon-probe', version: 1, methods: ['rapl'] }),
      reading: async () => READING,
    });
    return `http://127.0.0.1:${running.port}`;
  };

  it('answers the app\'s preflight with CORS and Private Network Access headers', async () => {
    const base = await start();
    const res = await fetch(`${base}/v1/reading`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-ergon-pairing', 'access-control-request-private-network': 'true' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-private-network')).toBe('true');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/x-ergon-pairing/);
  });

  it('gives readings only with the pairing code, and only to the app\'s origin', async () => {
    const base = await start();
    const hello = await fetch(`${base}/v1/hello`, { headers: { origin: APP } });
    expect(await hello.json()).toEqual({ probe: 'ergon-probe', version: 1, methods: ['rapl'] });
    const noCode = await fetch(`${base}/v1/reading`, { headers: { origin: APP } });
    expect(noCode.status).toBe(401);
    expect(await noCode.json()).toMatchObject({ code: 'pairing-required' });
    const wrong = await fetch(`${base}/v1/reading`, { headers: { origin: APP, 'x-ergon-pairing': 'ABCD-EFGX' } });
    expect(wrong.status).toBe(401);
    const paired = await fetch(`${base}/v1/reading`, { headers: { origin: APP, 'x-ergon-pairing': 'abcd-efgh' } });
    expect(await paired.json()).toEqual(READING);
    const other = await fetch(`${base}/v1/reading`, { headers: { origin: 'https://evil.example', 'x-ergon-pairing': 'ABCD-EFGH' } });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a request for another host name (DNS rebinding)', async () => {
    const base = await start();
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/v1/hello`, { headers: { host: 'rebind.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });
});
