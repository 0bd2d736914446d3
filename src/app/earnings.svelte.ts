// The wallet as the views see it: key, balance, credits pending an audit, receipts by day and their verdicts, the coordinator keys it trusts,
// export and import.
import type { Receipt } from '../protocol/messages.ts';
import { toHex } from '../protocol/receipt.ts';
import { earningsByDay, type DayEarnings } from '../wallet/history.ts';
import type { PendingTotal } from '../wallet/pending.ts';
import { balanceOf, fetchCoordinatorKey, fetchFleet, type Balance, type CheckedReceipt, type TrustedCoordinator } from '../wallet/trust.ts';
import { Wallet, type ImportOutcome } from '../wallet/wallet.ts';
import { MAX_WALLET_FILE_BYTES, parseWalletFile } from '../wallet/wallet-file.ts';
import { settings } from './settings.svelte.ts';

class EarningsState {
  walletKey = $state('');
  balance = $state<Balance | null>(null);
  /** Credits held pending an audit: shown apart, never in the balance. */
  pending = $state<PendingTotal>({ units: 0, microCredits: 0n });
  /** Receipts counted in the balance, oldest first. */
  receipts = $state<Receipt[]>([]);
  checks = $state<CheckedReceipt[] | null>(null);
  checking = $state(false);
  /** Coordinator keys the wallet trusts, each with the coordinator it was pinned from. */
  trusted = $state<TrustedCoordinator[]>([]);
  /** Why a coordinator's key could not be pinned, by the coordinator's address. */
  pinErrors = $state<Record<string, string>>({});
  /** Coordinators learnt from the fleets of the person's coordinators: mined with after them, receipts trusted. */
  fleetUrls = $state<string[]>([]);
  byDay = $derived<DayEarnings[]>(earningsByDay(this.receipts));
  private opened: Wallet | undefined;
  /** Keys of unverified receipts that the person's coordinators were already asked about on this page. */
  private readonly askedAbout = new Set<string>();

  get wallet(): Wallet | undefined {
    return this.opened;
  }

  async load(): Promise<Wallet> {
    this.opened ??= await Wallet.open();
    this.walletKey = this.opened.publicKeyHex;
    await this.refresh();
    // Not awaited: an unreachable coordinator must not hold up the page; each failure is kept in pinErrors and shown.
    void this.pin(settings.value.coordinators);
    return this.opened;
  }

  /**
   * Pins the receipt-signing key of each coordinator the person added, asked of the coordinator at its own address,
   * then recounts. Never rejects: a coordinator that cannot tell its key gets its reason in pinErrors.
   */
  async pin(urls: readonly string[]): Promise<void> {
    const wallet = this.opened;
    if (!wallet) return;
    const learnt = new Set<string>();
    const outcomes = await Promise.all(
      urls.map(async (url) => {
        try {
          const key = await fetchCoordinatorKey(url);
          await wallet.trustCoordinator(url, key);
          // The fleet's other coordinators: the coordinator the person added vouches for them with a signed list.
          for (const member of await fetchFleet(url, key, Date.now())) {
            await wallet.trustCoordinator(member.url, member.key);
            learnt.add(member.url);
          }
          return [url, undefined] as const;
        } catch (err) {
          return [url, (err as Error).message] as const;
        }
      }),
    );
    if (learnt.size > 0) this.fleetUrls = [...new Set([...this.fleetUrls, ...learnt])];
    const errors = { ...this.pinErrors };
    for (const [url, error] of outcomes) {
      if (error === undefined) delete errors[url];
      else errors[url] = error;
    }
    this.pinErrors = errors;
    await this.refresh();
  }

  /** Re-reads the stored receipts (each one re-verified) and derives the balance from those under trusted keys. */
  async refresh(): Promise<void> {
    const wallet = this.opened;
    if (!wallet) return;
    const checks = await wallet.checkAll();
    this.trusted = await wallet.trustedCoordinators();
    this.receipts = checks.flatMap((c) => (c.status === 'counted' && c.receipt ? [c.receipt] : []));
    this.balance = balanceOf(checks);
    this.pending = await wallet.pending();
    if (this.checks) this.checks = checks;
    // A receipt under a key no pin vouches for may come from one of the person's coordinators whose key is not pinned
    // yet (it was unreachable at load, or has a new key): ask them once per such key, not on every refresh.
    const unasked = checks.flatMap((c) => (c.status === 'unverified' && c.receipt ? [toHex(c.receipt.coordinatorKey)] : [])).filter((k) => !this.askedAbout.has(k));
    if (unasked.length > 0) {
      for (const key of unasked) this.askedAbout.add(key);
      await this.pin(settings.value.coordinators);
    }
  }

  /** Verifies every stored receipt again and keeps each verdict for the view. */
  async checkAll(): Promise<void> {
    const wallet = this.opened;
    if (!wallet) return;
    this.checking = true;
    try {
      this.checks = await wallet.checkAll();
    } finally {
      this.checking = false;
    }
  }

  async exportJson(): Promise<string> {
    const wallet = this.opened;
    if (!wallet) throw new Error('the wallet is not open yet');
    return JSON.stringify(await wallet.exportFile(), null, 1);
  }

  async importFile(file: File): Promise<ImportOutcome> {
    const wallet = this.opened;
    if (!wallet) throw new Error('the wallet is not open yet');
    if (file.size > MAX_WALLET_FILE_BYTES) throw new Error(`the file is ${file.size} bytes, larger than any wallet`);
    const parsed = parseWalletFile(await file.text());
    if (!parsed.ok) throw new Error(parsed.error);
    const outcome = await wallet.importFile(parsed.file);
    this.walletKey = wallet.publicKeyHex;
    this.checks = null;
    await this.refresh();
    return outcome;
  }
}

export const earnings = new EarningsState();
