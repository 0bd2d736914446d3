// Results sent but not yet answered, kept in IndexedDB so that a reload or a crashed tab does not lose work already
// done: each is written before it is sent, removed when its verdict arrives, and sent again by the next Start.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import * as v from 'valibot';
import { ResultMessage } from '../protocol/messages.ts';

export const UNSETTLED_DB = 'ergon-unsettled';
/**
 * The most bytes of results kept on disk at once. A few units are in flight at a time, so this is only reached by a
 * backlog (a coordinator away for long, verdicts that never come); then the results nearest their deadlines go first.
 */
export const UNSETTLED_BUDGET_BYTES = 64 * 1024 * 1024;
/** What a kept result costs beyond its output's bytes: ids, key, shape, energy; generous on purpose. */
const RECORD_OVERHEAD_BYTES = 1_024;
/** Each page holds a Web Lock of this name and its own id while it lives: other pages of the profile leave its results. */
const PAGE_LOCK_PREFIX = 'ergon-unsettled-page:';

/** A result kept until its verdict arrives, with the coordinator key it went to and until when its lease lasts. */
export const UnsettledResult = v.object({
  /** hex of the wallet key whose lease it was: a wallet replaced by an import does not send another key's results */
  minerKey: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  /** hex of the coordinator key of the link it was sent on: only that coordinator (or its fleet) may have it again */
  coordinatorKey: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  /** the lease's deadline on this page's clock: past it the coordinator has leased the unit to someone else */
  deadlineAtMs: v.pipe(v.number(), v.safeInteger()),
  ops: v.pipe(v.bigint(), v.minValue(0n)),
  gpuSeconds: v.pipe(v.number(), v.finite(), v.minValue(0)),
  message: v.omit(ResultMessage, ['v']),
});
export type UnsettledResult = v.InferOutput<typeof UnsettledResult>;

/** What the budget needs to know of a kept result, stored apart so that no result's bytes are read to decide. */
export interface KeptSize {
  unitId: string;
  deadlineAtMs: number;
  bytes: number;
  /** The page that kept it, or last took it back. */
  owner?: string;
}

export function keptSize(result: UnsettledResult, owner?: string): KeptSize {
  return { unitId: result.message.unitId, deadlineAtMs: result.deadlineAtMs, bytes: result.message.output.data.byteLength + RECORD_OVERHEAD_BYTES, owner };
}

/**
 * Whether a starting page takes back a kept result: its own, or one whose page is gone (reloaded, closed, crashed).
 * Another tab still mining waits for that result's verdict itself; sending it from here too would only repeat it.
 */
export function mayTake(owner: string | undefined, self: string, livePages: ReadonlySet<string>): boolean {
  return owner === undefined || owner === self || !livePages.has(owner);
}

/**
 * Whether a new result fits, and which kept ones go to make room: those whose leases have ended always go, then the
 * ones nearest their deadlines (the least likely to be paid) until the new one fits. One larger than the whole budget
 * is not kept on disk (the page still holds it in memory), and nothing is dropped for it.
 */
export function admit(kept: readonly KeptSize[], incoming: KeptSize, nowMs: number, budgetBytes = UNSETTLED_BUDGET_BYTES): { keep: boolean; drop: string[] } {
  const drop: string[] = [];
  const live: KeptSize[] = [];
  for (const entry of kept) {
    if (entry.unitId === incoming.unitId) continue; // replaced by the new one
    if (entry.deadlineAtMs <= nowMs) drop.push(entry.unitId);
    else live.push(entry);
  }
  if (incoming.bytes > budgetBytes || incoming.deadlineAtMs <= nowMs) return { keep: false, drop };
  let bytes = live.reduce((sum, entry) => sum + entry.bytes, incoming.bytes);
  for (const entry of live.sort((a, b) => a.deadlineAtMs - b.deadlineAtMs)) {
    if (bytes <= budgetBytes) break;
    drop.push(entry.unitId);
    bytes -= entry.bytes;
  }
  return { keep: true, drop };
}

/** Of the stored records, the well-formed ones whose leases last past now; the keys of the rest, to delete. */
export function liveResults(records: readonly { key: string; value: unknown }[], nowMs: number): { live: UnsettledResult[]; stale: string[] } {
  const live: UnsettledResult[] = [];
  const stale: string[] = [];
  for (const { key, value } of records) {
    const parsed = v.safeParse(UnsettledResult, value);
    if (parsed.success && parsed.output.message.unitId === key && parsed.output.deadlineAtMs > nowMs) live.push(parsed.output);
    else stale.push(key);
  }
  return { live, stale };
}

interface UnsettledSchema extends DBSchema {
  /** The results, keyed by unit id; re-validated whenever read. */
  results: { key: string; value: unknown };
  /** Their sizes and deadlines, keyed alike: what the budget reads. */
  sizes: { key: string; value: KeptSize };
}

