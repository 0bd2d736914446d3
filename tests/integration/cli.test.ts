// The ergon CLI against the real stack (coordinator, PeerServer, WebRTC, SQLite) with a scripted honest miner: C from
// .npy files equals numpy's product; bad input files, a wrong key and an unreachable coordinator each give a sentence
// and their documented exit code, never a stack trace.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type * as OrtNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/client/cli.ts';
import { numpyMissing, python } from '../helpers/numpy.ts';
import { runProcess, type Run } from '../helpers/run-process.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { mlpModel } from '../helpers/onnx-builder.ts';
import { OnnxRunnerForTests } from '../helpers/onnx-miner.ts';
import { readNpz } from '../../src/work/onnx/npz.ts';
import { startStack, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

const missing = numpyMissing();
if (missing) throw new Error(missing);

const BIN = resolve('bin/ergon.mjs');
const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OrtNode;

/** Runs `ergon ARGS` as a person would, in `cwd`, asynchronously (the coordinator runs in this process). */
function ergon(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return runProcess(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ERGON_URL: '', ERGON_API_KEY: '', ...env } });
}

/** No stack trace: no "    at fn (file:line)" lines, no error class dumps. */
function expectNoStack(run: Run): void {
  expect(run.stderr).not.toMatch(/^\s+at\s/m);
  expect(run.stderr).not.toMatch(/(TypeError|RangeError|SyntaxError|Error):/);
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('ergon CLI', () => {
  let stack: TestStack;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    stack = await startStack();
    dir = mkdtempSync(join(tmpdir(), 'ergon-cli-'));
    env = { ERGON_URL: stack.url, ERGON_API_KEY: TEST_API_KEY };
    // A in Fortran order and big-endian f8, B little-endian f4: the reader must take what numpy writes either way.
    python(`
import numpy as np
rng = np.random.default_rng(21)
a = np.asfortranarray(rng.standard_normal((300, 200))).astype('>f8')
b = rng.standard_normal((200, 270)).astype('<f4')
np.save('A.npy', a); np.save('B.npy', b)
np.save('B-wrong.npy', rng.standard_normal((199, 5)).astype('<f4'))
open('text.npy', 'w').write('1,2,3\\n')
open('truncated.npy', 'wb').write(open('B.npy', 'rb').read()[:-10])
`, dir);
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ergon gemm writes C.npy equal to numpy\'s A @ B, with progress as plain lines when piped', async () => {
    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello();
    let stop = false;
    const mining = miner.mineHonestly(() => stop);
    const run = await ergon(['gemm', 'A.npy', 'B.npy', '-o', 'C.npy', '--keep'], dir, env);
    stop = true;
    await mining;
    miner.close();
    expect(run.stderr).toMatch(/^job [0-9a-f-]+ submitted: 4 units \(if interrupted: ergon result [0-9a-f-]+ -o FILE\)$/m);
    expect(run.stderr).toMatch(/^progress: 4\/4 units verified, .* done$/m);
    expect(run.stderr).toMatch(/C \(300x270, f32\) written to C\.npy/);
    expect(run.code).toBe(EXIT.ok);
    // numpy reads C and compares it with its own product in float64.
    const check = python(`
import numpy as np
a = np.load('A.npy').astype(np.float64); b = np.load('B.npy').astype(np.float64); c = np.load('C.npy')
assert c.dtype == np.float32 and c.shape == (300, 270), (c.dtype, c.shape)
err = np.abs(c - a @ b).max() / np.abs(a @ b).max()
print(err)
`, dir);
    expect(Number(check)).toBeLessThan(1e-5);

    // The job was kept: it is listed, and its status says done.
    const id = /job ([0-9a-f-]+) submitted/.exec(run.stderr)?.[1] ?? '';
    const jobs = await ergon(['jobs'], dir, env);
    expect(jobs.code).toBe(EXIT.ok);
    expect(jobs.stdout).toMatch(new RegExp(`^${id}\\s+gemm\\s+done\\s+4/4`, 'm'));
    const status = await ergon(['status', id, '--json'], dir, env);
    expect(status.code).toBe(EXIT.ok);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, kind: 'gemm', status: 'done', unitsDone: 4, m: 300, n: 270, k: 200 });
    // `ergon result` fetches it again, as a requester whose gemm was interrupted would.
    const again = await ergon(['result', id, '-o', 'C-again.npy', '--keep'], dir, env);
    expect(again.code).toBe(EXIT.ok);
    expect(readFileSync(join(dir, 'C-again.npy')).equals(readFileSync(join(dir, 'C.npy')))).toBe(true);
    const deleted = await ergon(['delete', id], dir, env);
    expect(deleted.code).toBe(EXIT.ok);
    const gone = await ergon(['status', id], dir, env);
    expect(gone.code).toBe(EXIT.refused);
    expect(gone.stderr).toMatch(/unknown-job: no job/);
  });

  it('ergon gemm --f16 has the work done in f16: C is the product of A and B rounded to halves', async () => {
    python(`
import numpy as np
rng = np.random.default_rng(16)
np.save('A16.npy', rng.standard_normal((64, 96)).astype('<f4')); np.save('B16.npy', rng.standard_normal((96, 80)).astype('<f4'))
`, dir);
    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello(undefined, ['f32', 'f16']);
    let stop = false;
    const mining = miner.mineHonestly(() => stop);
    const run = await ergon(['gemm', 'A16.npy', 'B16.npy', '-o', 'C16.npy', '--f16'], dir, env);
    stop = true;
    const receipts = await mining;
    miner.close();
    expect(run.code).toBe(EXIT.ok);
    expect(receipts.map((r) => r.receipt.kind)).toEqual(['gemm-f16']);
    // Against numpy: close to the product of the halves, and measurably off the f32 product (so not f32 work).
    const [toHalves, toF32] = python(`
import numpy as np
a = np.load('A16.npy'); b = np.load('B16.npy'); c = np.load('C16.npy').astype(np.float64)
h = a.astype(np.float16).astype(np.float64) @ b.astype(np.float16).astype(np.float64)
f = a.astype(np.float64) @ b.astype(np.float64)
print(np.abs(c - h).max() / np.abs(h).max(), np.abs(c - f).max() / np.abs(f).max())
`, dir).trim().split(' ').map(Number);
    expect(toHalves).toBeLessThan(1e-5);
    expect(toF32).toBeGreaterThan(1e-4);
  });

  it('ergon onnx runs a model on inputs numpy wrote, mined by an onnx miner, and writes outputs numpy reads', async () => {
    writeFileSync(join(dir, 'mlp.onnx'), mlpModel(16, 32, 8, 5));
    python(`
import numpy as np
np.savez('x.npz', x=np.random.default_rng(5).standard_normal((40, 16)).astype('<f4'))
`, dir);
    // The reference: the same model on the same inputs in onnxruntime-node, here.
    const x = readNpz(readFileSync(join(dir, 'x.npz')), 1_000);
    if (!x.ok) throw new Error(x.error.message);
    const input = x.value.get('x');
    if (!input) throw new Error('no x');
    const session = await ort.InferenceSession.create(mlpModel(16, 32, 8, 5));
    const expected = await session.run({ x: new ort.Tensor('float32', input.data, input.shape) });

    const miner = await ScriptedMiner.connect(stack.url);
    await miner.hello(undefined, undefined, ['onnx']);
    const runner = new OnnxRunnerForTests(stack.url);
    let done = false;
    const mining = (async () => {
      while (!done) {
        miner.send({ type: 'work-request' });
        const reply = await miner.next('lease', 'no-work', 'error');
        if (reply.type === 'lease') expect((await runner.run(miner, reply)).type).toBe('receipt');
        else await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    const run = await ergon(['onnx', 'mlp.onnx', 'x.npz', '-o', 'out.npz'], dir, env);
    done = true;
    await mining;
    miner.close();
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stderr).toMatch(/outputs prob, logits written to out\.npz/);
    // numpy reads what the CLI wrote: every output, its shape, and values within float32 rounding of the reference.
    for (const name of ['prob', 'logits']) {
      writeFileSync(join(dir, `${name}.expected.f32`), expected[name].data as Float32Array);
      const answer = python(`
import numpy as np
out = np.load('out.npz')['${name}']
ref = np.fromfile('${name}.expected.f32', dtype='<f4').reshape(out.shape)
print(out.shape, float(np.max(np.abs(out - ref))))
`, dir);
      expect(answer).toMatch(/^\(40, 8\) /);
      expect(Number(answer.trim().split(' ').pop())).toBeLessThan(1e-4);
    }
  });

  it('refuses a file that is not .npy, a truncated one, and shapes that do not fit, with exit 3 and no job', async () => {
    const text = await ergon(['gemm', 'text.npy', 'B.npy', '-o', 'C2.npy'], dir, env);
    expect(text.code).toBe(EXIT.badInput);
    expect(text.stderr).toMatch(/^ergon: A \(text\.npy\): not a \.npy file/m);
    const truncated = await ergon(['gemm', 'A.npy', 'truncated.npy', '-o', 'C2.npy'], dir, env);
    expect(truncated.code).toBe(EXIT.badInput);
    expect(truncated.stderr).toMatch(/B \(truncated\.npy\): the \.npy file is truncated/);
    const mismatch = await ergon(['gemm', 'A.npy', 'B-wrong.npy', '-o', 'C2.npy'], dir, env);
    expect(mismatch.code).toBe(EXIT.badInput);
    expect(mismatch.stderr).toMatch(/A is 300x200 and B is 199x5: A's columns \(200\) must equal B's rows \(199\)/);
    const missingFile = await ergon(['gemm', 'nope.npy', 'B.npy', '-o', 'C2.npy'], dir, env);
    expect(missingFile.code).toBe(EXIT.badInput);
    expect(missingFile.stderr).toMatch(/cannot read nope\.npy: ENOENT/);
    for (const run of [text, truncated, mismatch, missingFile]) expectNoStack(run);
    expect((await ergon(['jobs'], dir, env)).stdout).toBe('no jobs\n');
  });

  it('a wrong key is refused with exit 4, an unreachable coordinator is exit 5, a bad command line exit 2', async () => {
    const wrongKey = await ergon(['gemm', 'A.npy', 'B.npy', '-o', 'C2.npy'], dir, { ...env, ERGON_API_KEY: 'not-a-key' });
    expect(wrongKey.code).toBe(EXIT.refused);
    expect(wrongKey.stderr).toMatch(/the coordinator refused: bad-api-key: that API key is not known to this coordinator \(check --key or ERGON_API_KEY\)/);
    const port = await closedPort();
    const unreachable = await ergon(['jobs', '--url', `http://127.0.0.1:${port}`], dir, env);
    expect(unreachable.code).toBe(EXIT.unreachable);
    expect(unreachable.stderr).toMatch(new RegExp(`cannot reach the coordinator at http://127.0.0.1:${port}: ECONNREFUSED`));
    const usage = await ergon(['gemm', 'A.npy', 'B.npy'], dir, env);
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.stderr).toMatch(/needs -o FILE/);
    const unknownFlag = await ergon(['jobs', '--frobnicate'], dir, env);
    expect(unknownFlag.code).toBe(EXIT.usage);
    const noKey = await ergon(['jobs'], dir, { ERGON_URL: stack.url });
    expect(noKey.code).toBe(EXIT.usage);
    expect(noKey.stderr).toMatch(/no API key: pass --key KEY or set ERGON_API_KEY/);
    for (const run of [wrongKey, unreachable, usage, unknownFlag, noKey]) expectNoStack(run);
    writeFileSync(join(dir, 'page.txt'), 'not an image');
    const notImage = await ergon(['ocr', 'page.txt'], dir, env);
    expect(notImage.code).toBe(EXIT.badInput);
    expect(notImage.stderr).toMatch(/page\.txt: the page is neither a PNG nor a JPEG image/);
  });
});
