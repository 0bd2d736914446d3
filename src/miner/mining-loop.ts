// The mining loop: connect, prove the wallet, lease a unit, run it on the GPU worker, return it, keep the receipt;
// pause when asked, rest as the throttle says, and fail over between the configured coordinators.
import { Peer } from 'peerjs';
import { MAX_PENDING_CHECK_UNITS, PENDING_CHECK_EVERY_MS, type Receipt } from '../protocol/messages.ts';
import type { UnitEnergy } from '../protocol/energy.ts';
import type { Tensor } from '../protocol/tensor.ts';
import { CodedError } from '../protocol/errors.ts';
import { toHex } from '../protocol/receipt.ts';
import { fetchFleet } from '../wallet/trust.ts';
import type { Wallet } from '../wallet/wallet.ts';
import { CoordinatorLink, LinkClosedError, type MessageOf, type MinerOutgoing, type Transport } from './coordinator-link.ts';
import { UnitCancelledError } from './cancelled.ts';
import type { GpuClient, GpuRun } from './gpu-client.ts';
import type { GpuDescription, UnitTiming, WorkerTensor } from './worker-messages.ts';
import type { ResultKeeper, UnsettledResult } from './unsettled-store.ts';
import { AwaitingVerdicts } from './awaiting-verdicts.ts';

export type MinerPhase = 'idle' | 'starting-gpu' | 'connecting' | 'mining' | 'waiting-for-work' | 'paused' | 'reconnecting' | 'stopping' | 'failed';

export interface UnitReport {
  unitId: string;
  ops: bigint;
  gpuSeconds: number;
  /** The job's units it settles: a span's parts, else 1. */
  units: number;
  accepted: boolean;
  reason?: string;
}

/** A unit the GPU finished, before its verdict: what the speed chart and the measured duty cycle are made of. */
export interface ComputedUnit extends UnitTiming {
  unitId: string;
  ops: bigint;
  coordinatorUrl: string;
  /** The unit's energy as measured and sent with its result, when a source could say. */
  energy?: UnitEnergy;
}

/** Measures a unit's energy over its interval (src/miner/energy); undefined when no source can say. */
export type UnitEnergyMeter = (timing: UnitTiming) => Promise<UnitEnergy | undefined>;

export interface MinerEvents {
  phase(phase: MinerPhase, detail?: string): void;
  gpu(description: GpuDescription): void;
  computed(unit: ComputedUnit): void;
  unit(report: UnitReport): void;
  receipt(receipt: Receipt): void;
  /** Credits pending an audit changed: one was held, or an audit forfeited some (with why). */
  pending(forfeitedReason?: string): void;
  /** The coordinator now in use (or the one being tried). */
  coordinator(url: string): void;
  /** What carries the link to it once connected, and why the data channel was given up when it was. */
  transport(transport: Transport, fallbackReason: string): void;
}

/**
 * Units kept in hand before the coordinator says how many it allows (each lease's `inFlight`): one computing and the
 * next uploading behind it.
 */
const UNITS_IN_HAND_FIRST = 2;
/**
 * The most leases in hand whatever the coordinator allows: each holds its operands in the worker until it runs, so
 * this bounds the page's memory (16 units of 256x256 at K = 4096 hold 128 MiB of blocks not yet cached; a span's
 * lease holds several units, and the coordinator lets a key hold 64 units in all).
 */
const MAX_UNITS_IN_HAND = 16;
/** A lease whose operands could not be had, or failed their hash: given up, not computed, and mining goes on. */
const OPERAND_FAILURES: ReadonlySet<string> = new Set(['operand-hash-mismatch', 'operand-unavailable']);
const RECONNECT_FIRST_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** How long a stopping miner waits for the verdicts of results it already sent. */
const VERDICT_WAIT_MS = 30_000;

