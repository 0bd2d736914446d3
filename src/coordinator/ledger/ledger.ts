// The ledger interface: the coordinator's one storage boundary for credits, jobs, unit results and reputation, with
// its error type and the factory that opens the configured backend. Every backend passes one conformance suite
// (tests/unit/coordinator/ledger-conformance.ts).

export interface CreditEntry {
  unitId: string;
  jobId: string;
  /** hex of the miner's Ed25519 public key */
  minerKey: string;
  ops: bigint;
  microCredits: bigint;
  gpuSeconds: number;
  createdAtMs: number;
  /** The unit's energy as signed into its receipt; absent is 0 J, 'none'. */
  energy?: CreditEnergy;
  /** The coordinator's own seconds from lease to result. */
  wallSeconds?: number;
  /** The adapter model the miner said it computes on (self-reported). */
  adapter?: string;
  /** The kind its receipt is signed with (the work kind's receiptKind); absent on rows older than this field. */
  receiptKind?: string;
}

/** A credited unit's energy: what its receipt signs, or none with the reason a claim was refused. */
export interface CreditEnergy {
  joules: number;
  /** 'none' or an energy method (src/protocol/energy.ts) */
  joulesSource: string;
  uncertaintyJoules: number;
  aboveIdleJoules: number | null;
  refused: string | null;
}

/** Verified work of one miner by one energy method (including 'none'), for the efficiency table. */
export interface EfficiencyRow {
  minerKey: string;
  /** The adapter model the miner declared; '' when unknown. */
  adapter: string;
  joulesSource: string;
  units: number;
  ops: bigint;
  /** Sum of the units' joules, and of their variances' square root (uncertainties in quadrature). */
  joules: number;
  uncertaintyJoules: number;
  gpuSeconds: number;
  /** The coordinator's lease-to-result seconds, summed over the units that have them. */
  wallSeconds: number;
}

export interface LedgerTotals {
  units: number;
  ops: bigint;
  microCredits: bigint;
}

/** A job as it survives a restart, whatever its kind: its operands live content-addressed beside the ledger. */
export interface StoredJob {
  id: string;
  /** id of the API key that submitted it (never the key itself) */
  owner: string;
  /** the kind's name, as the registry knows it */
  kind: string;
  /** the kind's parameters (JSON) */
  params: unknown;
  /** sha256 hex of each operand, in the kind's order */
  operands: string[];
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

/** A credit held until an audit of its miner passes, with the unit's result (src/coordinator/audits.ts). */
export interface PendingCredit extends CreditEntry {
  result: Uint8Array;
}

/** A row as either backend returns it: columns by name, numbers as numbers, bigints or decimal strings. */
type ColumnRow = Readonly<Record<string, unknown>>;

/** A reputation row (or none: a key never seen) as a Reputation; both backends store the same columns. */
export function reputationFromRow(minerKey: string, row: ColumnRow | undefined): Reputation {
  if (!row) return { minerKey, score: 0, accepted: 0, rejected: 0, bannedUntilMs: 0 };
  return { minerKey, score: Number(row.score), accepted: Number(row.accepted), rejected: Number(row.rejected), bannedUntilMs: Number(row.banned_until_ms) };
}

/** A row of the efficiency query (credits grouped by miner, adapter and energy method), for either backend. */
export function efficiencyFromRow(r: ColumnRow): EfficiencyRow {
  return {
    minerKey: String(r.miner_key),
    adapter: String(r.adapter),
    joulesSource: String(r.joules_source),
    units: Number(r.units),
    ops: BigInt(r.ops as bigint | string),
    joules: Number(r.joules),
    uncertaintyJoules: Number(r.uncertainty),
    gpuSeconds: Number(r.gpu_seconds),
    wallSeconds: Number(r.wall_seconds),
  };
}

/** A credits or pending_credits row (either backend) as a CreditEntry: both tables share these columns. */
export function creditFromRow(r: ColumnRow): CreditEntry {
  return {
    unitId: String(r.unit_id),
    jobId: String(r.job_id),
    minerKey: String(r.miner_key),
    ops: BigInt(r.ops as bigint | string),
    microCredits: BigInt(r.micro_credits as bigint | string),
    gpuSeconds: Number(r.gpu_seconds),
    createdAtMs: Number(r.created_at_ms),
    energy: {
      joules: Number(r.joules),
      joulesSource: String(r.joules_source),
      uncertaintyJoules: Number(r.joules_uncertainty),
      aboveIdleJoules: r.joules_above_idle === null ? null : Number(r.joules_above_idle),
      refused: r.energy_refused === null ? null : String(r.energy_refused),
    },
    wallSeconds: r.wall_seconds === null ? undefined : Number(r.wall_seconds),
    adapter: r.adapter === null ? undefined : String(r.adapter),
    receiptKind: r.receipt_kind === null || r.receipt_kind === undefined ? undefined : String(r.receipt_kind),
  };
}

/** A pending_credits row (either backend) as a PendingCredit. */
export function pendingFromRow(r: ColumnRow): PendingCredit {
  return { ...creditFromRow(r), result: new Uint8Array(r.result as Uint8Array) };
}

/** The energy written for a credit that has none: 0 J, 'none'. */
export const NO_ENERGY: CreditEnergy = { joules: 0, joulesSource: 'none', uncertaintyJoules: 0, aboveIdleJoules: null, refused: null };

/**
 * Which of a miner's pending credits (oldest first) an audit of `audited` that passed settles: that unit, and the
 * others older than the newest `bondUnits` of them. The same rule for every backend, inside its transaction.
 */
export function settledByAudit(pending: readonly PendingCredit[], audited: string, bondUnits: number): PendingCredit[] {
  const others = pending.filter((p) => p.unitId !== audited);
  const released = new Set(others.slice(0, Math.max(0, others.length - bondUnits)));
  return pending.filter((p) => p.unitId === audited || released.has(p));
}

/** Which pending credits: a miner's, or a job's. */
export type PendingOf = { minerKey: string } | { jobId: string };

export interface Ledger {
  /**
   * Records a credit and the unit's verified result in one transaction; false (and nothing written) when
   * the unit was already credited. The result is what lets a job resume after a crash.
   */
  credit(entry: CreditEntry, result: Uint8Array): Promise<boolean>;
  /** The credit of a unit, whoever earned it: what its receipt is signed again from when the first one was lost. */
  creditOf(unitId: string): Promise<CreditEntry | undefined>;
  /** The credits of these units that this miner earned, in one read, in no set order. */
  creditsOf(minerKey: string, unitIds: readonly string[]): Promise<CreditEntry[]>;
  balance(minerKey: string): Promise<bigint>;
  /** Credited work grouped by miner and energy method: the efficiency table's rows. */
  efficiency(): Promise<EfficiencyRow[]>;
  totals(): Promise<LedgerTotals>;

