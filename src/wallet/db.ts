// The wallet's IndexedDB: the miner's key pair and the receipts it earned.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

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
}

export type WalletDb = IDBPDatabase<WalletSchema>;

export function openWalletDb(): Promise<WalletDb> {
  return openDB<WalletSchema>(WALLET_DB, 1, {
    upgrade(db) {
      db.createObjectStore('keys');
      db.createObjectStore('receipts');
    },
  });
}
