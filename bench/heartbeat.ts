// `npm run bench:heartbeat`: how long each side of a real link takes to notice that the other is gone.
//
// Usage: npm run bench:heartbeat -- [rounds]   (default 5; about 40 s here)
// The coordinator runs as its own process (src/coordinator/main.ts), the miner is a scripted one in this process on
// the real PeerJS/node-datachannel stack. Two cases, each timed from the fault to the moment the link closes:
// - a frozen miner: it stops sending anything (a hung tab, a machine that lost its network), and the coordinator
//   drops it, which re-queues its leases; timed until the miner sees the coordinator close the channel;
// - a killed coordinator (SIGKILL: no goodbye on the wire), timed until the miner gives the link up.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEARTBEAT_DEAD_AFTER_MS, HEARTBEAT_MS } from '../src/protocol/heartbeat.ts';
import { freePort, startCoordinatorProcess } from '../tests/helpers/coordinator-process.ts';
import { ScriptedMiner } from '../tests/helpers/scripted-miner.ts';

const rounds = Number(process.argv[2] ?? 5);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error('usage: npm run bench:heartbeat -- [rounds 1-100]');

/** Connects a miner with a proved key and answers when its link closes, in ms after `fault()` ran. */
async function timeToNotice(url: string, fault: (miner: ScriptedMiner) => Promise<void>): Promise<{ ms: number; reason: string }> {
  const miner = await ScriptedMiner.connect(url);
  await miner.hello();
  const closed = new Promise<string>((resolve) => miner.link.onClose(resolve));
  // Let a few heartbeats pass on a healthy link first.
  await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
  const start = performance.now();
  await fault(miner);
  const reason = await closed;
  const ms = performance.now() - start;
  miner.close();
  return { ms, reason };
}

function summary(ms: number[]): { medianMs: number; maxMs: number; minMs: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)], maxMs: sorted[sorted.length - 1], minMs: sorted[0] };
}

const dataRoot = await mkdtemp(join(tmpdir(), 'ergon-heartbeat-'));
const frozen: number[] = [];
const killed: number[] = [];
const reasons = new Set<string>();
try {
  const port = await freePort();
  let coordinator = await startCoordinatorProcess(join(dataRoot, 'data'), port);
  for (let round = 0; round < rounds; round++) {
    const dropped = await timeToNotice(coordinator.url, async (miner) => miner.goSilent());
    frozen.push(dropped.ms);
    reasons.add(`frozen miner: ${dropped.reason}`);

    const gone = await timeToNotice(coordinator.url, () => coordinator.kill9());
    killed.push(gone.ms);
    reasons.add(`killed coordinator: ${gone.reason}`);
    coordinator = await startCoordinatorProcess(join(dataRoot, 'data'), port);
    console.log(`round ${round + 1}/${rounds}: frozen miner dropped after ${dropped.ms.toFixed(0)} ms, killed coordinator noticed after ${gone.ms.toFixed(0)} ms`);
  }
  await coordinator.stop();
} finally {
  await rm(dataRoot, { recursive: true, force: true });
}

const table = [
  { case: 'frozen miner, dropped by the coordinator', ...summary(frozen) },
  { case: 'killed coordinator, given up by the miner', ...summary(killed) },
];
console.log(`\nheartbeat every ${HEARTBEAT_MS} ms, dead after ${HEARTBEAT_DEAD_AFTER_MS} ms of silence; ${rounds} rounds`);
console.log('| case | median ms | min ms | max ms |\n|---|---|---|---|');
for (const row of table) console.log(`| ${row.case} | ${row.medianMs.toFixed(0)} | ${row.minMs.toFixed(0)} | ${row.maxMs.toFixed(0)} |`);
for (const reason of reasons) console.log(`  ${reason}`);

const out = process.env.BENCH_OUT ?? 'bench/results/heartbeat.json';
await mkdir('bench/results', { recursive: true });
await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), heartbeatMs: HEARTBEAT_MS, deadAfterMs: HEARTBEAT_DEAD_AFTER_MS, rounds, frozenMs: frozen, killedMs: killed, table, reasons: [...reasons] }, null, 2)}\n`);
console.log(`wrote ${out}`);
