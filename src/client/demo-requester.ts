// A demo requester for `npm start`: keeps a few GEMM jobs queued over the real HTTP API, so miners always have work.
import { log } from '../coordinator/log.ts';
import { ndarray } from '../protocol/npy.ts';
import { ErgonApiError, ErgonClient } from './client.ts';

const DEMO_SHAPES: [number, number, number][] = [
  [512, 512, 512],
  [1000, 700, 900],
  [256, 1024, 768],
];
const KEEP_OPEN_JOBS = 2;
const POLL_MS = 2_000;

/** Submits jobs while fewer than KEEP_OPEN_JOBS are open, deletes them once done; returns a function that stops it. */
export function startDemoRequester(baseUrl: string, apiKey: string): () => void {
  let stopped = false;
  let submitted = 0;
  const open = new Set<string>();
  const client = new ErgonClient({ url: baseUrl, apiKey });
  const random = (rows: number, cols: number) => ndarray('f4', [rows, cols], Float32Array.from({ length: rows * cols }, () => Math.random() * 2 - 1));

  const submit = async () => {
    const [m, n, k] = DEMO_SHAPES[submitted++ % DEMO_SHAPES.length];
    const job = await client.submitGemm(random(m, k), random(k, n));
    open.add(job.id);
    log('demo-job-submitted', { job: job.id, m, n, k });
  };

  const collect = async () => {
    for (const id of open) {
      const job = await client.job(id).catch((err: unknown) => {
        // A job gone (expired, or the ledger was reset) is forgotten; any other error goes to the loop's log.
        if (err instanceof ErgonApiError && err.code === 'unknown-job') return undefined;
        throw err;
      });
      if (job && job.status !== 'done') continue;
      open.delete(id);
      if (!job) continue;
      await client.delete(id);
      log('demo-job-done', { job: id, ms: (job.finishedAtMs ?? 0) - job.createdAtMs });
    }
  };

  const loop = async () => {
    while (!stopped) {
      try {
        await collect();
        if (open.size < KEEP_OPEN_JOBS) {
          await submit();
          continue;
        }
      } catch (err) {
        log('demo-requester-error', { error: String(err) });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}
