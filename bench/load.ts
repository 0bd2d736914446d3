// `npm run bench:load`: one coordinator, N scripted miners over real WebRTC for a bounded time; units/s, latency, ledger check.
//
// Usage: npm run bench:load -- [miners] [seconds]   (or BENCH_MINERS, BENCH_SECONDS; defaults 100 and 30: about 40 s in all here)
// With --postgres: fleets of 1, 2 and 4 coordinators on one real PostgreSQL (defaults 24 miners, 15 s each) -> load-pg.json
// The coordinator runs in this process; the miners run in BENCH_WORKERS child processes (default 2, one per core here),
// each speaking the real protocol through PeerJS and node-datachannel and computing small tiles on the CPU.
import { spawn } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import type { ScriptedMiner as ScriptedMinerType } from '../tests/helpers/scripted-miner.ts';

const API_KEY = 'ergon_bench_load_requester_key';
/** Jobs of 64 tiles of 256x64 with K = 32: ~1 MFLOP a unit, a few ms of CPU, so the coordinator is what is measured. */
const JOB = { m: 64 * 256, n: 64, k: 32 };
/** Keep at least this many units per miner queued. */
const QUEUED_UNITS_PER_MINER = 3;
/** Miners connect this many at a time: 200 simultaneous WebRTC handshakes on 2 cores time out. */
const CONNECT_CONCURRENCY = 8;

interface WorkerReport {
  event: 'done';
  miners: number;
  connectFailures: number;
  /** unit id, miner key hex, lease-to-receipt ms, compute ms */
  units: [string, string, number, number][];
  rejected: number;
  errors: string[];
}

// Quiet by default: the coordinator's log reads this when it loads, hence the dynamic imports.
process.env.ERGON_LOG ??= 'silent';
const { toHex } = await import('../src/protocol/receipt.ts');
const { randomMatrix } = await import('../tests/helpers/random.ts');
const { ScriptedMiner } = await import('../tests/helpers/scripted-miner.ts');
if (process.env.BENCH_WORKER === '1') await worker();
else await main();

/** The coordinators under test: SQLite's one, or a fleet on one PostgreSQL. */
interface Setup {
  label: string;
  coordinators: Awaited<ReturnType<typeof import('../src/coordinator/server.ts').startCoordinator>>[];
  /** unit id -> miner key of every credit */
  credited(): Promise<Map<string, string>>;
  cleanUp(): Promise<void>;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--postgres');
  const postgres = process.argv.includes('--postgres');
  const miners = Number(args[0] ?? process.env.BENCH_MINERS ?? (postgres ? 24 : 100));
  const seconds = Number(args[1] ?? process.env.BENCH_SECONDS ?? (postgres ? 15 : 30));
  if (!Number.isInteger(miners) || miners < 1 || miners > 500 || !(seconds > 0 && seconds <= 600)) {
    throw new Error('usage: npm run bench:load -- [--postgres] [miners 1-500] [seconds 1-600]');
  }
  if (!postgres) {
    const result = await measure(miners, seconds, await sqliteSetup());
    await report([result], process.env.BENCH_OUT ?? 'bench/results/load.json', result);
    return;
  }
  // One real PostgreSQL (the tests' recipe: a temporary folder, a loopback port), a fresh database per fleet size.
  const { startPostgres } = await import('../tests/helpers/postgres.ts');
  const server = await startPostgres();
  const results = [];
  try {
    for (const size of [1, 2, 4]) results.push(await measure(miners, seconds, await fleetSetup(await server.createDatabase(), size)));
  } finally {
    await server.stop();
  }
  await report(results, process.env.BENCH_OUT ?? 'bench/results/load-pg.json', { bench: 'load-pg', coordinators: results });
}

/** A function, not a constant: main() runs from a top-level await above, before later constants exist. */
function coordinatorOptions() {
  return {
    host: '127.0.0.1', port: 0, apiKeys: [API_KEY],
    rateLimits: { apiRequests: { perSecond: 1_000, burst: 1_000 } },
    // The feeder never deletes finished jobs: their products would reach the key's quota in a long run.
    quotas: { heldBytes: 64 * 1024 ** 3 },
  };
}

