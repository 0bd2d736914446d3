// No secret reaches a browser: everything the coordinator serves (the built app, its config) is free of the
// requesters' API keys and the coordinator's signing key, and the data folder next to the app cannot be reached.
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { loadOrCreateApiKeys } from '../../src/coordinator/api-keys.ts';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.ts';

process.env.ERGON_LOG ??= 'silent';

let root: string;
let coordinator: RunningCoordinator;
let apiKey: string;

test.beforeAll(async () => {
  // The layout `npm start` uses: the app in dist/ and the data folder beside it, in data/.
  root = await mkdtemp(join(tmpdir(), 'ergon-secrets-'));
  await cp(resolve('dist'), join(root, 'dist'), { recursive: true });
  await mkdir(join(root, 'data'), { mode: 0o700 });
  const { keys } = await loadOrCreateApiKeys(join(root, 'data'), undefined);
  apiKey = keys[0];
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: join(root, 'data'), staticDir: join(root, 'dist'), apiKeys: keys });
});

test.afterAll(async () => {
  await coordinator?.close();
  await rm(root, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

test('nothing the coordinator serves to a browser holds an API key or the signing key', async ({ request }) => {
  const signingKey = await readFile(join(root, 'data', 'coordinator-key.pkcs8'));
  // The private key as bytes, and the forms it could be pasted in: hex and base64.
  const secrets = [apiKey, signingKey.toString('hex'), signingKey.toString('base64')];
  const served = [...(await filesUnder(join(root, 'dist'))), 'api/config'];
  expect(served.length).toBeGreaterThan(5);
  for (const path of served) {
    const response = await request.get(new URL(path, coordinator.url).href);
    expect(response.status(), path).toBe(200);
    const body = await response.body();
    for (const secret of secrets) expect(body.includes(secret), `${path} holds a secret`).toBe(false);
    expect(body.includes(signingKey), `${path} holds the signing key's bytes`).toBe(false);
  }
});

test('the data folder next to the app cannot be fetched, not even by climbing out of the app folder', async ({ request }) => {
  for (const path of ['api-keys', 'coordinator-key.pkcs8', 'ledger.sqlite', '../data/api-keys', '..%2fdata%2fapi-keys', '%2e%2e/data/api-keys', 'data/api-keys']) {
    const response = await request.get(`${coordinator.url}${path}`);
    const body = await response.text();
    expect(body.includes(apiKey), `${path} served an API key`).toBe(false);
    expect(response.headers()['content-type'] ?? '', path).not.toContain('octet-stream');
  }
});
