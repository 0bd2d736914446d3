// The wallet's IndexedDB: the miner's key pair, the receipts it earned, the coordinator keys it trusts, and the
// credits pending an audit.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { TrustedCoordinator } from './trust.ts';

export const WALLET_DB = 'ergon-wallet';

export interface StoredKeyPair {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
  createdAtMs: number;
}

interface WalletSchema extends DBSchema {
  keys: { key: string; value: StoredKeyPair };
  /** Receipts as received, keyed by unit id; re-validated whenever read. */
  receipts: { key: string; value: unknown };
  /** Coordinator keys pinned from coordinators the person added, keyed by the key in hex. */
  coordinators: { key: string; value: TrustedCoordinator };
  /** Credits held pending an audit (src/wallet/pending.ts), keyed by unit id; never counted in the balance. */
  pending: { key: string; value: unknown };
}

export type WalletDb = IDBPDatabase<WalletSchema>;

export function openWalletDb(): Promise<WalletDb> {
  return openDB<WalletSchema>(WALLET_DB, 3, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('keys');
        db.createObjectStore('receipts');
      }
      // Version 2: no key was trusted before; the page pins its coordinators' keys on its next load.
      if (oldVersion < 2) db.createObjectStore('coordinators');
      // Version 3: credits pending an audit, apart from receipts.
      if (oldVersion < 3) db.createObjectStore('pending');
    },
  });
}
