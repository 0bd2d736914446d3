// Operands by hash: the blocks a kind names in its leases, hashed and served over HTTP to the miners whose live leases
// name them. Bytes are computed from the open job when first asked for and kept in a bounded cache, so a 4096^3 job
// never holds all its blocks in memory at once; a block the cache dropped is computed again from its job.
import { randomBytes } from 'node:crypto';
import type { OperandRef } from '../protocol/messages.ts';
import type { OperandBlock, UnitBase } from '../work/kind.ts';
import { sha256Hex } from './operand-store.ts';
import type { JobState, WorkQueue } from './queue.ts';

const MiB = 1024 * 1024;
/** Block bytes kept in memory: a 4096-deep f32 block is 4 MiB, so 64 of them. */
export const BLOB_CACHE_BYTES = 256 * MiB;
/** Hashes remembered per block key: a 16384^2 job has 64 + 64 blocks, so thousands of jobs' worth. */
const HASHES_KEPT = 16_384;

/** Where a blob's bytes come from when the cache no longer has them: a block of a unit of an open job. */
interface Source {
  jobId: string;
  unit: UnitBase;
  name: string;
}

export type BlobRead =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; status: 403 | 404; code: string; message: string };

export class OperandBlobs {
  /** `${jobId}/${key}` -> the block's hash and size, so that a block shared by many units is hashed once. */
  private readonly hashes = new Map<string, { sha256: string; bytes: number }>();
  /** sha256 -> bytes, least recently used first. */
  private readonly cache = new Map<string, Uint8Array>();
  private cachedBytes = 0;
  private readonly sources = new Map<string, Source>();
  /** lease id -> the session it was sent to and the hashes it names. */
  private readonly grants = new Map<string, { sessionId: string; hashes: string[] }>();
  /** sha256 -> ids of the leases that name it. */
  private readonly leasesOf = new Map<string, Set<string>>();
  private readonly sessionOfToken = new Map<string, string>();
  private readonly tokenOfSession = new Map<string, string>();
  /** Bytes sent per live session (whole bodies and ranges), and in all since the start: the feed benchmark's figure. */
  readonly bytesServed = new Map<string, number>();
  bytesServedTotal = 0;

  constructor(
    private readonly queue: WorkQueue,
    private readonly cacheBytes = BLOB_CACHE_BYTES,
  ) {}

  /** A fresh secret for a session: it sends it with every fetch, so that only the session its leases went to reads. */
  tokenFor(sessionId: string): string {
    let token = this.tokenOfSession.get(sessionId);
    if (!token) {
      token = randomBytes(24).toString('base64url');
      this.tokenOfSession.set(sessionId, token);
      this.sessionOfToken.set(token, sessionId);
    }
    return token;
  }

  /** Forgets a session that left: its token no longer opens anything. */
  dropSession(sessionId: string): void {
    const token = this.tokenOfSession.get(sessionId);
    if (token) this.sessionOfToken.delete(token);
    this.tokenOfSession.delete(sessionId);
    this.bytesServed.delete(sessionId);
    for (const [leaseId, grant] of this.grants) if (grant.sessionId === sessionId) this.revoke(leaseId);
  }

  /** References for a lease's blocks, which its session may now read until the lease ends. */
  grant(leaseId: string, sessionId: string, state: JobState, unit: UnitBase, blocks: Readonly<Record<string, OperandBlock>>): Record<string, OperandRef> {
    const refs: Record<string, OperandRef> = {};
    for (const [name, block] of Object.entries(blocks)) {
      const id = `${state.id}/${block.key}`;
      let known = this.hashes.get(id);
      if (!known) {
        const bytes = block.bytes();
        known = { sha256: sha256Hex(bytes), bytes: bytes.byteLength };
        this.remember(id, known);
        this.keep(known.sha256, bytes);
      }
      this.sources.set(known.sha256, { jobId: state.id, unit, name });
      refs[name] = { sha256: known.sha256, bytes: known.bytes, dtype: block.dtype, shape: block.shape };
      let leases = this.leasesOf.get(known.sha256);
      if (!leases) this.leasesOf.set(known.sha256, (leases = new Set()));
      leases.add(leaseId);
    }
    this.grants.set(leaseId, { sessionId, hashes: Object.values(refs).map((r) => r.sha256) });
    return refs;
  }

