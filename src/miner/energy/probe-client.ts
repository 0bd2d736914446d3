// The page's side of the local probe (src/probe): find it on its default port, and read it with the pairing code.
import * as v from 'valibot';
import { PAIRING_HEADER, ProbeHello, ProbeReading } from '../../protocol/energy.ts';

const PROBE_TIMEOUT_MS = 2_000;

export class ProbeError extends Error {
  constructor(readonly code: 'probe-unreachable' | 'pairing-refused' | 'probe-invalid', message: string) {
    super(message);
  }
}

async function get(port: number, path: string, code?: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: code ? { [PAIRING_HEADER]: code } : {},
      // From a public origin Chromium asks the person's permission first (Local Network Access) and preflights with
      // Access-Control-Request-Private-Network, which the probe answers.
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
  } catch (err) {
    throw new ProbeError('probe-unreachable', `no probe answers on 127.0.0.1:${port} (${(err as Error).message}); run "npm run probe" on this machine`);
  }
  const body: unknown = await res.json().catch(() => null);
  if (res.status === 401) throw new ProbeError('pairing-refused', 'the probe refused the pairing code; type the code it printed');
  if (!res.ok) {
    const message = v.is(v.object({ message: v.string() }), body) ? body.message : `HTTP ${res.status}`;
    throw new ProbeError('probe-unreachable', `the probe answered ${res.status}: ${message}`);
  }
  return body;
}

/** Whether a probe listens on this port, and what it measures with. */
export async function findProbe(port: number): Promise<ProbeHello> {
  const parsed = v.safeParse(ProbeHello, await get(port, '/v1/hello'));
  if (!parsed.success) throw new ProbeError('probe-invalid', `what answers on port ${port} is not an Ergon probe: ${parsed.issues[0].message}`);
  return parsed.output;
}

export async function readProbe(port: number, code: string): Promise<ProbeReading> {
  const parsed = v.safeParse(ProbeReading, await get(port, '/v1/reading', code));
  if (!parsed.success) throw new ProbeError('probe-invalid', `the probe's reading is malformed: ${parsed.issues[0].message}`);
  return parsed.output;
}
