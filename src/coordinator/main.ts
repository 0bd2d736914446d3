// `npm start`: one coordinator on embedded defaults (SQLite in ./data), the PWA, and a demo requester.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { API_KEYS_FILE, loadOrCreateApiKeys } from './api-keys.ts';
import { OCR_USAGE } from './ocr-api.ts';
import { startCoordinator } from './server.ts';
import { loadOrCreateOperatorKey, OPERATOR_KEY_FILE } from './operator-key.ts';
import { startDemoRequester } from '../client/demo-requester.ts';
import { defaultKinds } from '../work/registry.ts';

const port = Number(process.env.PORT ?? 8787);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.ERGON_DATA_DIR ?? 'data');
const demo = process.env.ERGON_DEMO !== '0';
const list = (raw: string | undefined) => (raw ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '');
const allowedOrigins = list(process.env.ERGON_ALLOWED_ORIGINS);
const publicHosts = list(process.env.ERGON_PUBLIC_HOSTS);
// Behind a reverse proxy every miner comes from the proxy's address: raise this to the miners expected to connect at once.
const handshakesPerAddress = process.env.ERGON_HANDSHAKES_PER_ADDRESS ? Number(process.env.ERGON_HANDSHAKES_PER_ADDRESS) : undefined;
if (handshakesPerAddress !== undefined && !(Number.isInteger(handshakesPerAddress) && handshakesPerAddress >= 1)) {
  throw new Error(`ERGON_HANDSHAKES_PER_ADDRESS must be a whole number of at least 1, not ${JSON.stringify(process.env.ERGON_HANDSHAKES_PER_ADDRESS)}`);
}

await mkdir(dataDir, { recursive: true, mode: 0o700 });
const { keys, created } = await loadOrCreateApiKeys(dataDir, process.env.ERGON_API_KEYS);
const operator = await loadOrCreateOperatorKey(dataDir, process.env.ERGON_OPERATOR_KEY);
const kinds = defaultKinds();
// A fleet: several coordinators on one PostgreSQL (DATABASE_URL) and one operand folder (ERGON_SHARED_DIR).
const databaseUrl = process.env.DATABASE_URL || undefined;
const sharedDir = process.env.ERGON_SHARED_DIR ? resolve(process.env.ERGON_SHARED_DIR) : undefined;
const handshakeLimits = handshakesPerAddress === undefined ? {} : { perAddress: handshakesPerAddress };
// For crash tests only: SIGKILL right after a credit is committed, before its receipt goes out (tests/integration/lost-receipt.test.ts).
const crashPoints = process.env.ERGON_TEST_CRASH_AFTER_CREDIT === '1' ? { afterCredit: () => process.kill(process.pid, 'SIGKILL') } : undefined;
const coordinator = await startCoordinator({
  host, port, dataDir, staticDir: resolve('dist'), apiKeys: keys, allowedOrigins, publicHosts, kinds, handshakeLimits, operatorKey: operator.key, databaseUrl, sharedDir, crashPoints,
});
const stopDemo = demo ? startDemoRequester(coordinator.url, keys[0]) : () => {};

const keySource = process.env.ERGON_API_KEYS ? 'ERGON_API_KEYS' : join(dataDir, API_KEYS_FILE);
console.log(`
  Ergon is running.
  Open ${coordinator.url} in Chromium and press Start to mine.
  Requester API (${coordinator.url}):
${[...[...coordinator.jobs.kinds.values()].map((kind) => kind.usage), OCR_USAGE].map((usage) => `    ${usage}`).join('\n')}
  API key (send as "Authorization: Bearer KEY"; ${created ? 'made just now and kept in' : 'from'} ${keySource}):
    ${keys[0]}
  Operator page (the key rides in the #fragment, which never leaves the browser; the page then forgets it):
    ${coordinator.url}operator.html#key=${operator.key}
  Prometheus metrics: ${coordinator.url}metrics with "Authorization: Bearer OPERATOR_KEY"
    (operator key ${operator.created ? 'made just now and kept in' : 'from'} ${process.env.ERGON_OPERATOR_KEY ? 'ERGON_OPERATOR_KEY' : join(dataDir, OPERATOR_KEY_FILE)})
  Ledger: ${databaseUrl ? `PostgreSQL (DATABASE_URL), operands in ${sharedDir}` : `${dataDir}/ledger.sqlite`}${demo ? '\n  A demo requester keeps jobs queued (ERGON_DEMO=0 turns it off).' : ''}
`);
// One machine-readable line for scripts and tests that start this process.
console.log(JSON.stringify({ event: 'ergon-ready', url: coordinator.url, port: coordinator.port }));

const shutdown = async () => {
  stopDemo();
  await coordinator.close();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