export class MiningLoop {
  private running = false;
  private link: CoordinatorLink | undefined;
  private finished: Promise<void> = Promise.resolve();
  private pauseReason = '';
  /** Wakes whatever the loop is sleeping on: Stop, a resume and a throttle change all cut a rest short. */
  private readonly sleepers = new Set<() => void>();
  /** Set while a connection winds down: units in hand not yet computing are given up, not run again. */
  private draining = false;
  private coordinatorIndex = 0;
  /**
   * Results sent without a verdict yet, by unit id: when the link drops before the verdict comes, the result is sent
   * again once the same coordinator (the same receipt key) or another of its fleet answers (redeliver). `kept` holds
   * them across a reload too: a Start takes back those a previous page left.
   */
  private readonly unsettled = new Map<string, UnsettledResult>();
  /** This session's key to the operands its leases name by hash (from the welcome). */
  private operandToken: string | undefined;

  /** `coordinators` is read at each connection attempt, so edits to the list apply on the next reconnect. */
  constructor(
    private readonly coordinators: () => readonly string[],
    private readonly wallet: Wallet,
    private readonly gpu: GpuClient,
    private readonly events: MinerEvents,
    private readonly energy?: UnitEnergyMeter,
    private readonly kept?: ResultKeeper,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.finished = this.run().catch((err: unknown) => {
      this.running = false;
      this.events.phase('failed', (err as Error).message);
    });
  }

  /**
   * Stops after the unit computing is returned (at most one unit; one queued behind it is dropped, and its lease
   * goes back to the coordinator when the link closes), then closes the link.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.gpu.cancelQueued();
    this.events.phase('stopping');
    this.wake();
    await this.finished;
  }

  /**
   * A non-empty reason pauses mining after the unit computing (one queued behind it waits, and runs on resume); the
   * link stays open. An empty one resumes.
   */
  setPaused(reason: string): void {
    this.pauseReason = reason;
    if (reason) this.gpu.cancelQueued();
    this.wake();
  }

  /**
   * Applies a new throttle now: cuts a rest short, and when the GPU is now throttled, drops the units queued in the
   * worker behind the one computing (unthrottled, up to 16 may wait there). They run again, one at a time, under
   * the new throttle, so that lowering it takes effect within one unit however many the page holds.
   */
  throttleChanged(): void {
    if (!this.gpu.unthrottled) this.gpu.cancelQueued();
    this.wake();
  }

  private async run(): Promise<void> {
    this.events.phase('starting-gpu');
    this.events.gpu(await this.gpu.init());
    for (const kept of (await this.kept?.load(Date.now())) ?? []) {
      if (kept.minerKey === this.wallet.publicKeyHex && !this.unsettled.has(kept.message.unitId)) this.unsettled.set(kept.message.unitId, kept);
    }
    let backoffMs = RECONNECT_FIRST_MS;
    let failuresThisRound = 0;
    while (this.running) {
      const list = this.coordinators();
      const url = list[this.coordinatorIndex % list.length];
      try {
        this.events.coordinator(url);
        this.events.phase('connecting', url);
        // The data channel first; the coordinator's WebSocket when WebRTC cannot connect (blocked UDP, WebRTC off).
        this.link = await CoordinatorLink.open(url, Peer, { transport: 'auto' });
        this.events.transport(this.link.transport, this.link.fallbackReason);
        await this.hello(this.link);
        backoffMs = RECONNECT_FIRST_MS;
        failuresThisRound = 0;
        await this.mine(this.link, url);
      } catch (err) {
        if (!this.running) break;
        const reason = err instanceof LinkClosedError ? `connection lost: ${err.message}` : (err as Error).message;
        // Try the next coordinator at once; back off only after a whole round of them failed.
        this.coordinatorIndex = (this.coordinatorIndex + 1) % Math.max(1, list.length);
        failuresThisRound++;
        if (failuresThisRound >= list.length) {
          this.events.phase('reconnecting', `${reason}; retrying in ${Math.round(backoffMs / 1000)} s`);
          await this.sleep(backoffMs);
          backoffMs = Math.min(RECONNECT_MAX_MS, backoffMs * 2);
          failuresThisRound = 0;
        } else {
          this.events.phase('reconnecting', `${reason}; trying ${this.coordinators()[this.coordinatorIndex] ?? 'the next coordinator'}`);
        }
      } finally {
        this.link?.close();
        this.link = undefined;
      }
    }
    this.events.phase('idle');
  }

