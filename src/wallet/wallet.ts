// The miner's wallet: an Ed25519 identity made in the browser, receipts verified before they are kept, and the
// coordinator keys it trusts: only receipts under those count in the balance.
import type { Receipt } from '../protocol/messages.ts';
import { publicKeyProblem } from '../protocol/ed25519.ts';
import { exportPublicKey, generateSigningKeys, helloChallengeBytes, sign, toHex, verifySignature } from '../protocol/receipt.ts';
import * as v from 'valibot';
import { openWalletDb, type StoredKeyPair, type WalletDb } from './db.ts';
import { PendingCredit, pendingCredits, pendingTotal, type PendingTotal } from './pending.ts';
import { balanceOf, checkReceipt, type Balance, type CheckedReceipt, type TrustedCoordinator } from './trust.ts';
import {
  fromBase64, fromHex, receiptFromJson, receiptToJson, toBase64, WALLET_FILE_FORMAT, WALLET_FILE_VERSION, type WalletFile,
} from './wallet-file.ts';

const IDENTITY = 'miner';

export interface ImportOutcome {
  /** Receipts that verified and were stored (already stored ones count too), counted or not. */
  imported: number;
  /** Of those, receipts signed by coordinator keys this wallet does not trust: kept apart, not counted. */
  unverified: number;
  /** The distinct keys (hex) that signed them. */
  unverifiedKeys: string[];
  /** Receipts in the file that failed validation or verification, with the first reason. */
  refused: number;
  firstRefusal?: string;
  /** True when this browser's wallet key was replaced by the file's. */
  keyReplaced: boolean;
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

  /**
   * Keeps a receipt only if it is well-formed, for this wallet, and signed (strictly) by the coordinator key it names.
   * One signed under a key the wallet does not trust is kept too, but counts only once that key is trusted.
   */
  async addReceipt(candidate: unknown): Promise<Receipt> {
    return (await this.store(candidate)).receipt;
  }

  private async store(candidate: unknown): Promise<CheckedReceipt & { receipt: Receipt }> {
    const checked = await checkReceipt(candidate, this.publicKeyHex, await this.trusted());
    if (checked.status === 'refused' || !checked.receipt) throw new Error(`receipt refused: ${checked.reason ?? 'it is not a receipt'}`);
    await this.db.put('receipts', checked.receipt, checked.receipt.unitId);
    // Settled: no longer pending.
    await this.db.delete('pending', checked.receipt.unitId);
    return { ...checked, receipt: checked.receipt };
  }

  /** Keeps a coordinator's notice that a unit's credit is pending an audit: shown apart, never in the balance. */
  async addPending(notice: Omit<PendingCredit, 'receivedAtMs' | 'coordinatorKey'>, coordinatorKey: string): Promise<void> {
    const record = v.parse(PendingCredit, { ...notice, coordinatorKey, receivedAtMs: Date.now() });
    // A receipt that came first (an audit settled it at once) wins: the unit is no longer pending.
    if (await this.db.get('receipts', record.unitId)) return;
    await this.db.put('pending', record, record.unitId);
  }

  /** A failed audit forfeited these units' pending credits: they are forgotten. */
  async forfeit(unitIds: readonly string[]): Promise<void> {
    for (const unitId of unitIds) await this.db.delete('pending', unitId);
  }

  /** Each credit pending an audit, oldest first (records that are not well-formed are left out). */
  async pendingCredits(): Promise<PendingCredit[]> {
    return pendingCredits(await this.db.getAll('pending'));
  }

  /** The credits pending an audit, as stored (re-validated by pendingTotal). */
  async pending(): Promise<PendingTotal> {
    return pendingTotal(await this.db.getAll('pending'));
  }

  /** Trusts a coordinator's receipt-signing key, learnt from the coordinator the person added at `url`. */
  async trustCoordinator(url: string, key: string): Promise<TrustedCoordinator> {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`${url} gave a coordinator key that is not 32 bytes in hex`);
    const problem = publicKeyProblem(fromHex(key));
    if (problem) throw new Error(`${url} gave a coordinator key that cannot be trusted: ${problem}`);
    // The first coordinator that vouched for a key stays its name: pinning is never silently re-pointed.
    const known = await this.db.get('coordinators', key);
    if (known) return known;
    const pinned: TrustedCoordinator = { key, url, pinnedAtMs: Date.now() };
    await this.db.put('coordinators', pinned, key);
    return pinned;
  }

  /** The coordinator keys this wallet trusts, oldest pin first. */
  async trustedCoordinators(): Promise<TrustedCoordinator[]> {
    return (await this.db.getAll('coordinators')).sort((a, b) => a.pinnedAtMs - b.pinnedAtMs);
  }

  private async trusted(): Promise<Map<string, TrustedCoordinator>> {
    return new Map((await this.trustedCoordinators()).map((c) => [c.key, c]));
  }

  /** Every stored record with its verdict (each re-verified), oldest first: the balance and the views derive from it. */
  async checkAll(): Promise<CheckedReceipt[]> {
    const trusted = await this.trusted();
    const out: CheckedReceipt[] = [];
    for (const [index, record] of (await this.db.getAll('receipts')).entries()) {
      out.push(await checkReceipt(record, this.publicKeyHex, trusted, `record ${index + 1}`));
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
      // Unverified receipts go too: they are the person's, and count wherever their coordinator is trusted.
      receipts: (await this.checkAll()).flatMap((c) => (c.status !== 'refused' && c.receipt ? [receiptToJson(c.receipt)] : [])),
    };
  }

  /**
   * Restores a wallet file. The same key: its receipts are merged. Another key: it replaces this browser's key only
   * when this wallet holds no receipts yet, so an import never orphans earnings. Every receipt is verified as if
   * it had just arrived from a coordinator; the file says nothing about which coordinators to trust (a forger would
   * write its own key there), so receipts under keys this wallet does not trust are kept apart, not counted.
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
    const unverifiedKeys = new Map<string, number>();
    for (const json of file.receipts) {
      try {
        const stored = await this.store(receiptFromJson(json));
        imported++;
        if (stored.status === 'unverified') {
          const key = toHex(stored.receipt.coordinatorKey);
          unverifiedKeys.set(key, (unverifiedKeys.get(key) ?? 0) + 1);
        }
      } catch (err) {
        refused++;
        firstRefusal ??= (err as Error).message;
      }
    }
    const unverified = [...unverifiedKeys.values()].reduce((s, n) => s + n, 0);
    return { imported, unverified, unverifiedKeys: [...unverifiedKeys.keys()], refused, firstRefusal, keyReplaced };
  }

  /** The balance is derived from stored receipts under trusted keys, never kept as a number of its own. */
  async balance(): Promise<Balance> {
    return balanceOf(await this.checkAll());
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
