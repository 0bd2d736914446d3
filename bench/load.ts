// `npm run bench:load`: one coordinator, N scripted miners over real WebRTC for a bounded time; units/s, latency, ledger check.
//
// Usage: npm run bench:load -- [miners] [seconds]   (or BENCH_MINERS, BENCH_SECONDS; defaults 100 and 30: about 40 s in all here)
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

async function main(): Promise<void> {
  const miners = Number(process.argv[2] ?? process.env.BENCH_MINERS ?? 100);
  const seconds = Number(process.argv[3] ?? process.env.BENCH_SECONDS ?? 30);
  const workers = Math.max(1, Math.min(miners, Number(process.env.BENCH_WORKERS ?? 2)));
  if (!Number.isInteger(miners) || miners < 1 || miners > 500 || !(seconds > 0 && seconds <= 600)) {
    throw new Error('usage: npm run bench:load -- [miners 1-500] [seconds 1-600]');
  }
  const { startCoordinator } = await import('../src/coordinator/server.ts');
  const dataDir = await mkdtemp(join(tmpdir(), 'ergon-load-'));
  const coordinator = await startCoordinator({
    host: '127.0.0.1', port: 0, dataDir, apiKeys: [API_KEY],
    rateLimits: { apiRequests: { perSecond: 1_000, burst: 1_000 } },
    // The feeder never deletes finished jobs: their products would reach the key's quota in a long run.
    quotas: { heldBytes: 64 * 1024 ** 3 },
  });
  console.log(`coordinator ${coordinator.url}; ${miners} miners in ${workers} processes; ${seconds} s`);

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
      env: { ...process.env, BENCH_WORKER: '1', BENCH_URL: coordinator.url, BENCH_MINERS: String(share) },
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
  await coordinator.close();

  // The ledger against what miners were told: every receipt credited once, to its miner, and nothing else credited.
  const db = new Database(join(dataDir, 'ledger.sqlite'), { readonly: true });
  const credited = new Map((db.prepare('SELECT unit_id, miner_key FROM credits').all() as { unit_id: string; miner_key: string }[]).map((r) => [r.unit_id, r.miner_key]));
  db.close();
  const receiptIds = new Set(units.map((u) => u[0]));
  const missing = units.filter(([unitId, minerKey]) => credited.get(unitId) !== minerKey).length;
  const doubled = units.length - receiptIds.size;
  const unreceipted = [...credited.keys()].filter((id) => !receiptIds.has(id)).length;
  await rm(dataDir, { recursive: true, force: true });

  const result = {
    bench: 'load',
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
  console.table({
    miners: result.minersConnected, seconds: result.seconds, 'units/s': result.unitsPerSecond,
    'lease→credit p50 ms': result.leaseToCreditMs.p50, 'lease→credit p99 ms': result.leaseToCreditMs.p99,
    'compute p50 ms': result.computeMs.p50, 'ledger ok': result.ledger.ok,
  });
  const out = process.env.BENCH_OUT ?? 'bench/results/load.json';
  await mkdir('bench/results', { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
  if (!result.ledger.ok) {
    console.error('LEDGER MISMATCH', result.ledger);
    process.exit(1);
  }
  process.exit(0);
}

/** A child process holding BENCH_MINERS miners: connects them, waits for "go", mines until the deadline, reports. */
async function worker(): Promise<void> {
  const url = process.env.BENCH_URL ?? '';
  const count = Number(process.env.BENCH_MINERS ?? 1);
  const miners: ScriptedMinerType[] = [];
  let connectFailures = 0;
  const errors: string[] = [];
  for (let i = 0; i < count; i += CONNECT_CONCURRENCY) {
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count - i) }, async () => {
      try {
        const miner = await ScriptedMiner.connect(url);
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
