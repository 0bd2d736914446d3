// Faults a miner can bring: dropping mid-transfer, wrong dtypes and absurd declared shapes; nothing is lost, nothing allocated.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { encodeMessage } from '../../src/protocol/codec.ts';
import { generateSigningKeys, toHex } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { holdLeaseDeadlines, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('miner faults', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a miner that drops while a lease is arriving keeps its credits and reputation, and the unit goes to another miner', async () => {
    const [m, n, k] = [512, 256, 1024];
    const job = await submitGemm(stack.url, m, n, k, randomMatrix(m * k, 91), randomMatrix(k * n, 92));
    const keys = await generateSigningKeys();
    // The dropped lease's deadline never comes: its unit reaches another miner only if the close gives it back.
    onTestFinished(holdLeaseDeadlines(stack));
    const dropper = await ScriptedMiner.connect(stack.url);
    await dropper.hello(keys);
    const first = await dropper.lease();
    const receipt = await dropper.verdict(first, ScriptedMiner.compute(first));
    if (receipt.type !== 'receipt') throw new Error(`expected a receipt, got ${receipt.code}`);

    // Ask for the next 2 MiB lease and vanish while its frames are on the way.
    dropper.send({ type: 'work-request' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    dropper.close();

    const other = await ScriptedMiner.connect(stack.url);
    await other.hello();
    // The job's other unit, the one the dropper asked for: given back when the connection closed.
    const second = await other.lease();
    expect(second.unitId).not.toBe(first.unitId);
    expect((await other.verdict(second, ScriptedMiner.compute(second))).type).toBe('receipt');
    expect((await waitForJob(stack.url, job.id)).status).toBe('done');

    const back = await ScriptedMiner.connect(stack.url);
    await back.hello(keys);
    expect(await stack.ledger.balance(toHex(back.minerKey))).toBe(receipt.receipt.microCredits);
    expect(await stack.ledger.reputation(toHex(back.minerKey))).toMatchObject({ accepted: 1, rejected: 0, bannedUntilMs: 0 });
    other.close();
    back.close();
  });

  it('refuses wrong dtypes and absurd declared shapes as malformed, before any buffer is made, and keeps the session', async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello();
    const before = process.memoryUsage().arrayBuffers;
    const output = (dtype: string, shape: number[], bytes: number) => ({ dtype, shape, data: new Uint8Array(bytes) });
    const send = (tensor: ReturnType<typeof output>) => miner.sendBytes(encodeResult(tensor));
    send(output('f64', [2, 2], 32));
    send(output('f32', [65_536, 65_536], 16));
    send(output('f32', [2 ** 31, 2], 16));
    send(output('f32', [2, 2], 15));
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await miner.next('error'));
    expect(codes.map((e) => e.code)).toEqual(['malformed-message', 'malformed-message', 'malformed-message', 'malformed-message']);
    expect(codes[0].message).toMatch(/dtype/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    miner.send({ type: 'ping', nonce: 7 });
    miner.send({ type: 'work-request' });
    expect((await miner.next('no-work', 'lease')).type).toBeDefined();
    miner.close();
  });
});

function encodeResult(output: object): Uint8Array {
  return encodeMessage({ type: 'result', v: PROTOCOL_VERSION, leaseId: 'l', unitId: 'u', gpuSeconds: 1, output });
}
