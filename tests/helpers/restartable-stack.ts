// A coordinator that can be stopped and started again on the same port and data folder, as after a crash or a
// deploy: same signing key and peer id, so miners that knew it can reconnect to it.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.ts';
import { OTHER_API_KEY, TEST_API_KEY } from './stack.ts';

export interface RestartableStack {
  url: string;
  port: number;
  dataDir: string;
  current(): RunningCoordinator | undefined;
  /** Stops the coordinator (the port is closed until start). */
  halt(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago: the OS picks it, we close it and reuse the number. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export async function startRestartableStack(): Promise<RestartableStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ergon-restart-'));
  const port = await freePort();
  let running: RunningCoordinator | undefined;
  const start = async () => {
    running = await startCoordinator({
      host: '127.0.0.1', port, dataDir, staticDir: resolve('dist'), apiKeys: [TEST_API_KEY, OTHER_API_KEY],
    });
  };
  const halt = async () => {
    const was = running;
    running = undefined;
    await was?.close();
  };
  await start();
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    dataDir,
    current: () => running,
    halt,
    start,
    async stop() {
      await halt();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
