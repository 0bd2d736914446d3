// Operands by hash: a lease names its blocks, and only the session holding a live lease naming one may fetch it.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/protocol/codec.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('operands by hash', () => {
  let stack: TestStack;
  const miners: ScriptedMiner[] = [];
  const connect = async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello();
    return miner;
  };
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    for (const miner of miners) miner.close();
    await stack?.stop();
  });

  it('a lease names A and B by hash and carries no operand bytes; its holder fetches them whole and by range', async () => {
    const [m, n, k] = [256, 512, 1024];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 1), randomMatrix(k * n, 2));
    const miner = await connect();
    miner.send({ type: 'work-request' });
    const lease = await miner.nextRaw('lease');
    expect(lease.operands).toEqual({});
    expect(lease.refs.a).toMatchObject({ dtype: 'f32', shape: [256, 1024], bytes: 256 * 1024 * 4 });
    expect(lease.refs.b).toMatchObject({ dtype: 'f32', shape: [1024, 256], bytes: 1024 * 256 * 4 });
    // The whole lease is a few hundred bytes, against 2 MiB of operands carried inline before.
    expect(encodeMessage({ ...lease, v: PROTOCOL_VERSION }).byteLength).toBeLessThan(1024);

    const whole = await miner.fetchOperand(lease.refs.b.sha256);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('etag')).toBe(`"${lease.refs.b.sha256}"`);
    expect(whole.headers.get('cache-control')).toContain('immutable');
    const bytes = new Uint8Array(await whole.arrayBuffer());
    expect(bytes.byteLength).toBe(lease.refs.b.bytes);
    expect(sha256(bytes)).toBe(lease.refs.b.sha256);

    const part = await miner.fetchOperand(lease.refs.b.sha256, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${bytes.byteLength}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(1000, 2000));
    const tail = await miner.fetchOperand(lease.refs.b.sha256, { range: `bytes=${bytes.byteLength}-` });
    expect(tail.status).toBe(416);
    // The coordinator counts what it sent: the whole block and the 1000-byte range (the refused range sent nothing).
    expect(stack.operandBlobs.bytesServedTotal).toBe(bytes.byteLength + 1000);

    // Once its result is in, the lease no longer opens its operands.
    const computed = await miner.verdict(await withOperands(miner, lease), ScriptedMiner.compute(lease));
    expect(computed.type).toBe('receipt');
    const after = await miner.fetchOperand(lease.refs.a.sha256);
    expect(after.status).toBe(403);
    expect((await after.json()).error.code).toBe('no-lease');
    await ScriptedMiner.mineJob(stack.url, job.id);
    await waitForJob(stack.url, job.id);
  });

  it('refuses a blob to a request without a token, a session without a lease, and a session leased another job', async () => {
    const [m, n, k] = [256, 256, 64];
    const first = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 3), randomMatrix(k * n, 4));
    const holder = await connect();
    const lease = await holder.lease();
    expect(lease.unitId.startsWith(first.id)).toBe(true);
    const hash = lease.refs.a.sha256;

    const anonymous = await fetch(new URL(`api/operands/${hash}`, stack.url));
    expect(anonymous.status).toBe(403);
    expect((await anonymous.json()).error.code).toBe('no-operand-token');
    const forged = await fetch(new URL(`api/operands/${hash}`, stack.url), { headers: { 'x-ergon-operand-token': 'A'.repeat(32) } });
    expect(forged.status).toBe(403);

    const idle = await connect();
    const refused = await idle.fetchOperand(hash);
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.message).toMatch(/no live lease of this session/);

    // Another job's lease opens that job's blocks only.
    const second = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 5), randomMatrix(k * n, 6));
    const other = await connect();
    const otherLease = await other.lease();
    expect(otherLease.unitId.startsWith(second.id)).toBe(true);
    expect((await other.fetchOperand(otherLease.refs.a.sha256)).status).toBe(200);
    expect((await other.fetchOperand(hash)).status).toBe(403);
    // A page of a stranger origin is refused, even with the token; the coordinator's own page is served.
    const stranger = await holder.fetchOperand(hash, { origin: 'http://evil.example' });
    expect(stranger.status).toBe(403);
    expect((await stranger.json()).error.code).toBe('origin-not-allowed');
    expect((await holder.fetchOperand(hash, { origin: new URL(stack.url).origin })).status).toBe(200);
    // A made-up name is refused alike, and one that is not a hash is not found.
    expect((await holder.fetchOperand('0'.repeat(64))).status).toBe(403);
    expect((await holder.fetchOperand('../secret')).status).toBe(404);
  });
});

/** The lease with its operands fetched, as the scripted miner's next() gives leases. */
async function withOperands(miner: ScriptedMiner, lease: Awaited<ReturnType<ScriptedMiner['nextRaw']>> & { type: 'lease' }) {
  for (const [name, ref] of Object.entries(lease.refs)) {
    const data = new Uint8Array(await (await miner.fetchOperand(ref.sha256)).arrayBuffer());
    lease.operands[name] = { dtype: ref.dtype, shape: ref.shape, data };
  }
  return lease;
}

describe('operands by hash across origins', () => {
  it('an origin the operator allowed gets CORS headers and a preflight that lets the token through', async () => {
    const origin = 'http://miner.example';
    const stack = await startStack({ allowedOrigins: [origin] });
    const miner = await ScriptedMiner.connect(stack.url);
    try {
      await miner.hello();
      await submitGemm(stack.url, 64, 64, 64, randomMatrix(64 * 64, 7), randomMatrix(64 * 64, 8));
      const lease = await miner.lease();
      const preflight = await fetch(new URL(`api/operands/${lease.refs.b.sha256}`, stack.url), {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-ergon-operand-token' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
      expect(preflight.headers.get('access-control-allow-headers')).toContain('x-ergon-operand-token');
      const read = await miner.fetchOperand(lease.refs.b.sha256, { origin });
      expect(read.status).toBe(200);
      expect(read.headers.get('access-control-allow-origin')).toBe(origin);
    } finally {
      miner.close();
      await stack.stop();
    }
  });
});
