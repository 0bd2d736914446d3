import { describe, expect, it } from 'vitest';
import type { Engine } from '../../../src/protocol/messages.ts';
import { chooseEngine, choiceKey, CLEARLY_SLOWER, TIMED_RUNS, WARM_RUNS, type ChoiceStore, type EngineCandidates } from '../../../src/miner/onnx/engine-choice.ts';

interface FakeSession { engine: Engine; closed: boolean }

/** Engines with fixed seconds per run, or an error when opened; records what was opened, run and closed. */
function fakeEngines(secondsPerRun: Partial<Record<Engine, number | Error>>) {
  const opened: FakeSession[] = [];
  const runs: Engine[] = [];
  const candidates: EngineCandidates<FakeSession> = {
    async open(engine) {
      const speed = secondsPerRun[engine];
      if (speed === undefined || speed instanceof Error) throw speed ?? new Error(`${engine} is not there`);
      const session = { engine, closed: false };
      opened.push(session);
      return session;
    },
    async time(session) {
      runs.push(session.engine);
      return secondsPerRun[session.engine] as number;
    },
    async close(session) {
      session.closed = true;
    },
  };
  return { candidates, opened, runs };
}

function memoryStore(): ChoiceStore & { map: Map<string, Engine> } {
  const map = new Map<string, Engine>();
  return { map, get: async (key) => map.get(key), put: async (key, engine) => void map.set(key, engine) };
}

const KEY = choiceKey('ab'.repeat(32), 'nvidia/ampere');

describe('choosing an onnx engine per model', () => {
  it('keeps the faster engine warm and closes the other', async () => {
    const { candidates, opened, runs } = fakeEngines({ webgpu: 0.01, wasm: 0.2 });
    const choice = await chooseEngine(KEY, ['wasm', 'webgpu'], candidates, memoryStore());
    expect(choice.engine).toBe('webgpu');
    expect(choice.session.closed).toBe(false);
    expect(opened.find((s) => s.engine === 'wasm')?.closed).toBe(true);
    expect(choice.measured).toEqual({ webgpu: 0.01, wasm: 0.2 });
    expect(runs.filter((e) => e === 'wasm')).toHaveLength(WARM_RUNS + TIMED_RUNS);
    expect(runs.filter((e) => e === 'webgpu')).toHaveLength(WARM_RUNS + TIMED_RUNS);
  });

  it('picks WASM when it is faster (WebGPU on a software rasteriser)', async () => {
    const { candidates } = fakeEngines({ webgpu: 0.9, wasm: 0.3 });
    const choice = await chooseEngine(KEY, ['webgpu', 'wasm'], candidates, memoryStore());
    expect(choice.engine).toBe('wasm');
  });

  it('cuts the timing of an engine far slower than the best short, and prefers the earlier engine on a tie', async () => {
    const slow = fakeEngines({ wasm: 0.01, webgpu: 0.01 * CLEARLY_SLOWER * 40 });
    expect((await chooseEngine(KEY, ['wasm', 'webgpu'], slow.candidates, memoryStore())).engine).toBe('wasm');
    expect(slow.runs.filter((e) => e === 'webgpu')).toHaveLength(WARM_RUNS + 1);
    // Close but slower: timed in full, and still not chosen.
    const close = fakeEngines({ wasm: 0.01, webgpu: 0.015 });
    expect((await chooseEngine(KEY, ['wasm', 'webgpu'], close.candidates, memoryStore())).engine).toBe('wasm');
    expect(close.runs.filter((e) => e === 'webgpu')).toHaveLength(WARM_RUNS + TIMED_RUNS);
    const tie = fakeEngines({ wasm: 0.01, webgpu: 0.01 });
    expect((await chooseEngine(KEY, ['wasm', 'webgpu'], tie.candidates, memoryStore())).engine).toBe('wasm');
  });

  it('falls back to WASM when WebGPU fails to open or to run', async () => {
    const failsToOpen = fakeEngines({ webgpu: new Error('no adapter'), wasm: 0.3 });
    const opened = await chooseEngine(KEY, ['webgpu', 'wasm'], failsToOpen.candidates, memoryStore());
    expect(opened.engine).toBe('wasm');
    expect(opened.measured.webgpu).toBe('no adapter');

    const failsToRun = fakeEngines({ webgpu: 0.01, wasm: 0.3 });
    failsToRun.candidates.time = async (session) => {
      if (session.engine === 'webgpu') throw new Error('unsupported op on webgpu');
      return 0.3;
    };
    const ran = await chooseEngine(KEY, ['webgpu', 'wasm'], failsToRun.candidates, memoryStore());
    expect(ran.engine).toBe('wasm');
    expect(failsToRun.opened.find((s) => s.engine === 'webgpu')?.closed).toBe(true);
  });

  it('remembers the choice per model and adapter, so a reload does not measure again', async () => {
    const store = memoryStore();
    await chooseEngine(KEY, ['webgpu', 'wasm'], fakeEngines({ webgpu: 0.01, wasm: 0.2 }).candidates, store);
    expect(store.map.get(KEY)).toBe('webgpu');

    const reload = fakeEngines({ webgpu: 0.01, wasm: 0.2 });
    const again = await chooseEngine(KEY, ['webgpu', 'wasm'], reload.candidates, store);
    expect(again).toMatchObject({ engine: 'webgpu', remembered: true });
    expect(reload.runs).toEqual([]);
    expect(reload.opened.map((s) => s.engine)).toEqual(['webgpu']);

    // Another adapter is measured afresh.
    const other = fakeEngines({ webgpu: 0.5, wasm: 0.2 });
    expect((await chooseEngine(choiceKey('ab'.repeat(32), 'swiftshader'), ['webgpu', 'wasm'], other.candidates, store)).engine).toBe('wasm');
  });

  it('measures again when the remembered engine no longer opens, and remembers the new choice', async () => {
    const store = memoryStore();
    store.map.set(KEY, 'webgpu');
    const { candidates } = fakeEngines({ webgpu: new Error('device lost'), wasm: 0.2 });
    const choice = await chooseEngine(KEY, ['webgpu', 'wasm'], candidates, store);
    expect(choice).toMatchObject({ engine: 'wasm', remembered: false });
    expect(store.map.get(KEY)).toBe('wasm');
  });

  it('still chooses when the store fails, and says why when no engine runs the model', async () => {
    const broken: ChoiceStore = { get: async () => { throw new Error('IndexedDB blocked'); }, put: async () => { throw new Error('IndexedDB blocked'); } };
    expect((await chooseEngine(KEY, ['wasm'], fakeEngines({ wasm: 0.2 }).candidates, broken)).engine).toBe('wasm');
    await expect(chooseEngine(KEY, ['webgpu', 'wasm'], fakeEngines({ webgpu: new Error('no adapter'), wasm: new Error('out of memory') }).candidates, memoryStore()))
      .rejects.toThrow(/webgpu: no adapter; wasm: out of memory/);
  });
});
