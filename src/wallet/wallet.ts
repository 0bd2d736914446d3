// The miner's wallet: an Ed25519 identity made in the browser, and receipts verified before they are kept.
import * as v from 'valibot';
import { Receipt } from '../protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign, toHex, verifyReceipt } from '../protocol/receipt.ts';
import { openWalletDb, type StoredKeyPair, type WalletDb } from './db.ts';

const IDENTITY = 'miner';

export interface Balance {
  microCredits: bigint;
  ops: bigint;
  receipts: number;
  /** Stored records that failed validation or signature checks: shown, never counted. */
  invalid: number;
}

export class Wallet {
  private constructor(private readonly db: WalletDb, private readonly keys: StoredKeyPair) {}

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