  private async hello(link: CoordinatorLink): Promise<void> {
    const { nonce, coordinatorKey } = link.challenge;
    const gpu = await this.gpu.init();
    link.send({
      type: 'hello',
      minerKey: this.wallet.publicKey,
      signature: await this.wallet.signChallenge(nonce, coordinatorKey),
      adapter: gpu.adapter,
      backend: gpu.backend,
      kinds: gpu.kinds,
      precisions: gpu.precisions,
      features: gpu.features,
    });
    const reply = await link.next(['welcome', 'error'], 30_000);
    if (reply.type === 'error') throw new Error(`the coordinator refused this wallet: ${reply.message}`);
    this.operandToken = reply.operandToken;
  }

  /** Waits while paused (the link stays open and answers heartbeats), unless stopped or the link closes. */
  private async waitWhilePaused(link: CoordinatorLink): Promise<void> {
    while (this.running && this.pauseReason && !link.closed) {
      this.events.phase('paused', this.pauseReason);
      await this.sleep(60_000);
    }
  }

  /**
   * Unthrottled, keeps as many leases in hand as the coordinator sizes for this miner (its leases' `inFlight`: about a
   * second of work ahead at the speed it measured; a fast miner's leases are spans of several units), asking for the
   * next as soon as there is room and handing each lease to the worker at once, so that later units' operands cross
   * the network and upload while the GPU computes. Throttled,
   * one unit at a time, asking only after the rest the worker wants, so no lease ages while the GPU rests. Verdicts
   * are handled as they come back, without holding up the GPU.
   */
  private async mine(link: CoordinatorLink, url: string): Promise<void> {
    this.draining = false;
    const awaiting = new AwaitingVerdicts();
    const verdicts = this.collectVerdicts(link, awaiting);
    await this.redeliver(link, url, awaiting);
    await this.askAfterPending(link, url);
    const askAgain = setInterval(() => {
      this.askAfterPending(link, url).catch((err: unknown) => this.events.phase('mining', `could not ask after pending credits: ${(err as Error).message}`));
    }, PENDING_CHECK_EVERY_MS);
    /** Units handed to the worker, oldest first; each settles with the rest the throttle wants after it. */
    const inHand: Promise<number>[] = [];
    let requested = 0;
    let restingMs = 0;
    let allowed = UNITS_IN_HAND_FIRST;
    /** Set by a no-work answer: ask nothing more until a unit in hand finishes, or until this long has passed. */
    let noWorkRetryMs: number | undefined;
    /** Room for another unit: as many as allowed unthrottled, else one; none while resting, paused or told no work. */
    const room = () => {
      if (!this.running || this.pauseReason || restingMs > 0 || noWorkRetryMs !== undefined) return 0;
      const most = this.gpu.unthrottled ? allowed : 1;
      return Math.max(0, most - inHand.length - requested);
    };
    try {
      await this.waitWhilePaused(link);
      for (;;) {
        for (let ask = room(); ask > 0; ask--) {
          link.send({ type: 'work-request' });
          requested++;
        }
        if (!this.running) break;
        link.throwIfClosed();
        if (requested === 0) {
          // Nothing asked: the hands are full, or there was no work, or the throttle wants a rest, or it is paused.
          // A unit finishing makes room (and the coordinator bounds the leases held); with none in hand, wait.
          if (inHand.length > 0) restingMs = await settleOldest(inHand);
          else if (noWorkRetryMs !== undefined) {
            this.events.phase('waiting-for-work');
            await this.sleep(Math.max(noWorkRetryMs, restingMs));
            restingMs = 0;
          }
          noWorkRetryMs = undefined;
          if (restingMs > 0 && this.running) {
            this.events.phase('mining', `resting ${(restingMs / 1000).toFixed(1)} s for the throttle`);
            await this.sleep(restingMs);
          }
          restingMs = 0;
          await this.waitWhilePaused(link);
          continue;
        }
        const offer = await link.next(['lease', 'no-work', 'error']);
        requested--;
        if (offer.type === 'error') throw new Error(`the coordinator refused work: ${offer.code}: ${offer.message}`);
        if (offer.type === 'no-work') {
          noWorkRetryMs = offer.retryAfterMs;
          continue;
        }
        // A lease that arrives after Stop is left alone: closing the link hands it back to the coordinator.
        if (!this.running) break;
        allowed = Math.min(MAX_UNITS_IN_HAND, offer.inFlight ?? UNITS_IN_HAND_FIRST);
        this.events.phase('mining');
        const unit = this.compute(link, offer, url, awaiting);
        unit.catch(() => undefined); // observed when it is the oldest; until then, not an unhandled rejection
        inHand.push(unit);
      }
    } finally {
      clearInterval(askAgain);
      // Stopping or failing: units not yet computing are dropped (their leases go back when the link closes);
      // the one computing finishes and is returned, and the receipts of results already sent are kept.
      this.draining = true;
      this.gpu.cancelQueued();
      await Promise.allSettled(inHand);
    }
    const deadline = Date.now() + VERDICT_WAIT_MS;
    while (awaiting.size > 0 && !link.closed && Date.now() < deadline) await sleep(50);
    link.close();
    await verdicts;
  }

