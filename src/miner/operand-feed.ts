// Fetches the operands a lease names by hash: from memory, else from the kept copies (operand-cache.ts), else over
// HTTP from the coordinator's origin with the session's token, checked against the hash (WebCrypto) before any use.
// A blob whose bytes do not hash to its name is refused, never computed on.
import { CodedError } from '../protocol/errors.ts';
import { OPERAND_TOKEN_HEADER, type OperandRef } from '../protocol/messages.ts';
import { toHex } from '../protocol/receipt.ts';

export type { OperandRef };

/** Where a lease's operands come from: the coordinator's address and the token its welcome gave this session. */
export interface OperandSource {
  baseUrl: string;
  token: string;
}

/** Kept copies across visits (Cache Storage in the browser); absent where there is none. */
export interface OperandStore {
  get(sha256: string): Promise<ArrayBuffer | undefined>;
  put(sha256: string, bytes: ArrayBuffer): Promise<void>;
}

/** The sha256 of bytes, in lower-case hex: what operands and models are named by. */
export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

export class OperandFeed {
  /** sha256 -> bytes, least recently used first, within memoryBudgetBytes. */
  private readonly memory = new Map<string, ArrayBuffer>();
  private memoryBytes = 0;
  /** Fetches in flight, so that two units naming one blob fetch it once. */
  private readonly inFlight = new Map<string, Promise<ArrayBuffer>>();
  /** Bytes that crossed the network, for the figures. */
  bytesFetched = 0;

  constructor(
    /** 0 keeps nothing: every unit fetches its operands (caching off). */
    public memoryBudgetBytes: number,
    public store: OperandStore | undefined,
    private readonly fetchBytes: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  /** The blob's bytes, checked; throws CodedError operand-hash-mismatch or operand-unavailable. */
  async get(ref: OperandRef, source: OperandSource): Promise<ArrayBuffer> {
    const remembered = this.memory.get(ref.sha256);
    if (remembered) {
      this.remember(ref.sha256, remembered);
      return remembered;
    }
    // Caching off, every unit fetches its own copy: the baseline the feed benchmark compares against.
    let pending = this.memoryBudgetBytes > 0 ? this.inFlight.get(ref.sha256) : undefined;
    if (!pending) {
      pending = this.load(ref, source).finally(() => this.inFlight.delete(ref.sha256));
      this.inFlight.set(ref.sha256, pending);
    }
    const bytes = await pending;
    this.remember(ref.sha256, bytes);
    return bytes;
  }

  clear(): void {
    this.memory.clear();
    this.memoryBytes = 0;
  }

  private async load(ref: OperandRef, source: OperandSource): Promise<ArrayBuffer> {
    const kept = await this.store?.get(ref.sha256);
    if (kept && kept.byteLength === ref.bytes) return kept;
    const url = new URL(`api/operands/${ref.sha256}`, source.baseUrl);
    let response: Response;
    try {
      // Not the browser's HTTP cache: what is kept is kept here, within the budget the person sets and can clear.
      response = await this.fetchBytes(url, { headers: { [OPERAND_TOKEN_HEADER]: source.token }, cache: 'no-store' });
    } catch (err) {
      throw new CodedError('operand-unavailable', `fetching operand ${ref.sha256.slice(0, 12)}… failed: ${(err as Error).message}`);
    }
    if (!response.ok) {
      const reason = await response.text().catch(() => '');
      throw new CodedError('operand-unavailable', `the coordinator refused operand ${ref.sha256.slice(0, 12)}…: ${response.status} ${reason}`.slice(0, 256));
    }
    const bytes = await response.arrayBuffer();
    this.bytesFetched += bytes.byteLength;
    const actual = await sha256Hex(bytes);
    if (bytes.byteLength !== ref.bytes || actual !== ref.sha256) {
      throw new CodedError('operand-hash-mismatch', `operand ${ref.sha256.slice(0, 12)}… arrived as ${bytes.byteLength} bytes hashing to ${actual.slice(0, 12)}…; refused`);
    }
    await this.store?.put(ref.sha256, bytes).catch(() => undefined); // a full or refused disk cache only costs a later fetch
    return bytes;
  }

  private remember(sha256: string, bytes: ArrayBuffer): void {
    const had = this.memory.get(sha256);
    if (had) {
      this.memory.delete(sha256);
      this.memoryBytes -= had.byteLength;
    }
    if (bytes.byteLength > this.memoryBudgetBytes) return;
    this.memory.set(sha256, bytes);
    this.memoryBytes += bytes.byteLength;
    for (const [oldest, old] of this.memory) {
      if (this.memoryBytes <= this.memoryBudgetBytes) break;
      this.memory.delete(oldest);
      this.memoryBytes -= old.byteLength;
    }
  }
}
