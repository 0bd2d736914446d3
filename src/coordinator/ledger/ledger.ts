// The ledger interface: the coordinator's one storage boundary for credits, jobs, unit results and reputation.
import type { Precision } from '../../protocol/messages.ts';

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

/** A job as it survives a restart: its operands live content-addressed beside the ledger. */
export interface StoredJob {
  id: string;
  /** id of the API key that submitted it (never the key itself) */
  owner: string;
  m: number;
  n: number;
  k: number;
  /** f32, or f16: operands stored and leased as halves, paid as f16 work */
  precision: Precision;
  /** sha256 hex of A then B, little-endian: f32 values, or halves for an f16 job */
  operandsSha256: string;
  createdAtMs: number;
  finishedAtMs: number | null;
}

/** A miner's record, per wallet key. */
export interface Reputation {
  minerKey: string;
  score: number;
  accepted: number;
  rejected: number;
  /** 0 when not banned */
  bannedUntilMs: number;
}

export interface Ledger {
  /**
   * Records a credit and the unit's verified result in one transaction; false (and nothing written) when
   * the unit was already credited. The result is what lets a job resume after a crash.
   */
  credit(entry: CreditEntry, result: Uint8Array): Promise<boolean>;
  balance(minerKey: string): Promise<bigint>;
  totals(): Promise<LedgerTotals>;

  saveJob(job: StoredJob): Promise<void>;
  finishJob(jobId: string, finishedAtMs: number): Promise<void>;
  /** Forgets a job and its unit results; its credits stay. */
  deleteJob(jobId: string): Promise<void>;
  jobs(): Promise<StoredJob[]>;
  /** unit id -> result bytes and miner of every credited unit of a job that still exists */
  unitResults(jobId: string): Promise<Map<string, { result: Uint8Array; minerKey: string }>>;

  /** A fresh record (score 0) for a key never seen. */
  reputation(minerKey: string): Promise<Reputation>;
  /** Reads, updates and writes a miner's record as one transaction, so concurrent verdicts are never lost. */
  updateReputation(minerKey: string, update: (current: Reputation) => Reputation): Promise<Reputation>;

  close(): Promise<void>;
}
