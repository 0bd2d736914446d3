// Settlement of a kind that audits, without any transport: results of one miner are held and audited in its turn, so
// an audit that passes never pays a result whose own audit is still running and fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Jobs } from '../../../src/coordinator/jobs.ts';
import { openLedger, type Ledger } from '../../../src/coordinator/ledger/ledger.ts';
import { OperandStore } from '../../../src/coordinator/operand-store.ts';
import { Scheduler } from '../../../src/coordinator/scheduler.ts';
import { settle, type Claimant, type SettlementContext } from '../../../src/coordinator/settle.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { toHex } from '../../../src/protocol/receipt.ts';
import { f32Tensor } from '../../../src/protocol/tensor.ts';
import { microCreditsFor, type AnyWorkKind } from '../../../src/work/kind.ts';
import { kindRegistry } from '../../../src/work/registry.ts';
import { dotKind, dots, type DotJob, type DotUnit } from '../../helpers/dot-kind.ts';

const MINER: Claimant = { sessionId: 's1', minerKey: toHex(new Uint8Array(32).fill(9)), minerKeyBytes: new Uint8Array(32).fill(9) };
const DOT_MINER = { kinds: ['dot'], precisions: ['f32'], features: [] };

/** The dot kind with its exact check as an audit that takes a while for the first unit, and no cheap check. */
const auditedDots = {
  ...dotKind,
  async verify() {
    return { ok: true as const };
  },
  async audit(ctx: unknown, job: DotJob, unit: DotUnit, result: Float32Array) {
    if (unit.first === 0) await new Promise((resolve) => setTimeout(resolve, 200));
    return dotKind.verify(ctx as never, job, unit, result);
  },
} as unknown as AnyWorkKind;

describe('settlement with audits', () => {
  let dir: string;
  let ledger: Ledger;
  let ctx: SettlementContext;
  let job: DotJob;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-audit-settle-'));
    ledger = await openLedger({ backend: 'sqlite', path: join(dir, 'ledger.sqlite') });
    const queue = new Scheduler();
    const jobs = new Jobs(queue, kindRegistry([auditedDots]), ledger, await OperandStore.open(dir));
    // Every draw audits.
    ctx = { queue, jobs, ledger, signingKey: await loadOrCreateSigningKey(dir), verify: { random: (into) => into.fill(0), runtimes: {} } };
    const x = new Float32Array(32).map((_, i) => (i % 7) - 3);
    const y = new Float32Array(32).map((_, i) => (i % 5) - 2);
    job = { id: 'job1', count: 8, dim: 4, x, y };
    await jobs.submit('owner', auditedDots, { id: 'job1', job, operands: [new Uint8Array(x.buffer), new Uint8Array(y.buffer)] }, Date.now());
  });
  afterEach(async () => {
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('forfeits a wrong result whose audit is slow, even when the miner\'s next result passes its audit meanwhile', async () => {
    const leases = [await ctx.queue.lease('s1', Date.now(), DOT_MINER), await ctx.queue.lease('s1', Date.now(), DOT_MINER)];
    const honest = (unit: DotUnit) => dots(job.x.subarray(unit.first * 4), job.y.subarray(unit.first * 4), unit.rows, unit.dim);
    const claim = (i: number, values: Float32Array) => {
      const lease = leases[i];
      if (!lease) throw new Error('expected a lease');
      return { leaseId: lease.id, unitId: lease.unit.id, gpuSeconds: 0.01, output: f32Tensor([values.length], values), leaseSentAtMs: Date.now() - 100 };
    };
    const [cheatUnit, honestUnit] = leases.map((l) => l?.unit as DotUnit);
    const wrong = honest(cheatUnit).map((v) => v + 1);
    const [cheat, good] = await Promise.all([settle(ctx, MINER, claim(0, wrong)), settle(ctx, MINER, claim(1, honest(honestUnit)))]);
    expect(cheat).toMatchObject({ type: 'rejected', error: { code: 'verification-failed' }, forfeited: { unitIds: [cheatUnit.id] } });
    if (good.type !== 'settled') throw new Error(`expected the honest result settled, got ${good.type}`);
    expect(good.receipts.map((r) => r.unitId)).toEqual([honestUnit.id]);
    const pay = microCreditsFor(dotKind.ops(honestUnit), 3_000_000n);
    expect(await ledger.balance(MINER.minerKey)).toBe(pay);
    expect(await ledger.forfeited(MINER.minerKey)).toBe(microCreditsFor(dotKind.ops(cheatUnit), 3_000_000n));
    // The forfeited unit is queued again, for anyone.
    expect((await ctx.queue.lease('s2', Date.now(), DOT_MINER))?.unit.id).toBe(cheatUnit.id);
  });
});