  /**
   * Hands a lease to the worker and returns its result; settles with the rest the throttle wants after it. While
   * paused it waits, and a unit dropped by a pause runs on resume; a lease whose deadline passed meanwhile is given
   * up (the coordinator leases its unit again), as is one in hand when mining stops or the link fails.
   */
  private async compute(link: CoordinatorLink, offer: MessageOf<'lease'>, url: string, awaiting: AwaitingVerdicts): Promise<number> {
    const deadlineAtMs = Date.now() + offer.deadlineMs;
    let run: GpuRun | undefined;
    while (!run) {
      await this.waitWhilePaused(link);
      if (!this.running || this.draining || link.closed || Date.now() >= deadlineAtMs) return 0;
      try {
        // Each try moves fresh copies to the worker: a unit dropped by a pause runs again from its lease.
        const source = this.operandToken ? { baseUrl: url, token: this.operandToken } : undefined;
        run = await this.gpu.run(offer.kind, { operands: workerTensors(offer.operands), params: offer.params, refs: offer.refs, source });
      } catch (err) {
        if (err instanceof CodedError && OPERAND_FAILURES.has(err.code)) {
          // Not computed: a blob that fails its hash is never worked on. The coordinator is told; the lease lapses
          // and its unit goes to another miner.
          link.send({ type: 'error', code: err.code, message: `lease ${offer.leaseId}: ${err.message}`.slice(0, 256) });
          this.events.unit({ unitId: offer.unitId, ops: offer.ops, gpuSeconds: 0, units: offer.parts?.length ?? 1, accepted: false, reason: err.message });
          return 0;
        }
        if (!(err instanceof UnitCancelledError)) throw err; // dropped before it ran: by a pause, or by stopping
      }
    }
    const { ops } = offer;
    awaiting.add(offer.unitId, { ops, gpuSeconds: run.gpuSeconds }, offer.parts);
    const { output, ...timing } = run;
    // Energy is measured for the figures and the receipt only; pay never depends on it, and a failing source sends none.
    const energy = await this.energy?.(timing).catch((err: unknown) => {
      this.events.phase('mining', `energy not measured for this unit: ${(err as Error).message}`);
      return undefined;
    });
    const result: Extract<MinerOutgoing, { type: 'result' }> = {
      type: 'result', leaseId: offer.leaseId, unitId: offer.unitId, gpuSeconds: run.gpuSeconds, output: { ...output, data: new Uint8Array(output.data) },
      ...(energy ? { energy } : {}),
      ...(run.ranOn ? { engine: run.ranOn.engine } : {}),
      ...(offer.parts ? { parts: offer.parts } : {}),
    };
    // Kept until its verdict, on disk before it leaves: a link that dropped meanwhile (the send is then dropped too)
    // gets it on reconnection, and a page reloaded meanwhile on its next Start.
    const unsettled: UnsettledResult = { minerKey: this.wallet.publicKeyHex, coordinatorKey: toHex(link.challenge.coordinatorKey), deadlineAtMs, ops, gpuSeconds: run.gpuSeconds, message: result };
    this.unsettled.set(offer.unitId, unsettled);
    await this.kept?.keep(unsettled, Date.now());
    link.send(result);
    this.events.computed({ ...timing, unitId: offer.unitId, ops, coordinatorUrl: url, ...(energy ? { energy } : {}) });
    return run.restMs;
  }

