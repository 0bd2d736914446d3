// A real PostgreSQL for tests: Debian's server binaries, initdb'd in a temporary folder and started on a free
// loopback port (about 1 s); each test gets a database of its own. When the binaries are missing, `postgresMissing`
// says what to install and the tests that need it skip with that sentence.
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './coordinator-process.ts';

const run = promisify(execFile);
const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];
const BIN = process.env.ERGON_PG_BIN ?? BIN_DIRS.find((dir) => existsSync(join(dir, 'initdb')));

/** Why PostgreSQL tests cannot run here, or null when they can. */
export const postgresMissing: string | null = BIN && existsSync(join(BIN, 'pg_ctl'))
  ? null
  : 'PostgreSQL server binaries not found (looked in /usr/lib/postgresql/{15,16,17}/bin): run `sudo apt-get install -y postgresql` (or set ERGON_PG_BIN)';

export interface TestPostgres {
  /** URL of the server's `postgres` database */
  url: string;
  port: number;
  /** A fresh empty database on this server; its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server at once (as a crash would), keeping its files, so that `start` brings it back. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

/** initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user. */
function asServerUser(command: string, args: string[]): Promise<{ stdout: string }> {
  if (process.getuid?.() === 0) return run('runuser', ['-u', 'postgres', '--', command, ...args]);
  return run(command, args);
}

let databases = 0;

export async function startPostgres(): Promise<TestPostgres> {
  if (!BIN || postgresMissing) throw new Error(postgresMissing ?? 'no PostgreSQL');
  const bin = BIN;
  const dir = await mkdtemp(join(tmpdir(), 'ergon-pg-'));
  await chmod(dir, 0o755);
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  await asServerUser(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  // fsync off loses nothing when the server process dies (the tests' `kill`), only when the machine does; but
  // synchronous_commit off lets a commit return before its WAL is written, and a kill then lost a job the
  // coordinator had already answered for (the database-down test saw its unit vanish).
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off -c max_connections=200`;
  const start = async () => {
    await asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'pg.log'), '-w', '-t', '30', '-o', options, 'start']);
  };
  const kill = async () => {
    await asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async createDatabase() {
      const name = `ergon_${process.pid}_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    kill,
    start,
    async stop() {
      await kill().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
