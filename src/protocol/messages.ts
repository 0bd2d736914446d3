// Every message between miner and coordinator: one schema each, the types inferred from them.
import * as v from 'valibot';
import { PROTOCOL_VERSION } from './version.ts';
import { BYTES_PER_ELEMENT, Bytes, Dtype, MAX_TENSOR_BYTES, Tensor, TensorShape, elementCount } from './tensor.ts';
import { ENERGY_METHODS, UnitEnergy } from './energy.ts';

const bytesOfLength = (n: number) => v.pipe(Bytes, v.length(n, `expected ${n} bytes`));
export const PublicKey = bytesOfLength(32);
export const Signature = bytesOfLength(64);

export const Id = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.:-]{1,96}$/, 'ids are 1-96 characters of [A-Za-z0-9_.:-]'));
/** The longest text a message field carries, a lease's text parameters included. */
export const MAX_SHORT_TEXT_CHARS = 256;
const ShortText = v.pipe(v.string(), v.maxLength(MAX_SHORT_TEXT_CHARS));
const Milliseconds = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(3_600_000));
const Seconds = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(86_400));
/** A non-negative 64-bit integer; msgpack may carry small ones as plain numbers. */
export const U64 = v.pipe(
  v.union([v.bigint(), v.pipe(v.number(), v.safeInteger())]),
  v.transform((x) => BigInt(x)),
  v.check((x) => x >= 0n && x < 1n << 64n, 'expected an unsigned 64-bit integer'),
);

const Version = v.literal(PROTOCOL_VERSION);

export const AdapterInfo = v.object({
  vendor: ShortText,
  architecture: ShortText,
  device: ShortText,
  description: ShortText,
  isFallbackAdapter: v.boolean(),
});
export type AdapterInfo = v.InferOutput<typeof AdapterInfo>;

/** How a receipt's joules were obtained: 'none', or an energy method (energy.ts); 'probe' is kept for old receipts. */
export const JoulesSource = v.picklist(['none', 'probe', ...ENERGY_METHODS]);
export type JoulesSource = v.InferOutput<typeof JoulesSource>;

/** A kind of work's name, as the registry in src/work/ knows it; the protocol itself names none. */
export const KindName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,31}$/, 'kind names are 1-32 characters of [a-z0-9-]'));

/** A number format a miner computes in (its kinds say which they use), e.g. f32, or f16 operands summed in f32. */
export const Precision = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9]{0,15}$/, 'precisions are 1-16 characters of [a-z0-9]'));
export type Precision = v.InferOutput<typeof Precision>;

/** An adapter feature a unit may need (WebGPU feature names, e.g. shader-f16). */
const Feature = v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,64}$/, 'features are 1-64 characters of [a-z0-9-]'));

/**
 * The kind of work a receipt pays for, as the kind names it: its name, or a variant of it paid at its own rate
 * (e.g. an f16 variant), so that receipts signed before a variant existed keep their canonical bytes.
 */
export const ReceiptKind = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,47}$/, 'receipt kinds are 1-48 characters of [a-z0-9-]'));
export type ReceiptKind = v.InferOutput<typeof ReceiptKind>;

/** The signed part of a receipt; its canonical bytes are defined in receipt.ts. */
export const ReceiptBody = v.object({
  unitId: Id,
  jobId: Id,
  kind: ReceiptKind,
  minerKey: PublicKey,
  coordinatorKey: PublicKey,
  ops: U64,
  microCredits: U64,
  gpuSeconds: Seconds,
  joules: v.pipe(v.number(), v.finite(), v.minValue(0)),
  joulesSource: JoulesSource,
  issuedAtMs: U64,
});
export type ReceiptBody = v.InferOutput<typeof ReceiptBody>;

export const Receipt = v.object({ ...ReceiptBody.entries, signature: Signature });
export type Receipt = v.InferOutput<typeof Receipt>;

// ---- coordinator -> miner ----

export const ChallengeMessage = v.object({
  type: v.literal('challenge'),
  v: Version,
  coordinatorKey: PublicKey,
  nonce: bytesOfLength(32),
  heartbeatMs: Milliseconds,
  /**
   * Ed25519 signature by coordinatorKey over challengeBytes (receipt.ts): the key's holder ends this data channel.
   * A coordinator always sends it; it is optional here so that a miner refusing a challenge without one can say so.
   */
  signature: v.optional(Signature),
});
export type ChallengeMessage = v.InferOutput<typeof ChallengeMessage>;

/** A sha256 in lower-case hex: how operands are named. */
export const Sha256Hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a sha256 in lower-case hex'));

/** The header a miner sends its session's operand token in, to fetch the operands its leases name. */
export const OPERAND_TOKEN_HEADER = 'x-ergon-operand-token';

