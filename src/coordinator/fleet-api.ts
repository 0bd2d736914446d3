// GET /api/fleet: the fleet's live coordinators (their receipt keys and URLs), signed by the fleet key, for miners to
// fail over to and for wallets to trust receipts from any of them.
import type { Express } from 'express';
import { signFleetList } from '../protocol/fleet-list.ts';
import { LedgerError } from './ledger/ledger.ts';
import { log } from './log.ts';
import type { FleetMember, PgQueue } from './pg-queue.ts';
import type { SigningKey } from './signing-key.ts';

export function mountFleetApi(app: Express, fleet: PgQueue, fleetKey: SigningKey, isFleetOrigin: (origin: string) => boolean): void {
  app.get('/api/fleet', (req, res) => {
    // The miner pages of every coordinator of the fleet read it (as /api/config: FLEET_READS in http.ts).
    const origin = req.headers.origin;
    if (origin !== undefined && isFleetOrigin(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
    }
    fleet.liveMembers(Date.now())
      .then((members: FleetMember[]) => signFleetList(fleetKey.privateKey, fleetKey.publicKey, members.map((m) => ({ key: m.signingKey, url: m.url })), Date.now()))
      .then(
        (list) => res.json(list),
        (err: unknown) => {
          const code = err instanceof LedgerError ? err.code : 'internal';
          log('storage-error', { event: 'fleet-list', code, message: String(err) });
          res.status(503).json({ error: { code, message: err instanceof LedgerError ? err.message : 'the fleet list is unavailable' } });
        },
      );
  });
}
