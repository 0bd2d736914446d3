// The ledger interface: where verified credit is recorded, exactly once per unit.

export interface CreditEntry {
  unitId: string;
  jobId: string;
  /** hex of the miner's Ed25519 public key */
  minerKey: string;
  ops: bigint;
  microCredits: bigint;
  gpuSeconds: number;
  createdAtMs: number;
}

export interface LedgerTotals {
  units: number;
  ops: bigint;
  microCredits: bigint;
}

export interface Ledger {
  /** Records a credit; false (and nothing written) when the unit was already credited. */
  credit(entry: CreditEntry): Promise<boolean>;
  balance(minerKey: string): Promise<bigint>;
  totals(): Promise<LedgerTotals>;
  close(): Promise<void>;
}
