// `npm run probe`: finds this machine's energy sources (nvidia-smi, RAPL, hwmon), says which it can read and how
// to fix those it cannot, prints a pairing code and serves readings to the miner page on a localhost port.
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DEFAULT_PROBE_PORT, METHOD_LABELS } from '../protocol/energy.ts';
import { discoverNvidia } from './nvidia-smi.ts';
import { Sampler } from './sampler.ts';
import { startProbeServer } from './server.ts';
import { discoverHwmon, discoverPowercap, type Discovery } from './sysfs.ts';

const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** Eight characters without look-alikes (no 0/O, 1/I), as XXXX-XXXX. */
export function pairingCode(): string {
  const chars = Array.from({ length: 8 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: String(DEFAULT_PROBE_PORT) },
    origin: { type: 'string', multiple: true },
    'sysfs-root': { type: 'string', default: '/sys' },
    'nvidia-smi': { type: 'string', default: 'nvidia-smi' },
    'period-ms': { type: 'string', default: '200' },
  },
});
const port = Number(values.port);
const periodMs = Number(values['period-ms']);
if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port ${values.port} is not a port number`);
if (!Number.isFinite(periodMs) || periodMs < 20) throw new Error(`--period-ms ${values['period-ms']} must be at least 20`);
const appPort = process.env.PORT ?? '8787';
const allowedOrigins = values.origin ?? [`http://localhost:${appPort}`, `http://127.0.0.1:${appPort}`];

const found: Discovery = { sources: [], unreadable: [], absent: [] };
await discoverPowercap(values['sysfs-root'], found);
await discoverHwmon(values['sysfs-root'], found);
const nvidia = await discoverNvidia(values['nvidia-smi']);
const sources = [...nvidia.sources, ...found.sources];

for (const s of sources) console.log(`found   ${s.label}: ${METHOD_LABELS[s.method]} (${s.method})`);
if (nvidia.problem) console.log(`absent  ${nvidia.problem}`);
for (const a of found.absent) console.log(`absent  ${a} (this kernel or container has none)`);
for (const u of found.unreadable) console.log(`unreadable ${u.path} (${u.error}); fix: ${u.fix}`);
if (sources.length === 0) console.log('No energy source is readable here: the page will fall back to a wall meter, the battery, or an estimate.');

const sampler = new Sampler(sources);
await sampler.sample();
sampler.start(periodMs);
const code = pairingCode();
const running = await startProbeServer({
  host: '127.0.0.1',
  port,
  allowedOrigins,
  pairingCode: code,
  hello: () => ({ probe: 'ergon-probe', version: 1, methods: sampler.methods }),
  reading: async () => {
    await sampler.sample();
    return sampler.reading();
  },
});
console.log(`Serving readings on http://127.0.0.1:${running.port} to pages from ${allowedOrigins.join(', ')}`);
console.log(`Pairing code: ${code}   (the miner page asks for it once)`);
console.log(JSON.stringify({ event: 'probe-ready', port: running.port, methods: sampler.methods }));

const problemTimer = setInterval(() => {
  for (const p of sampler.problems()) console.error(`read failed: ${p}`);
}, 10_000);
const shutdown = () => {
  clearInterval(problemTimer);
  sampler.stop();
  void running.close().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
