// A raw WebSocket client of the PeerServer, as an attacker would write one: registers any id, sends any message.
import { WebSocket } from 'ws';

/** What GET /api/config says about signalling. */
export interface SignallingConfig {
  coordinatorPeerId: string;
  coordinatorKey: string;
  peer: { path: string; key: string };
}

export async function fetchSignallingConfig(baseUrl: string): Promise<SignallingConfig> {
  const res = await fetch(new URL('api/config', baseUrl));
  if (!res.ok) throw new Error(`config: HTTP ${res.status}`);
  return (await res.json()) as SignallingConfig;
}

/** How a registration ended: the PeerServer's OPEN, its refusal (ERROR or ID-TAKEN), or a refused upgrade. */
export type Registration =
  | { outcome: 'open'; client: SignallingClient }
  | { outcome: 'refused'; reason: string };

export class SignallingClient {
  /** Every message the PeerServer relayed to this client, parsed. */
  readonly received: unknown[] = [];

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      try {
        this.received.push(JSON.parse(String(data)));
      } catch {
        this.received.push(String(data));
      }
    });
  }

  /**
   * Opens a socket to the PeerServer at `baseUrl` as peer `id`, with this `token`. `query` replaces the query
   * string when a test plays a client that writes its own (duplicate parameters, odd encodings).
   */
  static register(baseUrl: string, config: SignallingConfig, id: string, token: string, query?: string): Promise<Registration> {
    const url = new URL(baseUrl);
    const path = `${config.peer.path.replace(/\/$/, '')}/peerjs`;
    const search = query ?? new URLSearchParams({ key: config.peer.key, id, token }).toString();
    const socket = new WebSocket(`ws://${url.host}${path}?${search}`);
    return new Promise((resolve) => {
      const done = (registration: Registration) => {
        socket.removeAllListeners('message');
        resolve(registration);
      };
      socket.on('error', () => {});
      socket.once('unexpected-response', (_req, res) => {
        done({ outcome: 'refused', reason: `HTTP ${res.statusCode}` });
        socket.terminate();
      });
      socket.once('close', () => done({ outcome: 'refused', reason: 'closed' }));
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type?: string; payload?: { msg?: string } };
        if (message.type === 'OPEN') {
          socket.removeAllListeners('close');
          done({ outcome: 'open', client: new SignallingClient(socket) });
        } else {
          done({ outcome: 'refused', reason: `${message.type}: ${message.payload?.msg ?? ''}` });
        }
      });
    });
  }

  /** Sends one message as JSON, or a string as it is. */
  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.socket.close();
  }
}
