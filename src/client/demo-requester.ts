// A demo requester for `npm start`: keeps a few GEMM jobs queued over the real HTTP API, so miners always have work.
import { log } from '../coordinator/log.ts';

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
  const api = (path: string, init: RequestInit = {}) =>
    fetch(new URL(`api/${path}`, baseUrl), { ...init, headers: { ...init.headers, authorization: `Bearer ${apiKey}` } });

  const submit = async () => {
    const [m, n, k] = DEMO_SHAPES[submitted++ % DEMO_SHAPES.length];
    const body = new Float32Array(m * k + k * n);
    for (let i = 0; i < body.length; i++) body[i] = Math.random() * 2 - 1;
    const res = await api(`jobs/gemm?m=${m}&n=${n}&k=${k}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
    const job = (await res.json()) as { id: string };
    if (res.status !== 201) throw new Error(`submit refused: ${res.status} ${JSON.stringify(job)}`);
    open.add(job.id);
    log('demo-job-submitted', { job: job.id, m, n, k });
  };

  const collect = async () => {
    for (const id of open) {
      const job = (await (await api(`jobs/${id}`)).json()) as { status?: string; finishedAtMs?: number; createdAtMs?: number };
      if (job.status !== 'done' && job.status !== undefined) continue;
      open.delete(id);
      await api(`jobs/${id}`, { method: 'DELETE' });
      if (job.status === 'done') log('demo-job-done', { job: id, ms: (job.finishedAtMs ?? 0) - (job.createdAtMs ?? 0) });
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
