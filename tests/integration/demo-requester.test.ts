// The demo requester of `npm start`, on the typed client: it keeps two GEMM jobs open, and deletes each once a miner
// has done it, submitting the next.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDemoRequester } from '../../src/client/demo-requester.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { api, startStack, TEST_API_KEY, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function openJobs(): Promise<{ id: string; status: string; m: number }[]> {
  return ((await (await api(stack.url, 'jobs')).json()) as { jobs: { id: string; status: string; m: number }[] }).jobs;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('keeps two jobs queued, and replaces a job a miner finished with a new one', async () => {
  const stop = startDemoRequester(stack.url, TEST_API_KEY);
  let mining = false;
  const miner = await ScriptedMiner.connect(stack.url);
  try {
    const first = await until('two open jobs', async () => {
      const jobs = await openJobs();
      return jobs.length === 2 ? jobs : undefined;
    });
    expect(first.map((j) => j.m)).toEqual([512, 1000]);
    await miner.hello();
    mining = true;
    const work = miner.mineHonestly(() => !mining);
    // The 512x512 job is done, deleted by the demo, and a third job takes its place.
    const later = await until('the first job replaced', async () => {
      const jobs = await openJobs();
      return jobs.length === 2 && !jobs.some((j) => j.id === first[0].id) ? jobs : undefined;
    });
    mining = false;
    await work;
    // Two open jobs again, at least one of them new. (Whether the second job is still among them depends on how fast
    // the miner is against the demo's 2 s poll: a fast one finishes both in one poll, and both are replaced.)
    expect(later.filter((j) => !first.some((f) => f.id === j.id)).length).toBeGreaterThanOrEqual(1);
  } finally {
    stop();
    mining = false;
    miner.close();
  }
});