  saveJob(job: StoredJob): Promise<void>;
  finishJob(jobId: string, finishedAtMs: number): Promise<void>;
  /** Forgets a job and its unit results; its credits stay. */
  deleteJob(jobId: string): Promise<void>;
  jobs(): Promise<StoredJob[]>;
  /** unit id -> result bytes and miner of every credited unit of a job that still exists */
  unitResults(jobId: string): Promise<Map<string, { result: Uint8Array; minerKey: string }>>;

  // ---- pending credits (kinds that audit a sample) ----
  /**
   * Holds a credit as pending, with its unit's result; false (and nothing written) when the unit is already credited
   * or pending. Pending credits are not in balance() or totals(): they are not paid until settled.
   */
  hold(entry: CreditEntry, result: Uint8Array): Promise<boolean>;
  /** A miner's or a job's pending credits, oldest first. */
  pendingCredits(of: PendingOf): Promise<PendingCredit[]>;
  /**
   * An audit of this miner's unit `audited` passed: in one transaction its count of audits passed in a row grows by
   * one (to n), and the audited unit and every other pending credit of the miner but its newest bondUnits(n) become
   * credits (with their results, while their jobs exist); those newest stay pending as its bond (audits.ts states the
   * rule). Returns what was settled, oldest first.
   */
  settlePending(minerKey: string, audited: string, bondUnits: (auditsPassed: number) => number): Promise<PendingCredit[]>;
  /**
   * An audit of this miner failed: in one transaction every pending credit of it is recorded as forfeited (never
   * paid, its result discarded), and its count of audits passed in a row goes back to 0. Returns what was forfeited.
   */
  forfeitPending(minerKey: string, reason: string, nowMs: number): Promise<PendingCredit[]>;
  /** Micro-credits this miner forfeited, in all. */
  forfeited(minerKey: string): Promise<bigint>;
  /** Which of these units' credits this miner forfeited (each once, whatever it pays), in no set order. */
  forfeitedUnits(minerKey: string, unitIds: readonly string[]): Promise<{ unitId: string; microCredits: bigint }[]>;
  /** Audits this miner passed since its last failed one (0 for a key never audited). */
  auditsPassed(minerKey: string): Promise<number>;

  /** A fresh record (score 0) for a key never seen. */
  reputation(minerKey: string): Promise<Reputation>;
  /** Reads, updates and writes a miner's record as one transaction, so concurrent verdicts are never lost. */
  updateReputation(minerKey: string, update: (current: Reputation) => Reputation): Promise<Reputation>;

  close(): Promise<void>;
}

export type LedgerErrorCode = 'storage-busy' | 'storage-full' | 'storage-failed';

/** A storage failure with a stable code and a sentence: the caller refuses the request, nothing is half-written. */
export class LedgerError extends Error {
  constructor(readonly code: LedgerErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
  }
}

/** Where the ledger lives: the embedded SQLite file by default; a PostgreSQL URL (DATABASE_URL) for a fleet. */
export type LedgerConfig =
  | { backend: 'sqlite'; path: string; busyTimeoutMs?: number; maxPages?: number }
  | { backend: 'postgres'; url: string };

/** Opens the configured ledger, its schema migrated to the newest version. */
export async function openLedger(config: LedgerConfig): Promise<Ledger> {
  if (config.backend === 'postgres') {
    const { PostgresLedger } = await import('./postgres.ts');
    return PostgresLedger.open(config.url);
  }
  const { SqliteLedger } = await import('./sqlite.ts');
  return new SqliteLedger(config.path, config);
}
