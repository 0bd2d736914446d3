// Runs the real coordinator (src/coordinator/main.ts) as a child process, so a test can kill -9 it and start it again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { TEST_API_KEY } from './stack.ts';

export interface CoordinatorProcess {
  url: string;
  child: ChildProcess;
  /** SIGKILL: no shutdown handler runs, as in a crash or an OOM kill. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago, so that a restarted coordinator can take the same one. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `node --import tsx src/coordinator/main.ts` (one process, so a kill reaches the coordinator itself). */
export async function startCoordinatorProcess(dataDir: string, port: number, timeoutMs = 30_000, env: Record<string, string> = {}): Promise<CoordinatorProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/coordinator/main.ts'], {
    env: { ...process.env, PORT: String(port), ERGON_DATA_DIR: dataDir, ERGON_DEMO: '0', ERGON_API_KEYS: TEST_API_KEY, ERGON_LOG: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coordinator did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.startsWith('{"event":"ergon-ready"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`coordinator exited with ${code} before it was ready:\n${output}`));
    });
  });
  return {
    url,
    child,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
