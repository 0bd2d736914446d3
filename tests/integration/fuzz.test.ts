// Random and mutated messages thrown at the coordinator, over the data channel and the WebSocket, while an honest
// miner keeps being served and paid.
import { encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PROTOCOL_ERRORS } from '../../src/coordinator/miner-session.ts';
import { toHex } from '../../src/protocol/receipt.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/version.ts';
import { matmulF64, mulberry32, randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { fetchProduct, maxRelativeError, startStack, submitGemm, waitForJob, type TestStack } from '../helpers/stack.ts';

const FUZZ_MESSAGES = 600;
/** Below the per-session protocol-error limit, so that one fuzzer sees every answer before being closed. */
const PER_FUZZER = MAX_PROTOCOL_ERRORS - 20;
const KNOWN_CODES = new Set(['malformed-message', 'unsupported-version', 'not-authenticated', 'bad-signature', 'rate-limited', 'message-too-large']);

/** One random message: garbage bytes, or a real message's shape with a field dropped, retyped or made absurd. */
function fuzzMessage(next: () => number): Uint8Array {
  const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)];
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
  const weird = () =>
    pick<unknown>([
      null, -1, 0, 2 ** 53 + 2, NaN, Infinity, -Infinity, '', 'x'.repeat(5_000), [], {}, true, bytes(7), bytes(64),
      [[[[[[[[[[[]]]]]]]]]]], { __proto__: { type: 'hello' } }, 10n ** 30n, -(2n ** 63n),
    ]);
  const tensor = () => ({ dtype: pick(['f32', 'f16', 'i32', weird()]), shape: pick([[256, 256], [65_536, 65_536], [0], [-1, 2], [1, 1, 1, 1, 1], weird()]), data: bytes(Math.floor(next() * 64)) });
  const templates: Record<string, unknown>[] = [
    { type: 'hello', v: PROTOCOL_VERSION, minerKey: bytes(32), signature: bytes(64), kinds: ['gemm'], backend: 'webgpu', adapter: { vendor: 'x', architecture: 'y', device: '', description: '', isFallbackAdapter: false } },
    { type: 'work-request', v: PROTOCOL_VERSION },
    { type: 'result', v: PROTOCOL_VERSION, leaseId: 'lease-1', unitId: 'job.0.0', gpuSeconds: 0.1, output: tensor() },
    { type: 'pending-check', v: PROTOCOL_VERSION, unitIds: pick([['job.0.0'], Array.from({ length: 1_001 }, (_, i) => `u${i}`), [weird()], []]) },
    { type: 'ping', v: PROTOCOL_VERSION, nonce: 1 },
    { type: 'error', v: PROTOCOL_VERSION, code: 'x', message: 'y' },
    { type: pick(['receipt', 'lease', 'welcome', 'gimme', '']), v: PROTOCOL_VERSION },
  ];
  switch (Math.floor(next() * 4)) {
    case 0:
      return bytes(1 + Math.floor(next() * 2_000));
    case 1: {
      const message = { ...pick(templates) };
      const keys = Object.keys(message);
      delete message[pick(keys)];
      return encode(message, { useBigInt64: true });
    }
    case 2: {
      const message = { ...pick(templates) };
      message[pick(Object.keys(message))] = weird();
      return encode(message, { useBigInt64: true });
    }
    default: {
      const message = { ...pick(templates), v: pick([0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, '1', weird()]) };
      return encode(message, { useBigInt64: true });
    }
  }
}

describe('fuzzing the coordinator', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(`answers ${FUZZ_MESSAGES} random messages with errors, closes abusers, and keeps serving an honest miner`, async () => {
    const [m, n, k] = [1536, 1024, 16];
    const a = randomMatrix(m * k, 81);
    const b = randomMatrix(k * n, 82);
    const job = await submitGemm(stack.url, m, n, k, a, b);
    expect(job.unitsTotal).toBe(24);

    const honest = await ScriptedMiner.connect(stack.url);
    await honest.hello();
    let stop = false;
    const mining = honest.mineHonestly(() => stop);

    const next = mulberry32(2026);
    const codes = new Map<string, number>();
    let sent = 0;
    let fuzzers = 0;
    while (sent < FUZZ_MESSAGES) {
      // Every other fuzzer comes over the WebSocket: both transports lead to the same session and its bounds.
      const fuzzer = await ScriptedMiner.connect(stack.url, 5, fuzzers % 2 === 0 ? 'webrtc' : 'websocket');
      fuzzers++;
      const batch = Math.min(PER_FUZZER, FUZZ_MESSAGES - sent);
      for (let i = 0; i < batch; i++) {
        fuzzer.sendBytes(fuzzMessage(next));
        // Stay under the session's rate limit: this test is about content, the flood test below about volume.
        if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 600));
      }
      sent += batch;
      // Every message that is not a valid hello, ping or request gets an error; collect what arrives.
      const deadline = Date.now() + 5_000;
      let answered = 0;
      while (answered < batch && Date.now() < deadline) {
        try {
          const reply = await Promise.race([fuzzer.next('error', 'welcome', 'no-work', 'lease', 'rejected'), timeout(1_000)]);
          answered++;
          const code = reply.type === 'error' || reply.type === 'rejected' ? reply.code : reply.type;
          codes.set(code, (codes.get(code) ?? 0) + 1);
        } catch {
          break;
        }
      }
      expect(answered).toBeGreaterThan(batch * 0.9);
      fuzzer.close();
    }
    expect(fuzzers).toBeGreaterThanOrEqual(3);
    for (const code of codes.keys()) expect(KNOWN_CODES.has(code) || ['welcome', 'no-work', 'lease', 'rejected', 'unknown-lease'].includes(code), code).toBe(true);
    expect(codes.get('malformed-message') ?? 0).toBeGreaterThan(FUZZ_MESSAGES / 3);

    // A flood of garbage without pause, over either transport: the session is rate limited, then closed as abuse.
    for (const [transport, closing] of [['webrtc', /^the data channel closed$/], ['websocket', /^the WebSocket closed \(1000\)$/]] as const) {
      const flooder = await ScriptedMiner.connect(stack.url, 5, transport);
      const closed = new Promise<string>((resolve) => flooder.link.onClose(resolve));
      for (let i = 0; i < MAX_PROTOCOL_ERRORS + 50; i++) flooder.sendBytes(new Uint8Array([0xc1, i & 0xff]));
      expect(await Promise.race([closed, timeout(15_000)])).toMatch(closing);
      expect((await flooder.next('error')).code).toBe('malformed-message');
    }

    // The same honest session, still connected after all that, is served a job submitted now.
    await waitForJob(stack.url, job.id);
    const after = await submitGemm(stack.url, 512, 512, 16, randomMatrix(512 * 16, 83), randomMatrix(16 * 512, 84));
    await waitForJob(stack.url, after.id);
    stop = true;
    const receipts = await mining;
    honest.close();
    expect(receipts).toHaveLength(24 + 4);
    expect(maxRelativeError(await fetchProduct(stack.url, job.id), matmulF64(a, b, m, k, n))).toBeLessThan(1e-5);
    const totals = await stack.ledger.totals();
    expect(totals.units).toBe(24 + 4);
    expect(await stack.ledger.balance(toHex(honest.minerKey))).toBe(totals.microCredits);
  });
});

function timeout(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms));
}
