// The wallet's IndexedDB: the miner's key pair, the receipts it earned, and the coordinator keys it trusts.
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
}

export type WalletDb = IDBPDatabase<WalletSchema>;

export function openWalletDb(): Promise<WalletDb> {
  return openDB<WalletSchema>(WALLET_DB, 2, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('keys');
        db.createObjectStore('receipts');
      }
      // Version 2: no key was trusted before; the page pins its coordinators' keys on its next load.
      if (oldVersion < 2) db.createObjectStore('coordinators');
    },
  });
}
