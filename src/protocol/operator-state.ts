// The operator page's view of a coordinator (GET /api/operator/state): one schema, used by the coordinator to type
// what it sends and by the page to parse what it gets. Micro-credits and ops travel as decimal strings (bigints).
import * as v from 'valibot';

const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Real = v.pipe(v.number(), v.finite());
const Ms = v.pipe(v.number(), v.integer(), v.minValue(0));
/** A bigint as its decimal digits (a negative sign allowed only where a difference may dip below zero). */
const Decimal = v.pipe(v.string(), v.regex(/^-?\d{1,40}$/, 'expected an integer as decimal digits'));
const Text = v.pipe(v.string(), v.maxLength(512));

export const ReputationView = v.object({
  score: Real,
  accepted: Count,
  rejected: Count,
  bannedUntilMs: Ms,
});

export const ReasonCount = v.object({ reason: Text, count: Count, lastMessage: Text, lastAtMs: Ms });
export type ReasonCount = v.InferOutput<typeof ReasonCount>;

export const OnlineMiner = v.object({
  minerKey: Text,
  sessions: Count,
  adapter: Text,
  /** the engine it mines on, as its hello said: webgpu or wasm */
  engine: Text,
  kinds: v.array(Text),
  connectedAtMs: Ms,
  /** GFLOP/s of verified work over the last minute, as the coordinator counted it (not the miner's claim) */
  gflopsPerSecond: Real,
  /** GFLOP per joule by how the energy was measured; empty when no receipt carried measured energy */
  gflopsPerJoule: v.array(v.object({ source: Text, value: Real })),
  unitsVerified: Count,
  unitsRejected: Count,
  reputation: ReputationView,
});
export type OnlineMiner = v.InferOutput<typeof OnlineMiner>;

export const MinerOffences = v.object({
  minerKey: Text,
  online: v.boolean(),
  rejections: v.array(ReasonCount),
  failedAudits: v.array(ReasonCount),
  forfeitedMicroCredits: Decimal,
  reputation: ReputationView,
});
export type MinerOffences = v.InferOutput<typeof MinerOffences>;

/** One sample of the coordinator's counters, taken every few seconds: the charts' points. */
export const Sample = v.object({
  atMs: Ms,
  unitsVerified: Count,
  unitsRejected: Count,
  minersOnline: Count,
  queueUnits: Count,
  microCreditsIssued: Decimal,
});
export type Sample = v.InferOutput<typeof Sample>;

export const OperatorState = v.object({
  atMs: Ms,
  startedAtMs: Ms,
  sampleEveryMs: Ms,
  kinds: v.array(Text),
  miners: v.array(OnlineMiner),
  connections: Count,
  /** units of open jobs not yet verified, by kind */
  queue: v.array(v.object({ kind: Text, units: Count })),
  verifiedUnitsPerSecond: Real,
  /** since this coordinator started */
  totals: v.object({
    unitsLeased: Count,
    unitsVerified: Count,
    unitsRejected: Count,
    auditsPassed: Count,
    auditsFailed: Count,
  }),
  offences: v.array(MinerOffences),
  credits: v.object({
    /** written to the ledger and final */
    settledMicroCredits: Decimal,
    /** written, held until an audit passes */
    pendingMicroCredits: Decimal,
    /** taken back by failed audits */
    forfeitedMicroCredits: Decimal,
  }),
  /** the ledger's own totals, across restarts */
  ledger: v.object({ units: Count, ops: Decimal, microCredits: Decimal }),
  /** samples newer than the request's `since`, oldest first */
  history: v.array(Sample),
});
export type OperatorState = v.InferOutput<typeof OperatorState>;

/** The state request's query: `since` (ms) asks only for samples taken after it. */
export const OperatorStateQuery = v.object({
  since: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, 'since is a time in milliseconds'), v.transform(Number))),
});