async function sqliteSetup(): Promise<Setup> {
  const { startCoordinator } = await import('../src/coordinator/server.ts');
  const dataDir = await mkdtemp(join(tmpdir(), 'ergon-load-'));
  const coordinator = await startCoordinator({ ...coordinatorOptions(), dataDir });
  return {
    label: 'sqlite, 1 coordinator',
    coordinators: [coordinator],
    async credited() {
      const db = new Database(join(dataDir, 'ledger.sqlite'), { readonly: true });
      const rows = db.prepare('SELECT unit_id, miner_key FROM credits').all() as { unit_id: string; miner_key: string }[];
      db.close();
      return new Map(rows.map((r) => [r.unit_id, r.miner_key]));
    },
    cleanUp: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** `size` coordinators in this process on one database and one shared operand folder. */
async function fleetSetup(databaseUrl: string, size: number): Promise<Setup> {
  const { startCoordinator } = await import('../src/coordinator/server.ts');
  const pg = (await import('pg')).default;
  const dirs = [await mkdtemp(join(tmpdir(), 'ergon-load-shared-'))];
  const coordinators = [];
  for (let i = 0; i < size; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'ergon-load-'));
    dirs.push(dataDir);
    coordinators.push(await startCoordinator({ ...coordinatorOptions(), dataDir, databaseUrl, sharedDir: dirs[0] }));
  }
  return {
    label: `postgres, ${size} coordinator${size === 1 ? '' : 's'}`,
    coordinators,
    async credited() {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      const { rows } = await client.query<{ unit_id: string; miner_key: string }>('SELECT unit_id, miner_key FROM credits');
      await client.end();
      return new Map(rows.map((r) => [r.unit_id, r.miner_key]));
    },
    async cleanUp() {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function measure(miners: number, seconds: number, setup: Setup) {
  const workers = Math.max(1, Math.min(miners, Number(process.env.BENCH_WORKERS ?? 2)));
  const [coordinator] = setup.coordinators;
  const urls = setup.coordinators.map((c) => c.url);
  console.log(`${setup.label}: ${urls.join(' ')}; ${miners} miners in ${workers} processes; ${seconds} s`);

  let feeding = true;
  const submitted: string[] = [];
  const feeder = (async () => {
    const body = new Float32Array(JOB.m * JOB.k + JOB.k * JOB.n);
    body.set(randomMatrix(body.length, 1));
    while (feeding) {
      if ((await coordinator.queue.counts()).unitsPending < miners * QUEUED_UNITS_PER_MINER) {
        const res = await fetch(new URL(`api/jobs/gemm?m=${JOB.m}&n=${JOB.n}&k=${JOB.k}`, coordinator.url), {
          method: 'POST', body, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/octet-stream' },
        });
        if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
        submitted.push(((await res.json()) as { id: string }).id);
      } else {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  })();

  const connectStartedMs = Date.now();
  const children = Array.from({ length: workers }, (_, i) => {
    const share = Math.floor(miners / workers) + (i < miners % workers ? 1 : 0);
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts'], {
      env: { ...process.env, BENCH_WORKER: '1', BENCH_URL: urls.join(','), BENCH_MINERS: String(share) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise<void>((resolve) => lines.on('line', (l) => l.includes('"ready"') && resolve()));
    const done = new Promise<WorkerReport>((resolve, reject) => {
      lines.on('line', (l) => {
        if (l.includes('"event":"done"')) resolve(JSON.parse(l) as WorkerReport);
      });
      child.once('exit', (code) => reject(new Error(`worker ${i} exited with ${code} before reporting`)));
    });
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  const connectSeconds = (Date.now() - connectStartedMs) / 1000;
  console.log(`all miners connected in ${connectSeconds.toFixed(1)} s; mining for ${seconds} s`);

  const creditedBefore = (await coordinator.ledger.totals()).units;
  const startedMs = Date.now();
  for (const c of children) c.child.stdin.write(`go ${seconds * 1000}\n`);
  const reports = await Promise.all(children.map((c) => c.done));
  const wallSeconds = (Date.now() - startedMs) / 1000;
  feeding = false;
  await feeder;

  const units = reports.flatMap((r) => r.units);
  const latencies = units.map((u) => u[2]).sort((x, y) => x - y);
  const computes = units.map((u) => u[3]).sort((x, y) => x - y);
  const totals = await coordinator.ledger.totals();
  // The ledger against what miners were told: every receipt credited once, to its miner, and nothing else credited.
  const credited = await setup.credited();
  for (const c of setup.coordinators) await c.close();
  const receiptIds = new Set(units.map((u) => u[0]));
  const missing = units.filter(([unitId, minerKey]) => credited.get(unitId) !== minerKey).length;
  const doubled = units.length - receiptIds.size;
  const unreceipted = [...credited.keys()].filter((id) => !receiptIds.has(id)).length;
  await setup.cleanUp();

  const result = {
    bench: 'load',
    setup: setup.label,
    coordinators: setup.coordinators.length,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    miners,
    minersConnected: reports.reduce((s, r) => s + r.miners, 0),
    connectFailures: reports.reduce((s, r) => s + r.connectFailures, 0),
    workerProcesses: workers,
    unit: { rows: 256, cols: JOB.n, depth: JOB.k, mflop: (2 * 256 * JOB.n * JOB.k) / 1e6 },
    connectSeconds: round(connectSeconds),
    seconds: round(wallSeconds),
    unitsAccepted: units.length,
    unitsPerSecond: round(units.length / wallSeconds),
    leaseToCreditMs: { p50: round(quantile(latencies, 0.5)), p99: round(quantile(latencies, 0.99)), max: round(latencies.at(-1) ?? 0) },
    computeMs: { p50: round(quantile(computes, 0.5)), p99: round(quantile(computes, 0.99)) },
    rejected: reports.reduce((s, r) => s + r.rejected, 0),
    errors: reports.flatMap((r) => r.errors).slice(0, 10),
    jobsSubmitted: submitted.length,
    ledger: {
      creditsTotal: totals.units,
      creditsBeforeWindow: creditedBefore,
      receipts: units.length,
      receiptsNotCredited: missing,
      receiptsDoubled: doubled,
      creditsWithoutReceipt: unreceipted,
      ok: missing === 0 && doubled === 0 && unreceipted === 0 && totals.units === units.length,
    },
  };
  return result;
}

type Result = Awaited<ReturnType<typeof measure>>;

async function report(results: Result[], out: string, json: unknown): Promise<void> {
  console.table(results.map((result) => ({
    setup: result.setup, miners: result.minersConnected, seconds: result.seconds, 'units/s': result.unitsPerSecond,
    'lease→credit p50 ms': result.leaseToCreditMs.p50, 'lease→credit p99 ms': result.leaseToCreditMs.p99,
    'compute p50 ms': result.computeMs.p50, 'ledger ok': result.ledger.ok,
  })));
  await mkdir('bench/results', { recursive: true });
  await writeFile(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${out}`);
  const bad = results.filter((result) => !result.ledger.ok);
  if (bad.length > 0) {
    console.error('LEDGER MISMATCH', bad.map((result) => result.ledger));
    process.exit(1);
  }
  process.exit(0);
}

/** A child process holding BENCH_MINERS miners: connects them, waits for "go", mines until the deadline, reports. */
async function worker(): Promise<void> {
  const urls = (process.env.BENCH_URL ?? '').split(',');
  const count = Number(process.env.BENCH_MINERS ?? 1);
  const miners: ScriptedMinerType[] = [];
  let connectFailures = 0;
  let connected = 0;
  const errors: string[] = [];
  for (let i = 0; i < count; i += CONNECT_CONCURRENCY) {
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count - i) }, async () => {
      try {
        const miner = await ScriptedMiner.connect(urls[connected++ % urls.length]);
        await miner.hello();
        miners.push(miner);
      } catch (err) {
        connectFailures++;
        errors.push(`connect: ${String(err)}`);
      }
    }));
  }
  console.log(JSON.stringify({ event: 'ready', miners: miners.length }));
  const go = await new Promise<string>((resolve) => createInterface({ input: process.stdin }).once('line', resolve));
  const deadlineMs = Date.now() + Number(go.split(' ')[1]);
  const units: WorkerReport['units'] = [];
  let rejected = 0;
  await Promise.all(miners.map(async (miner) => {
    const key = toHex(miner.minerKey);
    try {
      while (Date.now() < deadlineMs) {
        const lease = await miner.lease();
        const leasedAtMs = performance.now();
        const tile = ScriptedMiner.compute(lease);
        const computeMs = performance.now() - leasedAtMs;
        const verdict = await miner.verdict(lease, tile, Math.max(computeMs / 1000, 1e-6));
        if (verdict.type === 'rejected') rejected++;
        else units.push([verdict.receipt.unitId, key, performance.now() - leasedAtMs, computeMs]);
      }
    } catch (err) {
      errors.push(`miner: ${String(err)}`);
    }
  }));
  console.log(JSON.stringify({ event: 'done', miners: miners.length, connectFailures, units, rejected, errors } satisfies WorkerReport));
  for (const miner of miners) miner.close();
  setTimeout(() => process.exit(0), 500);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
