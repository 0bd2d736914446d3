// Which engine a model runs on, on this device: each candidate is opened and timed on the unit's real inputs, the
// faster is kept warm, and the choice is remembered (per model and adapter) so a reload does not measure again.
import type { Engine } from '../../protocol/messages.ts';

/** Runs discarded before timing: the first run compiles shaders and sizes buffers. */
export const WARM_RUNS = 1;
/** Timed runs per engine; the fastest counts. Kept short: the person is waiting for the first unit. */
export const TIMED_RUNS = 2;

/** A timed run this many times the best engine's time ends that engine's timing: it will not win. */
export const CLEARLY_SLOWER = 2;

/** How to open, time and drop a session on an engine: onnxruntime-web in the worker, fakes in tests. */
export interface EngineCandidates<S> {
  open(engine: Engine): Promise<S>;
  /** Seconds one run of the unit's inputs takes on this session. */
  time(session: S): Promise<number>;
  close(session: S): Promise<void>;
}

/** Where choices are kept: IndexedDB in the worker. A store that fails is only a cache: the choice is made again. */
export interface ChoiceStore {
  get(key: string): Promise<Engine | undefined>;
  put(key: string, engine: Engine): Promise<void>;
}

export interface EngineChoice<S> {
  engine: Engine;
  session: S;
  /** Seconds per run measured on each engine, or why it could not run; empty when the choice was remembered. */
  measured: Partial<Record<Engine, number | string>>;
  remembered: boolean;
}

/** The key a choice is remembered under: the model and the adapter it was measured on. */
export function choiceKey(modelSha256: string, adapter: string): string {
  return `${modelSha256}@${adapter}`;
}

/**
 * Opens the model on the faster of `engines` (the earlier when equal; measure the cheaper first), measuring each on first use; a
 * remembered choice is opened without measuring, and one that no longer opens (a WebGPU adapter gone) falls back to
 * measuring the others. Throws only when no engine opens, with each engine's error.
 */
export async function chooseEngine<S>(key: string, engines: readonly Engine[], candidates: EngineCandidates<S>, store: ChoiceStore): Promise<EngineChoice<S>> {
  const remembered = await store.get(key).catch(() => undefined);
  const measured: Partial<Record<Engine, number | string>> = {};
  if (remembered && engines.includes(remembered)) {
    try {
      return { engine: remembered, session: await candidates.open(remembered), measured, remembered: true };
    } catch (err) {
      measured[remembered] = (err as Error).message;
    }
  }
  let best: { engine: Engine; session: S; seconds: number } | undefined;
  for (const engine of engines) {
    if (engine in measured) continue;
    let session: S | undefined;
    try {
      session = await candidates.open(engine);
      for (let i = 0; i < WARM_RUNS; i++) await candidates.time(session);
      let seconds = Infinity;
      for (let i = 0; i < TIMED_RUNS; i++) {
        seconds = Math.min(seconds, await candidates.time(session));
        // Far slower than the best so far (WebGPU on a software rasteriser: 40-120x WASM): another run cannot win.
        if (best && seconds > CLEARLY_SLOWER * best.seconds) break;
      }
      measured[engine] = seconds;
      if (!best || seconds < best.seconds) {
        if (best) await candidates.close(best.session);
        best = { engine, session, seconds };
      } else {
        await candidates.close(session);
      }
    } catch (err) {
      measured[engine] = (err as Error).message;
      if (session !== undefined) await candidates.close(session).catch(() => undefined);
    }
  }
  if (!best) throw new Error(`no engine runs this model: ${engines.map((e) => `${e}: ${String(measured[e])}`).join('; ')}`);
  await store.put(key, best.engine).catch(() => undefined);
  return { engine: best.engine, session: best.session, measured, remembered: false };
}
