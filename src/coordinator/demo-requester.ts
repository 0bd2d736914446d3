// A demo requester for `npm start`: keeps a few GEMM jobs queued over the real HTTP API, so miners always have work.
import { log } from './log.ts';

const DEMO_SHAPES: [number, number, number][] = [
  [512, 512, 512],
  [1000, 700, 900],
  [256, 1024, 768],
];
const KEEP_OPEN_JOBS = 2;
const POLL_MS = 2_000;

/** Submits jobs while fewer than KEEP_OPEN_JOBS are open; returns a function that stops it. */
export function startDemoRequester(baseUrl: string): () => void {
  let stopped = false;
  let submitted = 0;
  const loop = async () => {
    while (!stopped) {
      try {
        const status = (await (await fetch(new URL('api/status', baseUrl))).json()) as { jobsOpen: number };
        if (status.jobsOpen < KEEP_OPEN_JOBS) {
          const [m, n, k] = DEMO_SHAPES[submitted % DEMO_SHAPES.length];
          const body = new Float32Array(m * k + k * n);
          for (let i = 0; i < body.length; i++) body[i] = Math.random() * 2 - 1;
          const res = await fetch(new URL(`api/jobs/gemm?m=${m}&n=${n}&k=${k}`, baseUrl), {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body,
          });
          const job = (await res.json()) as { id?: string };
          submitted++;
          log('demo-job-submitted', { job: job.id, m, n, k, status: res.status });
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