/** Where the mining loop keeps its unsettled results; its methods never throw (a failure is reported, and mining goes on). */
export interface ResultKeeper {
  /** The kept results whose leases last past now (others are deleted). */
  load(nowMs: number): Promise<UnsettledResult[]>;
  /** Keeps a result before it is sent. */
  keep(result: UnsettledResult, nowMs: number): Promise<void>;
  /** Its verdict arrived: the result is let go. */
  forget(unitId: string): Promise<void>;
}

/** The IndexedDB keeper. Its database is apart from the wallet's: results are not earnings, and may be cleared alone. */
export class UnsettledStore implements ResultKeeper {
  private db: Promise<IDBPDatabase<UnsettledSchema>> | undefined;
  private readonly page = crypto.randomUUID();

  /** `report` is told, in a sentence, when a result could not be kept or let go. */
  constructor(
    private readonly report: (problem: string) => void,
    private readonly budgetBytes = UNSETTLED_BUDGET_BYTES,
  ) {}

  async load(nowMs: number): Promise<UnsettledResult[]> {
    try {
      const db = await this.open();
      const livePages = await this.livePages(); // before the transaction, which would commit while this is awaited
      const tx = db.transaction(['results', 'sizes'], 'readwrite');
      const [results, sizes] = [tx.objectStore('results'), tx.objectStore('sizes')];
      const owners = new Map((await sizes.getAll()).map((size) => [size.unitId, size.owner]));
      const keys = (await results.getAllKeys()).filter((key) => mayTake(owners.get(key), this.page, livePages));
      const records = await Promise.all(keys.map(async (key) => ({ key, value: await results.get(key) })));
      const { live, stale } = liveResults(records, nowMs);
      for (const key of stale) await Promise.all([results.delete(key), sizes.delete(key)]);
      // Taken back: this page's now, so that another page starting meanwhile leaves them alone.
      for (const result of live) await sizes.put(keptSize(result, this.page), result.message.unitId);
      await tx.done;
      return live;
    } catch (err) {
      this.report(`results kept from before could not be read: ${(err as Error).message}`);
      return [];
    }
  }

  async keep(result: UnsettledResult, nowMs: number): Promise<void> {
    try {
      const db = await this.open();
      // One transaction: tabs of one profile share the database, and the budget holds across them.
      const tx = db.transaction(['results', 'sizes'], 'readwrite');
      const sizes = tx.objectStore('sizes');
      const size = keptSize(result, this.page);
      const { keep, drop } = admit(await sizes.getAll(), size, nowMs, this.budgetBytes);
      for (const unitId of drop) await Promise.all([tx.objectStore('results').delete(unitId), sizes.delete(unitId)]);
      if (keep) await Promise.all([tx.objectStore('results').put(result, size.unitId), sizes.put(size, size.unitId)]);
      await tx.done;
      if (!keep && size.bytes > this.budgetBytes) this.report(`the result of unit ${size.unitId} (${size.bytes} bytes) is too large to keep across a reload`);
    } catch (err) {
      this.report(`the result of unit ${result.message.unitId} could not be kept across a reload: ${(err as Error).message}`);
    }
  }

  async forget(unitId: string): Promise<void> {
    try {
      const db = await this.open();
      const tx = db.transaction(['results', 'sizes'], 'readwrite');
      await Promise.all([tx.objectStore('results').delete(unitId), tx.objectStore('sizes').delete(unitId), tx.done]);
    } catch (err) {
      // Left behind, it is sent again on the next Start and answered with its receipt again: nothing is paid twice.
      this.report(`the settled result of unit ${unitId} could not be let go: ${(err as Error).message}`);
    }
  }

  private open(): Promise<IDBPDatabase<UnsettledSchema>> {
    this.db ??= this.holdPageLock().then(() =>
      openDB<UnsettledSchema>(UNSETTLED_DB, 1, {
        upgrade(db) {
          db.createObjectStore('results');
          db.createObjectStore('sizes');
        },
      }),
    );
    return this.db;
  }

  /** Holds this page's Web Lock for as long as the page lives; resolves once it is held. */
  private holdPageLock(): Promise<void> {
    if (!('locks' in navigator)) return Promise.resolve();
    return new Promise((held, failed) => {
      navigator.locks
        .request(PAGE_LOCK_PREFIX + this.page, () => {
          held();
          return new Promise<never>(() => {}); // released by the browser when the page goes
        })
        .catch(failed);
    });
  }

  /** The pages of this profile that hold their lock: alive, mining or not. */
  private async livePages(): Promise<Set<string>> {
    if (!('locks' in navigator)) return new Set();
    const { held = [] } = await navigator.locks.query();
    return new Set(held.flatMap((lock) => (lock.name?.startsWith(PAGE_LOCK_PREFIX) ? [lock.name.slice(PAGE_LOCK_PREFIX.length)] : [])));
  }
}