  /** The lease ended (its result came back): its hashes are no longer readable through it. */
  revoke(leaseId: string): void {
    const grant = this.grants.get(leaseId);
    if (!grant) return;
    this.grants.delete(leaseId);
    for (const sha256 of grant.hashes) {
      const leases = this.leasesOf.get(sha256);
      leases?.delete(leaseId);
      if (leases?.size === 0) {
        this.leasesOf.delete(sha256);
        this.sources.delete(sha256);
      }
    }
  }

  /**
   * A blob for the session holding `token`, if one of its live leases names it. Unknown tokens and hashes no live
   * lease of the session names are refused alike (403), so that a stranger learns nothing of which hashes exist.
   */
  async read(token: string | undefined, sha256: string): Promise<BlobRead> {
    const sessionId = token === undefined ? undefined : this.sessionOfToken.get(token);
    if (!sessionId) return { ok: false, status: 403, code: 'no-operand-token', message: 'send the operand token of a live miner session (x-ergon-operand-token)' };
    if (!(await this.leaseNames(sessionId, sha256))) {
      return { ok: false, status: 403, code: 'no-lease', message: `no live lease of this session names operand ${sha256}` };
    }
    const cached = this.cache.get(sha256);
    if (cached) {
      this.keep(sha256, cached);
      return { ok: true, bytes: cached };
    }
    const bytes = await this.recompute(sha256);
    if (!bytes) return { ok: false, status: 404, code: 'unknown-operand', message: `operand ${sha256} is no longer held: its job is closed` };
    this.keep(sha256, bytes);
    return { ok: true, bytes };
  }

  /** Counts bytes sent to a session. */
  served(token: string | undefined, bytes: number): void {
    const sessionId = token === undefined ? undefined : this.sessionOfToken.get(token);
    if (sessionId) this.bytesServed.set(sessionId, (this.bytesServed.get(sessionId) ?? 0) + bytes);
    this.bytesServedTotal += bytes;
  }

  /** Whether one of the session's live leases names this hash; ended leases found on the way are revoked. */
  private async leaseNames(sessionId: string, sha256: string): Promise<boolean> {
    for (const leaseId of [...(this.leasesOf.get(sha256) ?? [])]) {
      const grant = this.grants.get(leaseId);
      if (grant?.sessionId !== sessionId) continue;
      if (await this.queue.leaseFor(leaseId, sessionId)) return true;
      this.revoke(leaseId);
    }
    return false;
  }

  private async recompute(sha256: string): Promise<Uint8Array | undefined> {
    const source = this.sources.get(sha256);
    const state = source && (await this.queue.job(source.jobId));
    if (!source || !state || state.job === null) return undefined;
    const block = state.kind.leasePayload(state.job, source.unit).blocks?.[source.name];
    const bytes = block?.bytes();
    // Deterministic by contract; a kind that breaks it is caught here rather than sending bytes under a wrong name.
    if (!bytes || sha256Hex(bytes) !== sha256) throw new Error(`operand ${sha256} of job ${source.jobId} no longer hashes to its name`);
    return bytes;
  }

  private remember(id: string, known: { sha256: string; bytes: number }): void {
    this.hashes.set(id, known);
    if (this.hashes.size > HASHES_KEPT) {
      const oldest = this.hashes.keys().next();
      if (!oldest.done) this.hashes.delete(oldest.value);
    }
  }

  /** Puts bytes at the recent end of the cache, dropping the least recently used past its budget. */
  private keep(sha256: string, bytes: Uint8Array): void {
    const had = this.cache.get(sha256);
    if (had) {
      this.cache.delete(sha256);
      this.cachedBytes -= had.byteLength;
    }
    if (bytes.byteLength > this.cacheBytes) return;
    this.cache.set(sha256, bytes);
    this.cachedBytes += bytes.byteLength;
    for (const [oldest, old] of this.cache) {
      if (this.cachedBytes <= this.cacheBytes) break;
      this.cache.delete(oldest);
      this.cachedBytes -= old.byteLength;
    }
  }
}
