// Serves the built bench page and the TF.js / onnxruntime-web bundles from node_modules, on loopback only.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/**
 * `mounts` maps URL prefixes ('/vendor/ort/') to folders; everything else comes from `root`.
 * With `isolate`, COOP/COEP make the page crossOriginIsolated, which ORT's WASM EP needs for threads.
 */
export async function serveStatic(root: string, mounts: Record<string, string>, isolate: boolean): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      const mount = Object.keys(mounts).find((prefix) => pathname.startsWith(prefix));
      const base = resolve(mount ? mounts[mount] : root);
      const relative = mount ? pathname.slice(mount.length) : pathname.replace(/^\/+/, '') || 'index.html';
      const file = resolve(base, normalize(relative));
      if (file !== base && !file.startsWith(base + sep)) {
        res.writeHead(403).end();
        return;
      }
      const info = await stat(file).catch(() => undefined);
      const target = info?.isDirectory() ? join(file, 'index.html') : file;
      const targetInfo = info?.isDirectory() ? await stat(target).catch(() => undefined) : info;
      if (!targetInfo?.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}`);
        return;
      }
      const headers: Record<string, string | number> = {
        'content-type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream',
        'content-length': targetInfo.size,
        'cache-control': 'no-store',
        'cross-origin-resource-policy': 'same-origin',
      };
      if (isolate) {
        headers['cross-origin-opener-policy'] = 'same-origin';
        headers['cross-origin-embedder-policy'] = 'require-corp';
      }
      res.writeHead(200, headers);
      createReadStream(target).pipe(res);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}
