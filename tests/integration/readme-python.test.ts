// The README's Python example, run as written (python3 with numpy) against a real coordinator while a scripted honest
// miner does the work: it must submit a GEMM, read C back equal to numpy's product, and delete the job.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numpyMissing, PYTHON } from '../helpers/numpy.ts';
import { runProcess } from '../helpers/run-process.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

const missing = numpyMissing();
if (missing) throw new Error(missing);

/** The ```python block that follows the README's marker. */
function readmeExample(): string {
  const readme = readFileSync('README.md', 'utf8');
  const match = /<!-- readme-python-example -->\s*```python\n([\s\S]*?)\n```/.exec(readme);
  if (!match) throw new Error('README.md has no python block after <!-- readme-python-example -->');
  return match[1];
}

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

it('the README\'s Python example gets C back equal to numpy\'s A @ B', async () => {
  const miner = await ScriptedMiner.connect(stack.url);
  await miner.hello();
  let stop = false;
  const mining = miner.mineHonestly(() => stop);
  const run = await runProcess(PYTHON, ['-c', readmeExample()], { env: { ...process.env, ERGON_URL: stack.url, ERGON_API_KEY: TEST_API_KEY } });
  stop = true;
  const receipts = await mining;
  miner.close();
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const error = Number(/^max relative error against numpy: (\S+)$/m.exec(run.stdout)?.[1]);
  expect(error).toBeGreaterThanOrEqual(0);
  expect(error).toBeLessThan(1e-5);
  // The miner did the job's units (300x100: two row tiles), and the example deleted the job when it was done.
  expect(receipts.length).toBe(2);
  expect(await (await api(stack.url, 'jobs')).json()).toEqual({ jobs: [] });
});
