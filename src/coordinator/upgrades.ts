// One dispatcher for the HTTP server's WebSocket upgrades, by path: the PeerServer's signalling and the miners' socket.
//
// A `ws` server attached to an HTTP server answers every upgrade it does not own with 400 and destroys the socket, so
// two of them on one server would refuse each other's clients. Each registers its path here instead, and an upgrade
// to no registered path is refused once, here.
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const routersOf = new WeakMap<Server, UpgradeRoutes>();

export class UpgradeRoutes {
  private readonly routes = new Map<string, UpgradeHandler>();

  private constructor(server: Server) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.dispatch(req, socket, head));
  }

  /** The router of this HTTP server, made (and attached) on first use. */
  static of(server: Server): UpgradeRoutes {
    let routes = routersOf.get(server);
    if (!routes) {
      routes = new UpgradeRoutes(server);
      routersOf.set(server, routes);
    }
    return routes;
  }

  route(path: string, handler: UpgradeHandler): void {
    if (this.routes.has(path)) throw new Error(`a WebSocket route for ${path} is already registered`);
    this.routes.set(path, handler);
  }

  private dispatch(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const handler = this.routes.get(query === -1 ? url : url.slice(0, query));
    if (handler) return handler(req, socket, head);
    refuseUpgrade(socket, 400, 'no WebSocket is served at this path');
  }
}

/** Refuses an upgrade with an HTTP status and a sentence, before any WebSocket exists. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.on('error', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`
      + `Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
