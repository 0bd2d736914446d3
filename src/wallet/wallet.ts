// The miner's wallet: an Ed25519 identity made in the browser, and receipts verified before they are kept.
import * as v from 'valibot';
import { Receipt } from '../protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign, toHex, verifyReceipt, verifySignature } from '../protocol/receipt.ts';
import { openWalletDb, type StoredKeyPair, type WalletDb } from './db.ts';
import {
  fromBase64, fromHex, receiptFromJson, receiptToJson, toBase64, WALLET_FILE_FORMAT, WALLET_FILE_VERSION, type WalletFile,
} from './wallet-file.ts';

const IDENTITY = 'miner';

export interface Balance {
  microCredits: bigint;
  ops: bigint;
  receipts: number;
  /** Stored records that failed validation or signature checks: shown, never counted. */
  invalid: number;
}

export interface ImportOutcome {
  /** Receipts that verified and were stored (already stored ones count too). */
  imported: number;
  /** Receipts in the file that failed validation or verification, with the first reason. */
  refused: number;
  firstRefusal?: string;
  /** True when this browser's wallet key was replaced by the file's. */
  keyReplaced: boolean;
}

/** One stored receipt and whether it still checks out. */
export interface CheckedReceipt {
  unitId: string;
  receipt: Receipt | undefined;
  valid: boolean;
  reason?: string;
}

export class Wallet {
  private constructor(private readonly db: WalletDb, private keys: StoredKeyPair) {}

  /** Opens the wallet, making the key pair on first use. */
  static async open(): Promise<Wallet> {
    const db = await openWalletDb();
    const stored = await db.get('keys', IDENTITY);
    if (stored && isKeyPair(stored)) return new Wallet(db, stored);
    const pair = await generateSigningKeys();
    const keys: StoredKeyPair = { publicKey: await exportPublicKey(pair.publicKey), privateKey: pair.privateKey, createdAtMs: Date.now() };
    await db.put('keys', keys, IDENTITY);
    return new Wallet(db, keys);
  }

  get publicKey(): Uint8Array {
    return this.keys.publicKey;
  }

  get publicKeyHex(): string {
    return toHex(this.keys.publicKey);
  }

  /** Signs a coordinator's hello challenge with the wallet key. */
  signChallenge(nonce: Uint8Array, coordinatorKey: Uint8Array): Promise<Uint8Array> {
    return sign(this.keys.privateKey, helloChallengeBytes(nonce, coordinatorKey));
  }

  /** Keeps a receipt only if it is well-formed, for this wallet, and signed by the coordinator it names. */
  async addReceipt(candidate: unknown): Promise<Receipt> {
    const parsed = v.safeParse(Receipt, candidate);
    if (!parsed.success) throw new Error(`receipt refused: ${parsed.issues[0].message}`);
    const receipt = parsed.output;
    if (toHex(receipt.minerKey) !== this.publicKeyHex) throw new Error('receipt refused: it names another wallet');
    if (!(await verifyReceipt(receipt))) throw new Error('receipt refused: its signature does not verify');
    await this.db.put('receipts', receipt, receipt.unitId);
    return receipt;
  }

  /** Every stored receipt that still validates and verifies, oldest first. */
  async receipts(): Promise<{ valid: Receipt[]; invalid: number }> {
    const valid: Receipt[] = [];
    let invalid = 0;
    for (const record of await this.db.getAll('receipts')) {
      const parsed = v.safeParse(Receipt, record);
      if (parsed.success && toHex(parsed.output.minerKey) === this.publicKeyHex && (await verifyReceipt(parsed.output))) {
        valid.push(parsed.output);
      } else {
        invalid++;
      }
    }
    valid.sort((a, b) => Number(a.issuedAtMs - b.issuedAtMs));
    return { valid, invalid };
  }

  /** Every stored record with its verdict, for the verification view. */
  async checkAll(): Promise<CheckedReceipt[]> {
    const out: CheckedReceipt[] = [];
    for (const [index, record] of (await this.db.getAll('receipts')).entries()) {
      const parsed = v.safeParse(Receipt, record);
      if (!parsed.success) {
        out.push({ unitId: `record ${index + 1}`, receipt: undefined, valid: false, reason: parsed.issues[0].message });
        continue;
      }
      const r = parsed.output;
      if (toHex(r.minerKey) !== this.publicKeyHex) out.push({ unitId: r.unitId, receipt: r, valid: false, reason: 'it names another wallet' });
      else if (!(await verifyReceipt(r))) out.push({ unitId: r.unitId, receipt: r, valid: false, reason: 'its signature does not verify' });
      else out.push({ unitId: r.unitId, receipt: r, valid: true });
    }
    return out.sort((a, b) => Number((a.receipt?.issuedAtMs ?? 0n) - (b.receipt?.issuedAtMs ?? 0n)));
  }

  /** The whole wallet, private key included, as a file the person keeps (the key is extractable for this). */
  async exportFile(): Promise<WalletFile> {
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', this.keys.privateKey));
    return {
      format: WALLET_FILE_FORMAT,
      version: WALLET_FILE_VERSION,
      exportedAtMs: Date.now(),
      publicKey: this.publicKeyHex,
      privateKeyPkcs8: toBase64(pkcs8),
      receipts: (await this.receipts()).valid.map(receiptToJson),
    };
  }

  /**
   * Restores a wallet file. The same key: its receipts are merged. Another key: it replaces this browser's key only
   * when this wallet holds no receipts yet, so an import never orphans earnings. Every receipt is verified as if
   * it had just arrived from a coordinator.
   */
  async importFile(file: WalletFile): Promise<ImportOutcome> {
    let keyReplaced = false;
    if (file.publicKey !== this.publicKeyHex) {
      if ((await this.db.count('receipts')) > 0) {
        throw new Error('this browser already has a wallet with receipts: export it first, or import this file in a fresh browser profile');
      }
      const privateKey = await crypto.subtle.importKey('pkcs8', fromBase64(file.privateKeyPkcs8), { name: 'Ed25519' }, true, ['sign']);
      const publicKey = fromHex(file.publicKey);
      const probe = new Uint8Array([101, 114, 103, 111, 110]);
      if (!(await verifySignature(publicKey, await sign(privateKey, probe), probe))) {
        throw new Error('the file\'s private key does not match its public key');
      }
      this.keys = { publicKey, privateKey, createdAtMs: Date.now() };
      await this.db.put('keys', this.keys, IDENTITY);
      keyReplaced = true;
    }
    let imported = 0;
    let refused = 0;
    let firstRefusal: string | undefined;
    for (const json of file.receipts) {
      try {
        await this.addReceipt(receiptFromJson(json));
        imported++;
      } catch (err) {
        refused++;
        firstRefusal ??= (err as Error).message;
      }
    }
    return { imported, refused, firstRefusal, keyReplaced };
  }

  /** The balance is derived from stored receipts, never kept as a number of its own. */
  async balance(): Promise<Balance> {
    const { valid, invalid } = await this.receipts();
    return {
      microCredits: valid.reduce((s, r) => s + r.microCredits, 0n),
      ops: valid.reduce((s, r) => s + r.ops, 0n),
      receipts: valid.length,
      invalid,
    };
  }
}

function isKeyPair(value: unknown): value is StoredKeyPair {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return r.publicKey instanceof Uint8Array && r.publicKey.byteLength === 32 && r.privateKey instanceof CryptoKey;
}

export function formatCredits(microCredits: bigint): string {
  const whole = microCredits / 1_000_000n;
  const frac = (microCredits % 1_000_000n).toString().padStart(6, '0');
  return `${whole}.${frac}`;
}