  /**
   * Stores each receipt (after the wallet verifies it) and each pending credit (apart), drops forfeited ones, and
   * reports each verdict, until the link closes. A receipt for a unit that was pending settles it: its verdict was
   * already reported when it was held.
   */
  private async collectVerdicts(link: CoordinatorLink, awaiting: AwaitingVerdicts): Promise<void> {
    const coordinatorKey = toHex(link.challenge.coordinatorKey);
    while (!link.closed) {
      let verdict: MessageOf<'receipt' | 'rejected' | 'pending' | 'forfeited'>;
      try {
        verdict = await link.next(['receipt', 'rejected', 'pending', 'forfeited'], VERDICT_WAIT_MS);
      } catch (err) {
        if (err instanceof LinkClosedError) return;
        continue; // nothing came back for a while: keep listening
      }
      if (verdict.type === 'forfeited') {
        await this.wallet.forfeit(verdict.unitIds);
        this.events.pending(verdict.reason);
        continue;
      }
      // Stored first: a receipt the wallet refuses counts as refused.
      const named = verdict.type === 'receipt' ? verdict.receipt.unitId : verdict.unitId;
      let refused = verdict.type === 'rejected' ? verdict.message : undefined;
      try {
        if (verdict.type === 'pending') {
          await this.wallet.addPending(verdict, coordinatorKey);
          this.events.pending();
        } else if (verdict.type === 'receipt') {
          if (toHex(verdict.receipt.coordinatorKey) !== coordinatorKey) throw new Error('receipt refused: signed by another coordinator key');
          this.events.receipt(await this.wallet.addReceipt(verdict.receipt));
        }
      } catch (err) {
        refused = (err as Error).message;
      }
      // A span's result is settled by a verdict on each of its parts: it is reported, and forgotten, after the last.
      const settled = awaiting.settle(named, verdict.type === 'rejected' ? 'rejected' : refused === undefined ? 'accepted' : 'unstored', refused);
      const unitId = settled?.unitId ?? named;
      const done = settled?.done ?? true;
      if (done) this.unsettled.delete(unitId);
      // The kept copy goes once every verdict on it is stored (a page that dies first sends the result again on its
      // next Start, and a span's stored receipts come back with the rest): a coordinator's rejection is stored as
      // such; a receipt or pending notice the wallet could not keep is not, and keeps the whole result.
      const stored = settled ? settled.unstored === 0 : verdict.type === 'rejected' || refused === undefined;
      if (done && stored) await this.kept?.forget(unitId);
      if (!settled) {
        // A verdict no result of this link awaits: a receipt sent again counts nothing new; anything else is reported.
        if (verdict.type !== 'receipt' || refused !== undefined) this.events.unit({ unitId, ops: 0n, gpuSeconds: 0, units: 1, accepted: refused === undefined, ...(refused === undefined ? {} : { reason: refused }) });
        continue;
      }
      if (!settled.done) continue;
      const report = { unitId, ops: settled.sent.ops, gpuSeconds: settled.sent.gpuSeconds };
      if (settled.accepted > 0) this.events.unit({ ...report, units: settled.accepted, accepted: true });
      if (settled.rejected > 0) this.events.unit({ ...report, units: settled.rejected, accepted: false, reason: settled.reason ?? 'refused' });
    }
  }

