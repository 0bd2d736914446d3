// Operands by hash: a lease names its blocks, and only the session holding a live lease naming one may fetch it.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/protocol/codec.ts';
import { ndarray } from '../../src/protocol/npy.ts';
import { encodeNpz } from '../../src/protocol/npz.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { mlpModel } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('operands by hash', () => {
  let stack: TestStack;
  const miners: ScriptedMiner[] = [];
  const connect = async (kinds = ['gemm']) => {
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(undefined, undefined, kinds);
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

  it('an onnx lease names its input batch by hash, uint8 bytes exactly as sent, and only its holder reads them', async () => {
    // 16384 samples of 4 uint8 channels: 64 KiB of input in one unit, which the lease used to carry inline.
    const [inDim, batch] = [4, 16_384];
    const model = mlpModel(inDim, 32, 8, 9);
    const posted = await api(stack.url, 'models', { method: 'POST', body: model });
    expect(posted.status).toBe(201);
    const sha = ((await posted.json()) as { id: string }).id;
    const pixels = Uint8Array.from({ length: batch * inDim }, (_, i) => (i * 31 + 7) % 256);
    const normalize = JSON.stringify({ scale: Array(inDim).fill(1 / 255), offset: Array(inDim).fill(-0.5) });
    const body = Uint8Array.from(encodeNpz(new Map([['x', ndarray('u1', [batch, inDim], pixels)]])));
    const submitted = await api(stack.url, `jobs/onnx?model=${sha}&normalize=${encodeURIComponent(normalize)}`, { method: 'POST', body });
    expect(submitted.status).toBe(201);
    const job = (await submitted.json()) as { id: string };

    const holder = await connect(['onnx']);
    holder.send({ type: 'work-request' });
    const lease = await holder.nextRaw('lease');
    expect(lease.unitId.startsWith(job.id)).toBe(true);
    // Named by the hash of the requester's own bytes, one a value; the normalisation travels as a parameter.
    expect(lease.operands).toEqual({});
    expect(lease.refs).toEqual({ i0: { sha256: sha256(pixels), bytes: batch * inDim, dtype: 'u8', shape: [batch, inDim] } });
    expect(JSON.parse(String(lease.params.normalize))).toEqual(JSON.parse(normalize));
    expect(encodeMessage({ ...lease, v: PROTOCOL_VERSION }).byteLength).toBeLessThan(4096);

    // Another onnx miner, one without a token, and a made-up token are refused; the holder reads the bytes.
    const idle = await connect(['onnx']);
    const refused = await idle.fetchOperand(lease.refs.i0.sha256);
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('no-lease');
    expect((await fetch(new URL(`api/operands/${lease.refs.i0.sha256}`, stack.url))).status).toBe(403);
    expect((await fetch(new URL(`api/operands/${lease.refs.i0.sha256}`, stack.url), { headers: { 'x-ergon-operand-token': 'B'.repeat(32) } })).status).toBe(403);
    const read = await holder.fetchOperand(lease.refs.i0.sha256);
    expect(read.status).toBe(200);
    expect(new Uint8Array(await read.arrayBuffer())).toEqual(pixels);

    // Run on the fetched bytes: the coordinator's audit (a new key's first results are always audited) re-runs the
    // unit on its own copy of the inputs and pays, so the miner computed on the very bytes the requester sent.
    const runner = new OnnxRunnerForTests(stack.url);
    const verdict = await runner.run(holder, await withOperands(holder, lease));
    expect(verdict.type).toBe('receipt');
    expect((await holder.fetchOperand(lease.refs.i0.sha256)).status).toBe(403);
    expect(await waitForJob(stack.url, job.id)).toMatchObject({ status: 'done' });
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
