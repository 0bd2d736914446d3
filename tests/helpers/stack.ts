// Starts the real coordinator stack on a free port with a fresh data folder, for tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCoordinator, type CoordinatorOptions, type RunningCoordinator } from '../../src/coordinator/server.ts';

/** The requester key every test stack accepts; tests that play another requester use OTHER_API_KEY. */
export const TEST_API_KEY = 'ergon_test_requester_key_0001';
export const OTHER_API_KEY = 'ergon_test_requester_key_0002';
/** The operator key every test stack accepts (opens /metrics and the operator page). */
export const TEST_OPERATOR_KEY = 'ergon_test_operator_key_0001';

export interface TestStack extends RunningCoordinator {
  dataDir: string;
  stop(): Promise<void>;
}

export async function startStack(options: { serveApp?: boolean } & Partial<CoordinatorOptions> = {}): Promise<TestStack> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ergon-test-')));
  const { serveApp, ...rest } = options;
  const coordinator = await startCoordinator({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    staticDir: serveApp ? resolve('dist') : undefined,
    apiKeys: [TEST_API_KEY, OTHER_API_KEY],
    operatorKey: TEST_OPERATOR_KEY,
    ...rest,
  });
  return {
    ...coordinator,
    dataDir,
    async stop() {
      await coordinator.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Stops the clock the coordinator judges lease deadlines by, at this moment, until the returned function is called:
 * no lease leased from now on can expire, so a unit that comes back to the queue meanwhile came back for another
 * reason (its miner left or went silent), whatever the machine's speed. Other clocks (heartbeats, rate limits) run on.
 */
export function holdLeaseDeadlines(stack: RunningCoordinator): () => void {
  const { queue } = stack;
  const heldAtMs = Date.now();
  const expire = queue.expire.bind(queue);
  queue.expire = () => expire(heldAtMs);
  return () => {
    queue.expire = expire;
  };
}

/**
 * Makes every lease leased from now on last `byMs` longer, at both ends (the miner is sent the longer deadline): for
 * tests whose steps between a lease and its result take a time that depends on the machine's speed.
 */
export function lengthenLeases(stack: RunningCoordinator, byMs: number): void {
  const { queue } = stack;
  const lease = queue.lease.bind(queue);
  queue.lease = async (...args) => {
    const leased = await lease(...args);
    if (leased) leased.deadlineAtMs += byMs;
    return leased;
  };
}

export interface JobView {
  id: string;
  precision: 'f32' | 'f16';
  status: 'queued' | 'running' | 'done';
  unitsTotal: number;
  unitsDone: number;
  miners: number;
}

/** Headers of a request made with a requester's API key. */
export function authorized(apiKey = TEST_API_KEY, headers: Record<string, string> = {}): Record<string, string> {
  return { ...headers, authorization: `Bearer ${apiKey}` };
}

/** A requester's call to the API, with its key. */
export function api(baseUrl: string, path: string, init: RequestInit = {}, apiKey = TEST_API_KEY): Promise<Response> {
  return fetch(new URL(`api/${path}`, baseUrl), { ...init, headers: authorized(apiKey, init.headers as Record<string, string> | undefined) });
}

/** Submits a GEMM through the requester API, as any HTTP client would. */
export async function submitGemm(
  baseUrl: string, m: number, n: number, k: number, a: Float32Array, b: Float32Array, apiKey = TEST_API_KEY, precision: 'f32' | 'f16' = 'f32',
): Promise<JobView> {
  const body = new Uint8Array(4 * (a.length + b.length));
  body.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), 0);
  body.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), a.byteLength);
  const res = await api(baseUrl, `jobs/gemm?m=${m}&n=${n}&k=${k}${precision === 'f16' ? '&precision=f16' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body,
  }, apiKey);
  if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobView;
}

export async function waitForJob(baseUrl: string, id: string, timeoutMs = 120_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (await api(baseUrl, `jobs/${id}`)).json()) as JobView;
    if (job.status === 'done') return job;
    if (Date.now() > deadline) throw new Error(`job ${id} not done after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function fetchProduct(baseUrl: string, id: string): Promise<Float32Array> {
  const res = await api(baseUrl, `jobs/${id}/result`);
  if (res.status !== 200) throw new Error(`result: ${res.status} ${await res.text()}`);
  return new Float32Array(await res.arrayBuffer());
}

export { maxRelativeError } from './random.ts';
