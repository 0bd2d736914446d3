// `npm start`: one coordinator on embedded defaults (SQLite in ./data), the PWA, and a demo requester.
import { resolve } from 'node:path';
import { startCoordinator } from './server.ts';
import { startDemoRequester } from './demo-requester.ts';

const port = Number(process.env.PORT ?? 8787);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.ERGON_DATA_DIR ?? 'data');
const demo = process.env.ERGON_DEMO !== '0';

const coordinator = await startCoordinator({ host, port, dataDir, staticDir: resolve('dist') });
const stopDemo = demo ? startDemoRequester(coordinator.url) : () => {};

console.log(`
  Ergon is running.
  Open ${coordinator.url} in Chromium and press Start to mine.
  Requester API: POST ${coordinator.url}api/jobs/gemm?m=M&n=N&k=K (body: A then B, f32 little-endian)
  Ledger: ${dataDir}/ledger.sqlite${demo ? '\n  A demo requester keeps GEMM jobs queued (ERGON_DEMO=0 turns it off).' : ''}
`);

const shutdown = async () => {
  stopDemo();
  await coordinator.close();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
