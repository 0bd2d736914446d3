// The wallet as the views see it: key, balance, receipts by day and their verdicts, export and import.
import type { Receipt } from '../protocol/messages.ts';
import { earningsByDay, type DayEarnings } from '../wallet/history.ts';
import { Wallet, type Balance, type CheckedReceipt, type ImportOutcome } from '../wallet/wallet.ts';
import { MAX_WALLET_FILE_BYTES, parseWalletFile } from '../wallet/wallet-file.ts';

class EarningsState {
  walletKey = $state('');
  balance = $state<Balance | null>(null);
  receipts = $state<Receipt[]>([]);
  checks = $state<CheckedReceipt[] | null>(null);
  checking = $state(false);
  byDay = $derived<DayEarnings[]>(earningsByDay(this.receipts));
  private opened: Wallet | undefined;

  get wallet(): Wallet | undefined {
    return this.opened;
  }

  async load(): Promise<Wallet> {
    this.opened ??= await Wallet.open();
    this.walletKey = this.opened.publicKeyHex;
    await this.refresh();
    return this.opened;
  }

  /** Re-reads the stored receipts (each one re-verified) and derives the balance from them. */
  async refresh(): Promise<void> {
    const wallet = this.opened;
    if (!wallet) return;
    const { valid, invalid } = await wallet.receipts();
    this.receipts = valid;
    this.balance = {
      microCredits: valid.reduce((s, r) => s + r.microCredits, 0n),
      ops: valid.reduce((s, r) => s + r.ops, 0n),
      receipts: valid.length,
      invalid,
    };
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
