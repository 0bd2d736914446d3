// The probe's localhost HTTP server: readings for the app's origin only, behind a pairing code, with the CORS and
// Private Network Access headers Chromium asks for before a page may reach a local address.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { PAIRING_HEADER, type ProbeHello, type ProbeReading } from '../protocol/energy.ts';

export interface ProbeServerOptions {
  host: string;
  port: number;
  /** Origins whose pages may read (e.g. http://localhost:8787); exact matches only. */
  allowedOrigins: readonly string[];
  pairingCode: string;
  hello: () => ProbeHello;
  /** A fresh reading (the server samples before answering, so a unit's end is measured at its end). */
  reading: () => Promise<ProbeReading>;
}

export interface RunningProbeServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

function sameCode(given: string, code: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(code);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Host headers this server answers to: a page on another name (DNS rebinding) is refused. */
function localHost(host: string | undefined, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function handleProbeRequest(options: ProbeServerOptions, port: number) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    res.setHeader('vary', 'Origin');
    if (!localHost(req.headers.host, port)) {
      return send(res, 421, { code: 'wrong-host', message: `this probe answers only to 127.0.0.1:${port} or localhost:${port}` });
    }
    if (origin !== undefined) {
      if (!options.allowedOrigins.includes(origin)) {
        return send(res, 403, { code: 'origin-not-allowed', message: `pages from ${origin} may not read this probe; start it with --origin ${origin}` });
      }
      res.setHeader('access-control-allow-origin', origin);
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET');
      res.setHeader('access-control-allow-headers', PAIRING_HEADER);
      res.setHeader('access-control-max-age', '600');
      // Private Network Access: a page asking a more private address must be let in explicitly.
      if (req.headers['access-control-request-private-network'] === 'true') res.setHeader('access-control-allow-private-network', 'true');
      res.writeHead(204);
      return void res.end();
    }
    if (req.method !== 'GET') return send(res, 405, { code: 'method-not-allowed', message: 'the probe answers GET only' });
    const path = new URL(req.url ?? '/', 'http://probe').pathname;
    if (path === '/v1/hello') return send(res, 200, options.hello());
    if (path !== '/v1/reading') return send(res, 404, { code: 'not-found', message: `no ${path} here; try /v1/hello or /v1/reading` });
    const given = req.headers[PAIRING_HEADER];
    if (typeof given !== 'string' || !sameCode(given.trim().toUpperCase(), options.pairingCode)) {
      return send(res, 401, { code: 'pairing-required', message: 'give the pairing code the probe printed when it started' });
    }
    try {
      return send(res, 200, await options.reading());
    } catch (err) {
      return send(res, 500, { code: 'reading-failed', message: (err as Error).message });
    }
  };
}

export async function startProbeServer(options: ProbeServerOptions): Promise<RunningProbeServer> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const handle = handleProbeRequest(options, port);
  server.on('request', (req, res) => void handle(req, res));
  return { server, port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