/** The secret a session sends as OPERAND_TOKEN_HEADER to fetch the operands its leases name. */
export const OperandToken = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{22,128}$/, 'operand tokens are 22-128 characters of [A-Za-z0-9_-]'));

export const WelcomeMessage = v.object({
  type: v.literal('welcome'),
  v: Version,
  /** Present where the coordinator serves operands by hash (GET /api/operands/SHA256): this session's key to them. */
  operandToken: v.optional(OperandToken),
});

/** Names of a lease's operands and parameters: short identifiers, as a kind's payload schema uses them. */
const FieldName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,31}$/, 'field names are 1-32 characters of [A-Za-z0-9_]'));
const ParamValue = v.union([v.pipe(v.number(), v.finite()), ShortText, v.boolean()]);

/**
 * An operand named by the sha256 of its exact bytes instead of carried: the miner fetches it over HTTP from the
 * coordinator's origin (GET /api/operands/SHA256) unless it holds it already, and checks the hash before use.
 */
export const OperandRef = v.pipe(
  v.object({
    sha256: Sha256Hex,
    bytes: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_TENSOR_BYTES)),
    dtype: Dtype,
    shape: TensorShape,
  }),
  v.check((r) => r.bytes === elementCount(r.shape) * BYTES_PER_ELEMENT[r.dtype], 'operand size does not match its shape'),
);
export type OperandRef = v.InferOutput<typeof OperandRef>;

/**
 * What a unit needs besides its kind: operand tensors by name (carried, or named by hash in `refs`) and scalar
 * parameters; the kind's miner side reads them.
 */
export const LeasePayload = v.object({
  // 32: a span of MAX_SPAN_PARTS tiles names each tile's A block and their B.
  operands: v.pipe(v.record(FieldName, Tensor), v.check((r) => Object.keys(r).length <= 32, 'at most 32 operands')),
  refs: v.optional(v.pipe(v.record(FieldName, OperandRef), v.check((r) => Object.keys(r).length <= 32, 'at most 32 operand references')), {}),
  params: v.pipe(v.record(FieldName, ParamValue), v.check((r) => Object.keys(r).length <= 32, 'at most 32 parameters')),
});
export type LeasePayload = v.InferOutput<typeof LeasePayload>;

/** The most leases a coordinator may offer a miner to hold at once: what a miner keeps in hand is bounded by it. */
export const MAX_LEASES_IN_FLIGHT = 64;
/** The most units one lease may join (a span): src/coordinator/lease-sizing.ts leases at most this many. */
export const MAX_SPAN_PARTS = 16;

/**
 * A span's units: the lease is computed and returned as one unit, and each of these is credited with its own receipt.
 * The result echoes them, so that a coordinator that lost the lease can still sign their receipts again.
 */
const SpanParts = v.pipe(v.array(Id), v.minLength(2), v.maxLength(MAX_SPAN_PARTS), v.check((ids) => new Set(ids).size === ids.length, 'span parts must differ'));

export const LeaseMessage = v.object({
  type: v.literal('lease'),
  v: Version,
  leaseId: Id,
  unitId: Id,
  kind: KindName,
  /** The unit's exact useful operations: what it pays for, and what the miner's speed figures count. */
  ops: U64,
  /** Time the miner has, from receipt of this message, to return a result. */
  deadlineMs: Milliseconds,
  /**
   * How many leases the coordinator lets this miner hold at once now (src/coordinator/lease-sizing.ts): sized to its
   * measured speed, so that a miner asking for that many keeps its GPU fed. Absent from older coordinators.
   */
  inFlight: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_LEASES_IN_FLIGHT))),
  parts: v.optional(SpanParts),
  ...LeasePayload.entries,
});

export const NoWorkMessage = v.object({
  type: v.literal('no-work'),
  v: Version,
  retryAfterMs: Milliseconds,
  /** Why not, when it is not an empty queue: the miner holds all the leases it may, or asked too fast. */
  reason: v.optional(ShortText),
});

export const ReceiptMessage = v.object({ type: v.literal('receipt'), v: Version, receipt: Receipt });

export const RejectedMessage = v.object({
  type: v.literal('rejected'),
  v: Version,
  unitId: Id,
  code: ShortText,
  message: ShortText,
});

/**
 * A result that passed the cheap checks of a kind that audits a sample: its credit is held, not paid, until an audit
 * of this miner passes (then a receipt for each pending unit) or fails (then a forfeited notice).
 */
export const PendingMessage = v.object({
  type: v.literal('pending'),
  v: Version,
  unitId: Id,
  jobId: Id,
  kind: ReceiptKind,
  ops: U64,
  /** what the unit pays once settled */
  microCredits: U64,
});

/** The most unit ids one forfeited notice names; a miner holding more pending units gets several notices. */
export const MAX_FORFEITED_UNITS = 1_000;

