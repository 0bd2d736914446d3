// `npm run bench:transport`: how fast bytes move between the coordinator and a real Chromium page, and how soon each
// side notices the other is gone.
//
// Usage: npm run bench:transport -- [rounds] [--high-water=KiB,...] [--no-detection]   (default 3 rounds)
// - MiB/s down (coordinator -> page) and up, over (a) a WebRTC data channel (PeerJS raw, node-datachannel in Node),
//   (b) the miners' WebSocket, both with the product's FramedChannel and its 64 KiB frames and flow control,
//   (c) HTTP GET and POST of one large blob (the POST smaller: Playwright copies request bodies). The bench server here mounts the product's PeerServer, coordinator
//   peer and miner socket (src/coordinator/peers.ts, miner-socket.ts) with an echo of bench messages in place of
//   a session.
// - Time to notice a killed coordinator (SIGKILL, page side: CoordinatorLink gives the link up) and a killed page
//   (the browser SIGKILLed, coordinator side: its session is dropped), per transport, against a real coordinator
//   process (src/coordinator/main.ts).
// bench:feed adds GPU-busy and bytes per unit; not measured here.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { acceptBench, benchSettings } from './transport/server.ts';
import { MINER_SOCKET_PATH, mountMinerSocket } from '../src/coordinator/miner-socket.ts';
import { mountPeerServer, PEER_PATH, startCoordinatorPeer } from '../src/coordinator/peers.ts';
import { FRAME_PAYLOAD_BYTES } from '../src/protocol/framing.ts';
import { HIGH_WATER_BYTES } from '../src/protocol/channel.ts';
import { HEARTBEAT_DEAD_AFTER_MS, HEARTBEAT_MS } from '../src/protocol/heartbeat.ts';
import { CHROMIUM_ARGS, chromiumPath } from '../tests/helpers/chromium.ts';
import { freePort, startCoordinatorProcess, type CoordinatorProcess } from '../tests/helpers/coordinator-process.ts';
import type { ThroughputSpec } from './transport/page.ts';

const REPO = join(import.meta.dirname, '..');
const USAGE = 'usage: npm run bench:transport -- [rounds 1-20] [--high-water=KiB,KiB,...] [--no-detection]';
const args = process.argv.slice(2);
const rounds = Number(args.find((arg) => !arg.startsWith('--')) ?? 3);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(USAGE);
/** FramedChannel high-water marks to compare on the data channel and WebSocket, besides the product's. */
const highWaterKiB = (args.find((arg) => arg.startsWith('--high-water='))?.slice('--high-water='.length).split(',') ?? []).map(Number);
if (highWaterKiB.some((kib) => !Number.isInteger(kib) || kib < 64 || kib > 65_536)) throw new Error(USAGE);
const TOTAL_BYTES = 32 * 1024 * 1024;
const HTTP_BYTES = 128 * 1024 * 1024;
/** Playwright copies every request body into its own process as one string: a 128 MiB POST overflows it. */
const HTTP_UP_BYTES = 32 * 1024 * 1024;
/** A message of a transfer: about a lease's or a result's size. */
const MESSAGE_BYTES = 1024 * 1024;
const PEER_KEY = 'bench';
const PEER_ID = 'ergon-bench-coordinator';
const NOTICE_TIMEOUT_MS = 60_000;

type BenchWindow = { bench: { throughput(spec: ThroughputSpec): Promise<{ downSeconds: number; upSeconds: number }>; connect(url: string, transport: string): Promise<string>; closedAtMs(): number | null } };