  /**
   * Sends again the results a link dropped before their verdicts, to the same coordinator or (when the page fails over
   * within a fleet) to another the fleet's signed list vouches for, on the same ledger: a result credited before the
   * link or its coordinator died gets its receipt again, one whose lease is still held for this wallet is credited
   * once, and the rest are refused without blame. Results whose leases have run out are let go.
   */
  private async redeliver(link: CoordinatorLink, url: string, awaiting: AwaitingVerdicts): Promise<void> {
    const nowMs = Date.now();
    for (const [unitId, kept] of this.unsettled) if (nowMs >= kept.deadlineAtMs) this.unsettled.delete(unitId);
    const keys = await this.sameLedger(link, url, [...this.unsettled.values()].map((kept) => kept.coordinatorKey));
    for (const [unitId, kept] of this.unsettled) {
      if (!keys.has(kept.coordinatorKey)) continue;
      awaiting.add(unitId, { ops: kept.ops, gpuSeconds: kept.gpuSeconds }, kept.message.parts);
      link.send(kept.message);
    }
  }

  /**
   * Asks what became of the credits this wallet holds as pending on this coordinator's ledger: an audit that settled
   * or forfeited them while the link was down (or the page closed, or on another coordinator of the fleet) had no one
   * to tell. Its receipts and forfeited notices come back as verdicts do (collectVerdicts). The newest first: one
   * that is never answered (an old coordinator's) does not crowd out the rest.
   */
  private async askAfterPending(link: CoordinatorLink, url: string): Promise<void> {
    if (link.closed) return;
    const pending = await this.wallet.pendingCredits();
    if (pending.length === 0) return;
    const keys = await this.sameLedger(link, url, pending.map((credit) => credit.coordinatorKey));
    const unitIds = pending.filter((credit) => keys.has(credit.coordinatorKey)).map((credit) => credit.unitId).reverse();
    if (unitIds.length > 0 && !link.closed) link.send({ type: 'pending-check', unitIds: unitIds.slice(0, MAX_PENDING_CHECK_UNITS) });
  }

  /**
   * The coordinator keys whose ledger this link's coordinator answers for: its own, and, when something kept names
   * another key, those its fleet's signed list vouches for (a fleet shares one ledger).
   */
  private async sameLedger(link: CoordinatorLink, url: string, keptFor: readonly string[]): Promise<Set<string>> {
    const coordinatorKey = toHex(link.challenge.coordinatorKey);
    const keys = new Set([coordinatorKey]);
    if (keptFor.every((key) => key === coordinatorKey)) return keys;
    try {
      for (const member of await fetchFleet(url, coordinatorKey, Date.now())) keys.add(member.key);
    } catch (err) {
      this.events.phase('mining', `what is kept for another coordinator waits for it: ${(err as Error).message}`);
    }
    return keys;
  }

  /** Sleeps up to `ms`, or less when woken by Stop, a pause change or a throttle change. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private wake(): void {
    for (const done of [...this.sleepers]) done();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A lease's operands as the worker takes them: each in an ArrayBuffer of its own, to be moved, not copied again. */
function workerTensors(operands: Readonly<Record<string, Tensor>>): Record<string, WorkerTensor> {
  const out: Record<string, WorkerTensor> = {};
  for (const [name, { dtype, shape, data }] of Object.entries(operands)) out[name] = { dtype, shape, data: data.slice().buffer };
  return out;
}

/** Waits for the oldest unit in hand and takes it out; 0 when there is none. */
async function settleOldest(inHand: Promise<number>[]): Promise<number> {
  const oldest = inHand.shift();
  return oldest ?? 0;
}