/** An audit of this miner failed: these pending units' credits are forfeited, never paid. */
export const ForfeitedMessage = v.object({
  type: v.literal('forfeited'),
  v: Version,
  unitIds: v.pipe(v.array(Id), v.maxLength(MAX_FORFEITED_UNITS)),
  /** the pending micro-credits these units would have paid */
  microCredits: U64,
  reason: ShortText,
});

// ---- either way ----

export const ErrorMessage = v.object({ type: v.literal('error'), v: Version, code: ShortText, message: ShortText });
export const PingMessage = v.object({ type: v.literal('ping'), v: Version, nonce: v.pipe(v.number(), v.safeInteger()) });
export const PongMessage = v.object({ type: v.literal('pong'), v: Version, nonce: v.pipe(v.number(), v.safeInteger()) });

// ---- miner -> coordinator ----

/** What computes a unit: WebGPU, or WebAssembly on the CPU. */
export const Engine = v.picklist(['webgpu', 'wasm']);
export type Engine = v.InferOutput<typeof Engine>;

export const HelloMessage = v.object({
  type: v.literal('hello'),
  v: Version,
  minerKey: PublicKey,
  /** Ed25519 signature by minerKey over helloChallengeBytes(nonce, coordinatorKey). */
  signature: Signature,
  adapter: AdapterInfo,
  /** What computes: the GPU (WebGPU), or the CPU fallback (onnxruntime-web WASM) of a browser without WebGPU. */
  backend: Engine,
  /** The kinds of work it runs: it is leased units of these only. */
  kinds: v.pipe(v.array(KindName), v.minLength(1), v.maxLength(8)),
  /** Precisions it runs; f16 only with WebGPU's shader-f16. A miner that says nothing runs f32 only. */
  precisions: v.optional(v.pipe(v.array(Precision), v.minLength(1), v.maxLength(8)), ['f32']),
  /** Adapter features it has that units may need (e.g. shader-f16). */
  features: v.optional(v.pipe(v.array(Feature), v.maxLength(64)), []),
});

export const WorkRequestMessage = v.object({ type: v.literal('work-request'), v: Version });

export const ResultMessage = v.object({
  type: v.literal('result'),
  v: Version,
  leaseId: Id,
  unitId: Id,
  gpuSeconds: Seconds,
  output: Tensor,
  /** The unit's energy as the miner measured it, with its method; optional, and pay never depends on it. */
  energy: v.optional(UnitEnergy),
  /**
   * The engine the unit ran on, when the miner chose one per model (onnx: the faster of onnxruntime-web's WebGPU and
   * WASM EPs); its kind may name it in the receipt and pay it at its rate. Absent: the hello's backend.
   */
  engine: v.optional(Engine),
  /** The lease's span parts, as the lease named them. */
  parts: v.optional(SpanParts),
});

/** The most units one pending-check names: a key's pending credits are its bond (at most 40) and a few since. */
export const MAX_PENDING_CHECK_UNITS = 128;
/**
 * How often a miner holding pending credits asks after them (after the welcome, then this often); a coordinator
 * answers one check per connection per half of it. An audit run by another coordinator of a fleet tells only the
 * miners connected to it.
 */
export const PENDING_CHECK_EVERY_MS = 60_000;

/**
 * Sent after the welcome, and every PENDING_CHECK_EVERY_MS, by a miner holding credits pending at this coordinator
 * (or its fleet's ledger): an audit may have settled or forfeited them while its link was down, or on another
 * coordinator, when the verdict had nowhere to go. The coordinator answers with a receipt for each unit credited to
 * this wallet key and a forfeited notice for those it forfeited; units still pending, or not this key's, get no answer.
 */
export const PendingCheckMessage = v.object({
  type: v.literal('pending-check'),
  v: Version,
  unitIds: v.pipe(v.array(Id), v.minLength(1), v.maxLength(MAX_PENDING_CHECK_UNITS)),
});

export const CoordinatorMessage = v.variant('type', [
  ChallengeMessage,
  WelcomeMessage,
  LeaseMessage,
  NoWorkMessage,
  ReceiptMessage,
  RejectedMessage,
  PendingMessage,
  ForfeitedMessage,
  ErrorMessage,
  PingMessage,
  PongMessage,
]);
export type CoordinatorMessage = v.InferOutput<typeof CoordinatorMessage>;

export const MinerMessage = v.variant('type', [
  HelloMessage,
  WorkRequestMessage,
  ResultMessage,
  PendingCheckMessage,
  ErrorMessage,
  PingMessage,
  PongMessage,
]);
export type MinerMessage = v.InferOutput<typeof MinerMessage>;

/** What the sender writes: bigint fields may be given as bigint, the schema's input type. */
export type CoordinatorMessageInput = v.InferInput<typeof CoordinatorMessage>;
export type MinerMessageInput = v.InferInput<typeof MinerMessage>;