/** The bench server: the page, the PeerServer and coordinator peer, the miner socket, and HTTP blobs. */
async function startBenchServer(pageDir: string): Promise<{ url: string; server: Server; close(): void }> {
  const app = express();
  const server = createServer(app);
  const blob = Buffer.alloc(HTTP_BYTES, 7);
  app.get('/blob/:bytes', (req, res) => {
    const bytes = Math.min(HTTP_BYTES, Number(req.params.bytes));
    res.setHeader('content-type', 'application/octet-stream');
    res.end(blob.subarray(0, bytes));
  });
  app.post('/blob', (req, res) => {
    let received = 0;
    req.on('data', (chunk: Buffer) => (received += chunk.byteLength));
    req.on('end', () => res.end(String(received)));
  });
  app.use(express.static(pageDir));
  const peerServer = mountPeerServer(app, server, PEER_KEY, PEER_ID);
  const socket = mountMinerSocket(server, { allowedOrigins: [], onConnection: acceptBench });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const peer = await startCoordinatorPeer(port, PEER_ID, PEER_KEY, peerServer.token, acceptBench, (reason) => console.warn(`  peer: ${reason}`), peerServer.addressOf);
  return {
    url: `http://127.0.0.1:${port}/`,
    server,
    close: () => {
      peer.close();
      peerServer.close();
      socket.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`  page error: ${msg.text().slice(0, 300)}`);
  });
  page.on('pageerror', (err) => console.log(`  page error: ${err.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 30_000 });
  return page;
}

interface ThroughputRow { transport: string; highWaterBytes: number; bytes: number; upBytes: number; downMiBps: number; upMiBps: number; downRuns: number[]; upRuns: number[] }

async function throughputRows(browser: Browser, url: string, highWaterBytes: number, transports: readonly ThroughputSpec['transport'][]): Promise<ThroughputRow[]> {
  const page = await openPage(browser, url);
  benchSettings.highWaterBytes = highWaterBytes;
  const rows = [];
  for (const transport of transports) {
    const bytes = transport === 'http' ? HTTP_BYTES : TOTAL_BYTES;
    const spec: ThroughputSpec = { transport, totalBytes: bytes, upBytes: transport === 'http' ? HTTP_UP_BYTES : bytes, messageBytes: MESSAGE_BYTES, highWaterBytes, peer: { path: PEER_PATH, key: PEER_KEY, id: PEER_ID }, socketPath: MINER_SOCKET_PATH };
    const downRuns: number[] = [];
    const upRuns: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const { downSeconds, upSeconds } = await page.evaluate((s) => (window as unknown as BenchWindow).bench.throughput(s), spec);
      downRuns.push(bytes / 2 ** 20 / downSeconds);
      upRuns.push(spec.upBytes / 2 ** 20 / upSeconds);
      console.log(`  ${transport} (high water ${highWaterBytes / 1024} KiB) round ${round + 1}: down ${downRuns.at(-1)?.toFixed(1)} MiB/s, up ${upRuns.at(-1)?.toFixed(1)} MiB/s`);
    }
    rows.push({ transport, highWaterBytes: transport === 'http' ? 0 : highWaterBytes, bytes, upBytes: spec.upBytes, downMiBps: median(downRuns), upMiBps: median(upRuns), downRuns, upRuns });
  }
  await page.close();
  return rows;
}

/** Waits for the page's link to the coordinator to close, and answers when it did (page clock = this machine's). */
async function pageNoticedAtMs(page: Page): Promise<number> {
  const handle = await page.waitForFunction(() => (window as unknown as BenchWindow).bench.closedAtMs(), undefined, { timeout: NOTICE_TIMEOUT_MS, polling: 10 });
  return (await handle.jsonValue()) as number;
}

/** Polls the coordinator's status until fewer miners are connected than `before`; answers when. */
async function coordinatorNoticedAtMs(url: string, before: number): Promise<number> {
  const deadline = Date.now() + NOTICE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const status = (await (await fetch(new URL('api/status', url))).json()) as { minersConnected: number };
    if (status.minersConnected < before) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the coordinator did not drop the killed page within 60 s');
}

async function minersConnected(url: string): Promise<number> {
  return ((await (await fetch(new URL('api/status', url))).json()) as { minersConnected: number }).minersConnected;
}

async function detectionRows(benchUrl: string, dataRoot: string): Promise<{ case: string; transport: string; medianMs: number; runsMs: number[] }[]> {
  const port = await freePort();
  const benchOrigin = new URL(benchUrl).origin;
  const start = () => startCoordinatorProcess(join(dataRoot, 'coordinator'), port, 30_000, { ERGON_ALLOWED_ORIGINS: benchOrigin });
  let coordinator: CoordinatorProcess = await start();
  const rows = [];
  try {
    for (const transport of ['webrtc', 'websocket'] as const) {
      const killedCoordinator: number[] = [];
      const killedPage: number[] = [];
      for (let round = 0; round < rounds; round++) {
        // A killed coordinator, noticed by the page.
        let browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
        let page = await openPage(browser, benchUrl);
        const used = await page.evaluate(([url, t]) => (window as unknown as BenchWindow).bench.connect(url, t), [coordinator.url, transport] as const);
        if (used !== transport) throw new Error(`asked for ${transport}, connected over ${used}`);
        await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
        const killedAtMs = Date.now();
        await coordinator.kill9();
        killedCoordinator.push((await pageNoticedAtMs(page)) - killedAtMs);
        await browser.close();
        coordinator = await start();

        // A killed page (its whole browser, SIGKILL), noticed by the coordinator.
        const server = await chromium.launchServer({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
        browser = await chromium.connect(server.wsEndpoint());
        page = await openPage(browser, benchUrl);
        await page.evaluate(([url, t]) => (window as unknown as BenchWindow).bench.connect(url, t), [coordinator.url, transport] as const);
        await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
        const before = await minersConnected(coordinator.url);
        const pageKilledAtMs = Date.now();
        server.process().kill('SIGKILL');
        killedPage.push((await coordinatorNoticedAtMs(coordinator.url, before)) - pageKilledAtMs);
        await server.close().catch(() => undefined);
        console.log(`  ${transport} round ${round + 1}: killed coordinator noticed by the page after ${killedCoordinator.at(-1)} ms, killed page by the coordinator after ${killedPage.at(-1)} ms`);
      }
      rows.push({ case: 'killed coordinator, noticed by the page', transport, medianMs: median(killedCoordinator), runsMs: killedCoordinator });
      rows.push({ case: 'killed page, noticed by the coordinator', transport, medianMs: median(killedPage), runsMs: killedPage });
    }
  } finally {
    await coordinator.stop();
  }
  return rows;
}

const dataRoot = await mkdtemp(join(tmpdir(), 'ergon-bench-transport-'));
const pageDir = join(dataRoot, 'page');
await build({ configFile: join(REPO, 'bench/transport/vite.config.ts'), build: { outDir: pageDir }, logLevel: 'warn' });
const bench = await startBenchServer(pageDir);
const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
let throughput: ThroughputRow[];
const compared: ThroughputRow[] = [];
let detection: Awaited<ReturnType<typeof detectionRows>>;
try {
  console.log(`throughput: ${TOTAL_BYTES / 2 ** 20} MiB each way in ${MESSAGE_BYTES / 2 ** 20} MiB messages (HTTP: one ${HTTP_BYTES / 2 ** 20} MiB blob down, ${HTTP_UP_BYTES / 2 ** 20} MiB up), ${rounds} rounds, Chromium ${browser.version()}`);
  throughput = await throughputRows(browser, bench.url, HIGH_WATER_BYTES, ['datachannel', 'websocket', 'http']);
  for (const kib of highWaterKiB) compared.push(...(await throughputRows(browser, bench.url, kib * 1024, ['datachannel', 'websocket'])));
  await browser.close();
  // --no-detection: throughput only (for comparing settings; write such runs to a scratch file with BENCH_OUT).
  console.log(`detection: heartbeat every ${HEARTBEAT_MS} ms, dead after ${HEARTBEAT_DEAD_AFTER_MS} ms of silence`);
  detection = args.includes('--no-detection') ? [] : await detectionRows(bench.url, dataRoot);
} finally {
  await browser.close().catch(() => undefined);
  bench.close();
  await rm(dataRoot, { recursive: true, force: true });
}

console.log('\n| transport | MiB/s down (coordinator -> page) | MiB/s up (page -> coordinator) |\n|---|---|---|');
for (const row of throughput) console.log(`| ${row.transport} | ${row.downMiBps.toFixed(1)} | ${row.upMiBps.toFixed(1)} |`);
if (compared.length > 0) {
  console.log(`\nFramedChannel high-water mark (the product's: ${HIGH_WATER_BYTES / 1024} KiB)\n| transport | high water KiB | MiB/s down | MiB/s up |\n|---|---|---|---|`);
  for (const row of [...throughput.filter((r) => r.transport !== 'http'), ...compared]) console.log(`| ${row.transport} | ${row.highWaterBytes / 1024} | ${row.downMiBps.toFixed(1)} | ${row.upMiBps.toFixed(1)} |`);
}
console.log('\n| case | transport | median ms | runs ms |\n|---|---|---|---|');
for (const row of detection) console.log(`| ${row.case} | ${row.transport} | ${row.medianMs} | ${row.runsMs.join(', ')} |`);

const out = process.env.BENCH_OUT ?? 'bench/results/transport.json';
await mkdir('bench/results', { recursive: true });
await writeFile(out, `${JSON.stringify({
  date: new Date().toISOString(), rounds, framePayloadBytes: FRAME_PAYLOAD_BYTES, highWaterBytes: HIGH_WATER_BYTES, messageBytes: MESSAGE_BYTES,
  heartbeatMs: HEARTBEAT_MS, deadAfterMs: HEARTBEAT_DEAD_AFTER_MS, throughput, highWaterCompared: compared, detection,
}, null, 2)}\n`);
console.log(`wrote ${out}`);
// node-datachannel's threads and PeerJS's timers would hold the process open after everything is closed.
process.exit(0);
