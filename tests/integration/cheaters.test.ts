// Cheating miners scripted in Node, speaking the real protocol: every trick is refused without credit and costs reputation.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout } from 'node:timers/promises';
import { toHex, verifyReceipt, generateSigningKeys, exportPublicKey, signReceipt } from '../../src/protocol/receipt.ts';
import { BAN_AT_SCORE, REJECT_PENALTY } from '../../src/coordinator/reputation.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('cheating miners', () => {
  // A stack per test: a unit left over by one test must not turn up as another's lease.
  let stack: TestStack;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack?.stop();
  });

  const keyOf = (miner: ScriptedMiner) => toHex(miner.minerKey);

  it('rejects random, zero, copied and one-wrong-element results without credit, and bans on the third offence', async () => {
    const [m, n, k] = [768, 256, 32];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 31), randomMatrix(k * n, 32));
    expect(job.unitsTotal).toBe(3);
    const before = await stack.ledger.totals();

    const honest = await ScriptedMiner.connect(stack.url);
    await honest.hello();
    const honestLease = await honest.lease();
    const honestTile = ScriptedMiner.compute(honestLease);
    expect((await honest.verdict(honestLease, honestTile)).type).toBe('receipt');

    const cheat = await ScriptedMiner.connect(stack.url);
    await cheat.hello();
    const random = await cheat.lease();
    expect(random.unitId).not.toBe(honestLease.unitId);
    const noise = randomMatrix(256 * 256, 33);
    expect(await cheat.verdict(random, noise)).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    expect(await stack.ledger.reputation(keyOf(cheat))).toMatchObject({ score: -REJECT_PENALTY, rejected: 1, bannedUntilMs: 0 });

    const zeros = await cheat.lease();
    expect(zeros.unitId).toBe(random.unitId);
    expect(await cheat.verdict(zeros, new Float32Array(256 * 256))).toMatchObject({ type: 'rejected', code: 'verification-failed' });

    // The honest miner's verified tile, same shape, offered for another unit.
    const copied = await cheat.lease();
    expect(await cheat.verdict(copied, honestTile)).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    expect((await cheat.next('error')).code).toBe('banned');
    const record = await stack.ledger.reputation(keyOf(cheat));
    expect(record.score).toBe(BAN_AT_SCORE);
    expect(record.bannedUntilMs).toBeGreaterThan(Date.now());

    const sloppy = await ScriptedMiner.connect(stack.url);
    await sloppy.hello();
    const lease = await sloppy.lease();
    const oneWrong = ScriptedMiner.compute(lease);
    oneWrong[200 * 256 + 7] += 0.25;
    expect(await sloppy.verdict(lease, oneWrong)).toMatchObject({ type: 'rejected', code: 'verification-failed' });
    expect((await stack.ledger.reputation(keyOf(sloppy))).score).toBe(-REJECT_PENALTY);

    for (const miner of [cheat, sloppy]) expect(await stack.ledger.balance(keyOf(miner))).toBe(0n);
    expect((await stack.ledger.totals()).units).toBe(before.units + 1);
    expect((await stack.ledger.reputation(keyOf(honest))).score).toBe(1);
    for (const miner of [honest, cheat, sloppy]) miner.close();
    await ScriptedMiner.mineJob(stack.url, job.id);
  });

  it('answers a replay with the receipt already given and no credit; refuses results for leases never issued or another miner\'s; the offender stays refused', async () => {
    const [m, n, k] = [512, 256, 16];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 41), randomMatrix(k * n, 42));
    const keys = await generateSigningKeys();
    const replayer = await ScriptedMiner.connect(stack.url);
    await replayer.hello(keys);
    const own = await replayer.lease();
    const tile = ScriptedMiner.compute(own);
    const receipt = await replayer.verdict(own, tile);
    expect(receipt.type).toBe('receipt');
    const paid = await stack.ledger.totals();

    // A replay by the same key is answered with the receipt it was already given (its page may have lost it), and pays nothing.
    for (let i = 0; i < 2; i++) expect(await replayer.verdict(own, tile)).toEqual(receipt);
    expect(await stack.ledger.totals()).toEqual(paid);
    // Its one verified unit earned a point, so it takes a fourth offence to fall to the ban.
    for (let i = 0; i < 3; i++) {
      replayer.send({ type: 'result', leaseId: `never-issued-${i}`, unitId: `${job.id}.1.0`, gpuSeconds: 0.01, output: { dtype: 'f32', shape: [256, 256], data: new Uint8Array(256 * 256 * 4) } });
      expect(await replayer.next('rejected')).toMatchObject({ code: 'unknown-lease' });
    }

    const victim = await ScriptedMiner.connect(stack.url);
    await victim.hello();
    const stolen = await victim.lease();
    // A correct tile, but for a lease held by someone else: the lease id ties a result to one miner.
    expect(await replayer.verdict(stolen, ScriptedMiner.compute(stolen))).toMatchObject({ type: 'rejected', code: 'unknown-lease' });
    expect((await replayer.next('error')).code).toBe('banned');
    expect((await victim.verdict(stolen, ScriptedMiner.compute(stolen))).type).toBe('receipt');

    const totals = await stack.ledger.totals();
    expect(totals.units).toBe(paid.units + 1);
    expect(await stack.ledger.balance(keyOf(replayer))).toBe(receipt.type === 'receipt' ? receipt.receipt.microCredits : -1n);
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');

    // A new connection with the same wallet key is refused at hello: bans are per key and kept in the ledger.
    const back = await ScriptedMiner.connect(stack.url);
    const reply = await back.helloReply(keys);
    expect(reply).toMatchObject({ type: 'error', code: 'banned' });
    expect(reply.type === 'error' && reply.message).toMatch(/refused work until/);
    for (const miner of [replayer, victim, back]) miner.close();
  });

  it('refuses GPU times no device could achieve or that exceed the time since the lease, and credits an honest claim', async () => {
    const [m, n, k] = [256, 256, 4096];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 51), randomMatrix(k * n, 52));
    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello();
    const lease = await miner.lease();
    const tile = ScriptedMiner.compute(lease);
    const instant = await miner.verdict(lease, tile, 0);
    expect(instant).toMatchObject({ type: 'rejected', code: 'implausible-claim' });
    expect(instant.type === 'rejected' && instant.message).toMatch(/no device is that fast/);

    const again = await miner.lease();
    const slow = await miner.verdict(again, tile, 3_600);
    expect(slow).toMatchObject({ type: 'rejected', code: 'implausible-claim' });
    expect(slow.type === 'rejected' && slow.message).toMatch(/passed between lease and result/);

    const third = await miner.lease();
    // The claim must lie inside the coordinator's wall time from lease to result. Waiting longer than the claim makes
    // that hold on any machine: a fast one answers a scripted lease within milliseconds.
    await setTimeout(100);
    const paid = await miner.verdict(third, tile, 0.05);
    expect(paid.type === 'receipt' && paid.receipt.gpuSeconds).toBe(0.05);
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');
    expect(await stack.ledger.reputation(keyOf(miner))).toMatchObject({ rejected: 2, accepted: 1, bannedUntilMs: 0 });
    miner.close();
  });

  it('gives receipts that cannot be altered or forged: only the coordinator\'s key from /api/config signs them', async () => {
    const [m, n, k] = [16, 16, 16];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 61), randomMatrix(k * n, 62));
    const { receipts } = await ScriptedMiner.mineJob(stack.url, job.id);
    const real = receipts[0].receipt;
    const config = (await (await fetch(new URL('api/config', stack.url))).json()) as { coordinatorKey: string };
    expect(toHex(real.coordinatorKey)).toBe(config.coordinatorKey);
    expect(await verifyReceipt(real)).toBe(true);

    expect(await verifyReceipt({ ...real, microCredits: real.microCredits * 1000n })).toBe(false);
    expect(await verifyReceipt({ ...real, minerKey: new Uint8Array(32).fill(7) })).toBe(false);
    const forger = await generateSigningKeys();
    const forgedBody = { ...real, microCredits: 10n ** 12n };
    const forged = await signReceipt(forger.privateKey, forgedBody);
    expect(await verifyReceipt(forged)).toBe(false);
    // Self-signed under the forger's own key it verifies, but names a key that is not the coordinator's.
    const selfSigned = await signReceipt(forger.privateKey, { ...forgedBody, coordinatorKey: await exportPublicKey(forger.publicKey) });
    expect(await verifyReceipt(selfSigned)).toBe(true);
    expect(toHex(selfSigned.coordinatorKey)).not.toBe(config.coordinatorKey);
    expect(await stack.ledger.balance(toHex(real.minerKey))).toBe(real.microCredits);
  });
});
