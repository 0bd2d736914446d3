// Spans: a miner whose leases are sized for several units gets tiles of one column joined into one lease, computes
// them as one product and is credited per tile, each with its own receipt; the job's product comes out exact. A span
// with one wrong element pays nothing, and its tiles go to the next miner. A credited span's result sent again gets
// its receipts again and no more credit; another key naming its tiles gets nothing; a malformed one harms nothing.
// The sizing is fixed here (four units a lease, whatever this machine's speed):
// tests/unit/coordinator/lease-sizing.test.ts covers how speed sets it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/protocol/messages.ts';
import { generateSigningKeys, verifyReceipt } from '../../src/protocol/receipt.ts';
import { f32Tensor } from '../../src/protocol/tensor.ts';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { matmulF64, maxRelativeError, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

const FOUR_A_LEASE = () => ({ units: 4, leases: 2 });
const TILE = 256;

/** The queues that lease spans: the embedded one, and a fleet's on PostgreSQL (skipped with a sentence without it). */
const QUEUES = [
  { queue: 'the embedded queue', skip: null },
  { queue: 'a fleet\'s PostgreSQL queue', skip: postgresMissing },
];

describe.each(QUEUES)('on $queue', ({ queue, skip }) => {
  let stack: TestStack;
  let server: TestPostgres | undefined;
  let sharedDir: string | undefined;
  beforeAll(async () => {
    if (skip) return;
    if (queue === QUEUES[0].queue) {
      stack = await startStack({ leaseSize: FOUR_A_LEASE });
      return;
    }
    server = await startPostgres();
    sharedDir = await mkdtemp(join(tmpdir(), 'ergon-spans-shared-'));
    stack = await startStack({ leaseSize: FOUR_A_LEASE, databaseUrl: await server.createDatabase(), sharedDir });
  });
  afterAll(async () => {
    await stack?.stop();
    await server?.stop();
    if (sharedDir) await rm(sharedDir, { recursive: true, force: true });
  });

  async function creditedUnits(): Promise<number> {
    const status = (await (await fetch(new URL('api/status', stack.url))).json()) as { credited: { units: number } };
    return status.credited.units;
  }

  describe.skipIf(skip)('a span of tiles leased as one', () => {
    it('is computed as one product, credited tile by tile with a receipt each, and the job assembles exactly', async () => {
      const [m, n, k] = [4 * TILE, 2 * TILE, 64];
      const a = randomMatrix(m * k, 11);
      const b = randomMatrix(k * n, 12);
      const job = await submitGemm(stack.url, m, n, k, a, b);
      expect(job.unitsTotal).toBe(8);
      const miner = await ScriptedMiner.connect(stack.url);
      await miner.hello();
      const aBlocks: string[][] = [];
      for (let column = 0; column < 2; column++) {
        const lease = await miner.lease();
        expect(lease.parts).toHaveLength(4);
        aBlocks.push(Object.entries(lease.refs).filter(([name]) => name !== 'b').map(([name, ref]) => `${name} ${ref.sha256}`).sort());
        const { a: rows, b: cols } = ScriptedMiner.operands(lease);
        expect(rows.shape).toEqual([m, k]);
        expect(cols.shape).toEqual([k, TILE]);
        const verdicts = await miner.verdicts(lease, ScriptedMiner.compute(lease));
        const receipts = verdicts.map((v) => (v.type === 'receipt' ? v.receipt : expect.fail(`rejected: ${v.type === 'rejected' ? v.message : ''}`)));
        expect(receipts.map((r) => r.unitId).sort()).toEqual([...(lease.parts ?? [])].sort());
        expect(receipts.every((r) => r.ops === BigInt(2 * TILE * TILE * k))).toBe(true);
        expect(receipts.reduce((sum, r) => sum + r.ops, 0n)).toBe(lease.ops);
        for (const receipt of receipts) expect(await verifyReceipt(receipt)).toBe(true);
      }
      // Both columns' spans name the same four A blocks, one per tile: a miner that keeps them fetches them once.
      expect(aBlocks[0]).toHaveLength(4);
      expect(aBlocks[1]).toEqual(aBlocks[0]);
      await waitForJob(stack.url, job.id);
      expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
      miner.close();
    });

    it('pays nothing when one element of one tile is wrong, and its tiles go to the next miner', async () => {
      const [m, n, k] = [4 * TILE, TILE, 64];
      const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 21), randomMatrix(k * n, 22));
      const before = await creditedUnits();
      const cheat = await ScriptedMiner.connect(stack.url);
      await cheat.hello();
      const lease = await cheat.lease();
      expect(lease.parts).toHaveLength(4);
      const product = ScriptedMiner.compute(lease);
      product[3 * TILE * TILE + 5] += 1; // one element of the last tile
      const verdicts = await cheat.verdicts(lease, product);
      expect(verdicts).toHaveLength(1);
      expect(verdicts[0]).toMatchObject({ type: 'rejected', code: 'verification-failed' });
      expect(await creditedUnits()).toBe(before);

      const honest = await ScriptedMiner.connect(stack.url);
      await honest.hello();
      const again = await honest.lease();
      expect([...(again.parts ?? [])].sort()).toEqual([...(lease.parts ?? [])].sort());
      const receipts = await honest.verdicts(again, ScriptedMiner.compute(again));
      expect(receipts.map((v) => v.type)).toEqual(['receipt', 'receipt', 'receipt', 'receipt']);
      await waitForJob(stack.url, job.id);
      expect(await creditedUnits()).toBe(before + 4);
      cheat.close();
      honest.close();
    });

    it('answers a credited span sent again with its receipts and no credit; another key naming its tiles gets nothing', async () => {
      const [m, n, k] = [4 * TILE, TILE, 32];
      const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 31), randomMatrix(k * n, 32));
      const wallet = await generateSigningKeys();
      const first = await ScriptedMiner.connect(stack.url);
      await first.hello(wallet);
      const lease = await first.lease();
      const product = ScriptedMiner.compute(lease);
      const receipts = await first.verdicts(lease, product);
      expect(receipts.map((v) => v.type)).toEqual(['receipt', 'receipt', 'receipt', 'receipt']);
      await waitForJob(stack.url, job.id);
      const credited = await creditedUnits();
      first.close();

      // The same wallet on a new connection, as a page whose link dropped before the receipts arrived.
      const back = await ScriptedMiner.connect(stack.url);
      await back.hello(wallet);
      const again = await back.verdicts(lease, product);
      expect(again.map((v) => (v.type === 'receipt' ? v.receipt : v))).toEqual(receipts.map((v) => (v.type === 'receipt' ? v.receipt : v)));
      expect(await creditedUnits()).toBe(credited);

      const other = await ScriptedMiner.connect(stack.url);
      await other.hello();
      const stolen = await other.verdicts(lease, product);
      expect(stolen).toHaveLength(1);
      expect(stolen[0]).toMatchObject({ type: 'rejected' });
      expect(await creditedUnits()).toBe(credited);
      back.close();
      other.close();
    });
    it('settles a malformed span result without harm: bad parts refused, foreign parts ignored, one tile\'s shape rejected', async () => {
      const [m, n, k] = [4 * TILE, 2 * TILE, 32];
      const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 41), randomMatrix(k * n, 42));
      const miner = await ScriptedMiner.connect(stack.url);
      await miner.hello();
      const first = await miner.lease();
      const second = await miner.lease();
      const parts = first.parts ?? expect.fail('expected a span');
      const output = f32Tensor(ScriptedMiner.tileShape(first), ScriptedMiner.compute(first));
      const result = { type: 'result', leaseId: first.leaseId, unitId: first.unitId, gpuSeconds: 0.01, output } as const;

      // A part named twice: not a span result at all (the protocol refuses it).
      miner.send({ ...result, parts: [parts[0], parts[0]] });
      expect(await miner.next('error')).toMatchObject({ code: 'malformed-message' });
      // Parts that are not the lease's (the second span's): the lease's own parts are credited, and only they.
      const verdicts: Receipt[] = [];
      miner.send({ ...result, parts: second.parts });
      while (verdicts.length < parts.length) {
        const verdict = await miner.next('receipt', 'rejected');
        verdicts.push(verdict.type === 'receipt' ? verdict.receipt : expect.fail(`rejected: ${verdict.type === 'rejected' ? verdict.message : ''}`));
      }
      expect(verdicts.map((r) => r.unitId).sort()).toEqual([...parts].sort());

      // The second span answered with one tile's product: refused, and its tiles go to the next miner.
      const tile = ScriptedMiner.compute(second).subarray(0, TILE * TILE);
      miner.sendResult(second, tile, [TILE, TILE]);
      expect(await miner.next('receipt', 'rejected')).toMatchObject({ type: 'rejected', code: 'shape-mismatch' });
      const honest = await ScriptedMiner.connect(stack.url);
      await honest.hello();
      const again = await honest.lease();
      expect([...(again.parts ?? [])].sort()).toEqual([...(second.parts ?? [])].sort());
      expect((await honest.verdicts(again, ScriptedMiner.compute(again))).map((v) => v.type)).toEqual(['receipt', 'receipt', 'receipt', 'receipt']);
      await waitForJob(stack.url, job.id);
      miner.close();
      honest.close();
    });
  });
});
