// A kind is a plug-in: a third kind of work defined under tests/ alone (batched dot products) runs through the real
// stack (PeerServer, WebRTC, settlement, SQLite ledger, receipts, a restart) with scripted miners.
import { afterEach, describe, expect, it } from 'vitest';
import { verifyReceipt } from '../../src/protocol/receipt.ts';
import { f32Tensor, f32Values } from '../../src/protocol/tensor.ts';
import type { AnyWorkKind } from '../../src/work/kind.ts';
import { BUILT_IN_KINDS, kindRegistry } from '../../src/work/registry.ts';
import { dotKind, dots, DOTS_PER_UNIT } from '../helpers/dot-kind.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, submitGemm, type TestStack } from '../helpers/stack.ts';

const kinds = kindRegistry([...BUILT_IN_KINDS, dotKind as AnyWorkKind]);

/** count x dim integer-valued vectors, X then Y, from a fixed seed. */
function vectors(count: number, dim: number, seed: number): Float32Array<ArrayBuffer> {
  const values = new Float32Array(2 * count * dim);
  let state = seed;
  for (let i = 0; i < values.length; i++) {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    values[i] = (state % 129) - 64;
  }
  return values;
}

describe('a kind of work defined by a test', () => {
  let stack: TestStack | undefined;
  const miners: ScriptedMiner[] = [];
  afterEach(async () => {
    for (const miner of miners.splice(0)) miner.close();
    await stack?.stop();
    stack = undefined;
  });

  const connect = async (declared: string[]) => {
    if (!stack) throw new Error('no stack');
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(undefined, undefined, declared);
    return miner;
  };

  it('is submitted, leased only to miners that run it, verified exactly, paid at its rate, receipted and resumed after a restart', async () => {
    stack = await startStack({ kinds });
    const count = 10;
    const dim = 32;
    const body = vectors(count, dim, 7);
    const bad = await api(stack.url, `jobs/dot?count=${count}&dim=0`, { method: 'POST', body });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('bad-params');
    const submitted = await api(stack.url, `jobs/dot?count=${count}&dim=${dim}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
    expect(submitted.status).toBe(201);
    const job = (await submitted.json()) as { id: string; kind: string; count: number; unitsTotal: number };
    expect(job).toMatchObject({ kind: 'dot', count, unitsTotal: Math.ceil(count / DOTS_PER_UNIT) });

    // A miner that runs only gemm is never sent a dot unit.
    const gemmOnly = await connect(['gemm']);
    gemmOnly.send({ type: 'work-request' });
    expect((await gemmOnly.next('lease', 'no-work')).type).toBe('no-work');

    // A wrong dot product earns nothing.
    const miner = await connect(['dot']);
    const cheat = await miner.lease();
    expect(cheat.kind).toBe('dot');
    const wrong = new Float32Array(cheat.operands.x?.shape[0] ?? 0).fill(1);
    miner.send({ type: 'result', leaseId: cheat.leaseId, unitId: cheat.unitId, gpuSeconds: 0.01, output: f32Tensor([wrong.length], wrong) });
    expect(await miner.next('receipt', 'rejected')).toMatchObject({ type: 'rejected', code: 'verification-failed' });

    // Two units done honestly, then the coordinator restarts: they stay paid and done, the rest are leased again.
    const honest = async (who: ScriptedMiner) => {
      const lease = await who.lease();
      const { x, y } = lease.operands;
      if (!x || !y) throw new Error('a dot lease carries x and y');
      const [rows, width] = x.shape;
      const result = dots(f32Values(x), f32Values(y), rows, width);
      who.send({ type: 'result', leaseId: lease.leaseId, unitId: lease.unitId, gpuSeconds: 0.01, output: f32Tensor([rows], result) });
      const verdict = await who.next('receipt', 'rejected');
      if (verdict.type !== 'receipt') throw new Error(`honest dot result rejected: ${verdict.code}: ${verdict.message}`);
      return verdict.receipt;
    };
    const receipts = [await honest(miner), await honest(miner)];
    for (const miner of miners.splice(0)) miner.close();
    await stack.close();
    stack = await startStack({ kinds, dataDir: stack.dataDir });
    const again = await connect(['dot', 'gemm']);
    while (receipts.length < job.unitsTotal) receipts.push(await honest(again));

    for (const receipt of receipts) {
      expect(receipt.kind).toBe('dot');
      expect(await verifyReceipt(receipt)).toBe(true);
      expect(receipt.microCredits).toBe((receipt.ops * 3_000_000n) / 1_000_000_000n);
    }
    expect(new Set(receipts.map((r) => r.unitId)).size).toBe(job.unitsTotal);
    const ops = receipts.reduce((sum, r) => sum + r.ops, 0n);
    expect(ops).toBe(2n * BigInt(count * dim));
    const status = (await (await fetch(new URL('api/status', stack.url))).json()) as { credited: { units: number; ops: string; microCredits: string } };
    expect(status.credited).toEqual({ units: job.unitsTotal, ops: String(ops), microCredits: String(receipts.reduce((sum, r) => sum + r.microCredits, 0n)) });

    const result = await api(stack.url, `jobs/${job.id}/result`);
    expect(result.headers.get('content-type')).toMatch(/application\/json/);
    const expected = dots(body.subarray(0, count * dim), body.subarray(count * dim), count, dim);
    expect((await result.json()).dots).toEqual([...expected]);
  });

  it('leaves a coordinator that does not serve the kind refusing it with a sentence, and gemm untouched', async () => {
    stack = await startStack();
    const refused = await api(stack.url, 'jobs/dot?count=1&dim=1', { method: 'POST', body: new Float32Array(2) });
    expect(refused.status).toBe(404);
    expect((await refused.json()).error).toMatchObject({ code: 'unknown-kind', message: expect.stringMatching(/gemm/) });
    const job = await submitGemm(stack.url, 2, 2, 2, new Float32Array(4).fill(1), new Float32Array(4).fill(1));
    const dotOnly = await connect(['dot']);
    dotOnly.send({ type: 'work-request' });
    expect((await dotOnly.next('lease', 'no-work')).type).toBe('no-work');
    const { receipts } = await ScriptedMiner.mineJob(stack.url, job.id);
    expect(receipts.map((r) => r.receipt.kind)).toEqual(['gemm']);
  });
});
