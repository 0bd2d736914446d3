// Lease ids a coordinator knows for its own after a restart, and only its own: what lets a page that kept a result
// across the restart be told its lease ended instead of being blamed for a lease nobody gave it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseIds } from '../../../src/coordinator/lease-ids.ts';
import { Scheduler } from '../../../src/coordinator/scheduler.ts';
import { loadOrCreateSigningKey } from '../../../src/coordinator/signing-key.ts';
import { Id } from '../../../src/protocol/messages.ts';
import { gemmKind, type GemmJob } from '../../../src/work/gemm/gemm.ts';
import type { AnyWorkKind } from '../../../src/work/kind.ts';
import * as v from 'valibot';

const MINER = { kinds: ['gemm'], precisions: ['f32'], features: [] };
const job: GemmJob = { id: 'j', m: 600, n: 10, k: 4, precision: 'f32', a: new Float32Array(2400).fill(1), b: new Float32Array(40).fill(1) };

async function queueOf(leaseIds: LeaseIds): Promise<Scheduler> {
  const s = new Scheduler(leaseIds);
  await s.submit({ id: job.id, kind: gemmKind as AnyWorkKind, job, owner: 'owner', operands: [], heldBytes: 0, createdAtMs: 0 }, new Map(), 0);
  return s;
}

describe('lease ids', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ergon-lease-ids-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are known by every run with the same signing key, and by no other key', async () => {
    const before = await LeaseIds.of(await loadOrCreateSigningKey(dir));
    const afterRestart = await LeaseIds.of(await loadOrCreateSigningKey(dir));
    const id = before.mint();
    expect(v.is(Id, id)).toBe(true);
    expect(afterRestart.minted(id)).toBe(true);
    expect(LeaseIds.random().minted(id)).toBe(false);
    expect(new Set(Array.from({ length: 100 }, () => before.mint())).size).toBe(100);
  });

  it('refuse ids that were made up or altered', async () => {
    const ids = await LeaseIds.of(await loadOrCreateSigningKey(dir));
    const id = ids.mint();
    const [uuid, mac] = id.split('.');
    expect(ids.minted(`${crypto.randomUUID()}.${mac}`)).toBe(false);
    expect(ids.minted(`${uuid}.${mac.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`)).toBe(false);
    for (const made of ['never-issued-0', uuid, `${uuid}.`, `${id}0`, '']) expect(ids.minted(made)).toBe(false);
  });

  it('let the queue tell a lease given out before a restart from a live, ended or made-up one', async () => {
    const signingKey = await loadOrCreateSigningKey(dir);
    const before = await queueOf(await LeaseIds.of(signingKey));
    const old = await before.lease('s1', 0, MINER);
    if (!old) throw new Error('expected a lease');
    expect(await before.leasedBeforeRestart(old.id)).toBe(false); // live here

    const restarted = await queueOf(await LeaseIds.of(signingKey));
    expect(await restarted.leasedBeforeRestart(old.id)).toBe(true);
    const live = await restarted.lease('s2', 0, MINER);
    const ended = await restarted.lease('s2', 0, MINER);
    if (!live || !ended) throw new Error('expected leases');
    await restarted.release(ended);
    expect(await restarted.leasedBeforeRestart(live.id)).toBe(false);
    expect(await restarted.leasedBeforeRestart(ended.id)).toBe(false);
    expect(await restarted.leasedBeforeRestart('never-issued-0')).toBe(false);
    // Another coordinator's lease (another key) is not this one's.
    const elsewhere = await (await queueOf(LeaseIds.random())).lease('s3', 0, MINER);
    expect(await restarted.leasedBeforeRestart(elsewhere?.id ?? '')).toBe(false);
  });
});
