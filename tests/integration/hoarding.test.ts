// Leasing a cheater cannot game: a key holds only the leases its verified work allows, over all its connections; an
// honest miner gets work at once while a hoarder asks for more; owed messages are never rate-limited, so fast honest
// miners finish a job of a thousand small units; a connection that has not said hello may not send a large message.
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/protocol/receipt.ts';
import { ESTABLISHED_AFTER_UNITS, LEASES_UNMEASURED, MAX_LEASES_PER_MINER, MAX_UNITS_PER_MINER } from '../../src/coordinator/lease-sizing.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('leasing under abuse', () => {
  let stack: TestStack | undefined;
  const miners: ScriptedMiner[] = [];
  afterEach(async () => {
    for (const miner of miners.splice(0)) miner.close();
    await stack?.stop();
    stack = undefined;
  });
  const connect = async (keys?: CryptoKeyPair) => {
    if (!stack) throw new Error('no stack');
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    await miner.hello(keys);
    return miner;
  };

  it('gives a new key one lease however often it asks, over all its connections, and an honest miner work at once', async () => {
    stack = await startStack();
    const job = await submitGemm(stack.url, 16 * 8, 8, 4, randomMatrix(16 * 8 * 4, 1), randomMatrix(4 * 8, 2));
    expect(job.unitsTotal).toBe(1);
    const big = await submitGemm(stack.url, 256 * 16, 8, 4, randomMatrix(256 * 16 * 4, 3), randomMatrix(4 * 8, 4));
    expect(big.unitsTotal).toBe(16);

    const hoarderKeys = await generateSigningKeys();
    const hoarder = await connect(hoarderKeys);
    const first = await hoarder.askMany(20);
    expect(first.leases).toBe(1);
    expect(first.reasons[0]).toMatch(/holds 1 lease, as many as it may now \(1\)/);
    // A second connection of the same key gets nothing more.
    const sameKey = await connect(hoarderKeys);
    expect((await sameKey.askMany(5)).leases).toBe(0);

    // The honest miner's first request is answered with a lease: work at once, however fast this machine is.
    const honest = await connect();
    honest.send({ type: 'work-request' });
    const lease = await honest.next('lease', 'no-work', 'error');
    if (lease.type !== 'lease') throw new Error(`the honest miner's first request got ${JSON.stringify(lease)}`);
    expect((await honest.verdict(lease, ScriptedMiner.compute(lease))).type).toBe('receipt');
  });

  it('lets a key hold more work as its verified work grows, as its measured speed needs, and says how many leases', async () => {
    stack = await startStack();
    // 64 tiles down each of 4 columns: more than a fast key's spans can take before the test ends.
    const job = await submitGemm(stack.url, 256 * 64, 4 * 256, 4, randomMatrix(256 * 64 * 4, 5), randomMatrix(4 * 4 * 256, 6));
    expect(job.unitsTotal).toBe(256);
    const miner = await connect();
    /** verified units so far -> leases granted when asking for more than any miner may hold, and what they said */
    const granted = new Map<number, { count: number; units: number; inFlight: (number | undefined)[] }>();
    let verified = 0;
    while (![...granted.keys()].some((done) => done >= ESTABLISHED_AFTER_UNITS + 4)) {
      const { leased } = await miner.askMany(MAX_LEASES_PER_MINER + 2);
      const units = leased.reduce((sum, l) => sum + (l.parts?.length ?? 1), 0);
      granted.set(verified, { count: leased.length, units, inFlight: leased.map((l) => l.inFlight) });
      for (const lease of leased) {
        const verdicts = await miner.verdicts(lease, ScriptedMiner.compute(lease));
        expect(verdicts.map((v) => v.type)).toEqual(verdicts.map(() => 'receipt'));
        verified += verdicts.length;
      }
    }
    expect(granted.get(0)).toEqual({ count: 1, units: 1, inFlight: [1] });
    expect(granted.get(1)).toEqual({ count: LEASES_UNMEASURED, units: LEASES_UNMEASURED, inFlight: [LEASES_UNMEASURED, LEASES_UNMEASURED] });
    // Established: never fewer than two leases, never more than the caps, and exactly what the leases announced, so
    // that a miner asking for `inFlight` is never refused. (How many, and how many units each joins, depends on how
    // fast this machine computed them.)
    for (const [done, { count, units, inFlight }] of granted) {
      if (done < ESTABLISHED_AFTER_UNITS) continue;
      expect(count).toBeGreaterThanOrEqual(LEASES_UNMEASURED);
      expect(count).toBeLessThanOrEqual(MAX_LEASES_PER_MINER);
      expect(units).toBeLessThanOrEqual(MAX_UNITS_PER_MINER);
      expect(inFlight.at(-1)).toBe(count);
    }
  });

  it('keeps a slow established miner to two leases: its leases follow the speed measured on its results', async () => {
    stack = await startStack();
    const units = 40;
    const job = await submitGemm(stack.url, 256 * units, 4, 4, randomMatrix(256 * units * 4, 9), randomMatrix(16, 10));
    expect(job.unitsTotal).toBe(units);
    const miner = await connect();
    let verified = 0;
    let lastGranted = 0;
    // Its last units (the whole window the speed is measured over) each returned 1.2 s after the one before: under a
    // unit a second, so nothing to keep ahead beyond the two; a slower machine only slows it further.
    while (verified < ESTABLISHED_AFTER_UNITS + 3) {
      const { leased } = await miner.askMany(MAX_LEASES_PER_MINER + 2);
      lastGranted = leased.length;
      for (const lease of leased) {
        await new Promise((resolve) => setTimeout(resolve, verified >= ESTABLISHED_AFTER_UNITS - 8 ? 1_200 : 0));
        const verdicts = await miner.verdicts(lease, ScriptedMiner.compute(lease));
        expect(verdicts.map((v) => v.type)).toEqual(verdicts.map(() => 'receipt'));
        verified += verdicts.length;
      }
    }
    expect(lastGranted).toBe(LEASES_UNMEASURED);
  });

  it('never stalls fast honest miners on the rate limit: two miners finish a job of 1024 small units', async () => {
    stack = await startStack();
    const [m, n, k] = [256 * 32, 256 * 32, 1];
    const a = randomMatrix(m * k, 7);
    const b = randomMatrix(k * n, 8);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    expect(job.unitsTotal).toBe(1024);
    const done = { value: false };
    const mining = [await connect(), await connect()].map((miner) => miner.mineHonestly(() => done.value));
    await waitForJob(stack.url, job.id, 240_000);
    done.value = true;
    const receipts = (await Promise.all(mining)).flat();
    expect(receipts).toHaveLength(1024);
    const product = await fetchProduct(stack.url, job.id);
    expect(product[0]).toBe(Math.fround(a[0] * b[0]));
    expect(product[m * n - 1]).toBe(Math.fround(a[m - 1] * b[n - 1]));
  });

  it('refuses a large message from a connection that has not said hello, and takes it after', async () => {
    stack = await startStack();
    const miner = await ScriptedMiner.connect(stack.url);
    miners.push(miner);
    // Two frames, each declaring the whole message's size: each is refused before any buffer is made for it.
    miner.sendBytes(new Uint8Array(100 * 1024));
    expect([await miner.next('error'), await miner.next('error')]).toMatchObject([{ code: 'message-too-large' }, { code: 'message-too-large' }]);
    await miner.hello();
    miner.sendBytes(new Uint8Array(100 * 1024));
    expect((await miner.next('error')).code).toBe('malformed-message');
  });
});
