// Runs the real coordinator (src/coordinator/main.ts) as a child process with its log on, so a test can read what it
// logged and see whether it exited.
import { spawn, type ChildProcess } from 'node:child_process';
import { TEST_API_KEY } from './stack.ts';

export type LogEvent = { event: string } & Record<string, unknown>;

export interface LoggedCoordinator {
  url: string;
  child: ChildProcess;
  /** Every JSON line it printed, in order. */
  readonly events: LogEvent[];
  /** Its exit code once it exited by itself (null while it runs). */
  exitCode(): number | null;
  /** Resolves with the first event that matches, logged before or after the call; rejects if the process exits. */
  waitFor(matches: (event: LogEvent) => boolean, timeoutMs?: number): Promise<LogEvent>;
  stop(): Promise<void>;
}

/** `env`: more of the coordinator's environment, for a test of one of its settings. */
export async function startLoggedCoordinator(dataDir: string, port: number, timeoutMs = 30_000, env: Record<string, string> = {}): Promise<LoggedCoordinator> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/coordinator/main.ts'], {
    env: { ...process.env, PORT: String(port), ERGON_DATA_DIR: dataDir, ERGON_DEMO: '0', ERGON_API_KEYS: TEST_API_KEY, ERGON_LOG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: LogEvent[] = [];
  let output = '';
  let pending = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as LogEvent);
      } catch {
        // A line that only looks like JSON (a stack trace's object dump): kept in `output` for the error message.
      }
    }
    notify();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', notify);

  const waitFor = (matches: (event: LogEvent) => boolean, waitMs = 30_000) =>
    new Promise<LogEvent>((resolve, reject) => {
      const check = () => {
        const found = events.find(matches);
        if (found) return finish(() => resolve(found));
        if (child.exitCode !== null || child.signalCode !== null) {
          return finish(() => reject(new Error(`coordinator exited with ${child.exitCode ?? child.signalCode}:\n${output.slice(-4_000)}`)));
        }
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no such event within ${waitMs} ms:\n${output.slice(-4_000)}`))), waitMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        settle();
      };
      listeners.add(check);
      check();
    });

  const ready = await waitFor((e) => e.event === 'ergon-ready', timeoutMs);
  return {
    url: String(ready.url),
    child,
    events,
    exitCode: () => child.exitCode,
    waitFor,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
