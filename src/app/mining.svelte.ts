// Shared state of the miner page: what the views show, fed by the mining loop, the GPU worker and the wallet,
// and the rules that turn settings and the device's condition into a pause or a throttle.
import { GpuClient } from '../miner/gpu-client.ts';
import { MiningLoop, type ComputedUnit, type MinerPhase } from '../miner/mining-loop.ts';
import type { Transport } from '../miner/coordinator-link.ts';
import { EnergyMeter } from '../miner/energy/energy-meter.ts';
import { energy } from './energy.svelte.ts';
import type { Backend, GpuDescription, Throttle } from '../miner/worker-messages.ts';
import type { Engine } from '../protocol/messages.ts';
import { earnings } from './earnings.svelte.ts';
import { politeness } from './politeness.svelte.ts';
import { settings } from './settings.svelte.ts';
import { clearOperandCache, mibToBytes } from '../miner/operand-cache.ts';
import { UnsettledStore } from '../miner/unsettled-store.ts';

/** Live speed is a moving window over the last few units. */
const SPEED_WINDOW_UNITS = 8;
/** Units kept for the chart and the measured duty cycle. */
const HISTORY_UNITS = 60;
/**
 * Under CPU pressure the duty cycle is cut to at most these shares: a back-off, not a pause, because on a machine
 * whose GPU is emulated on the CPU (SwiftShader) the pressure is partly the work's own and a pause would oscillate.
 */
const PRESSURE_DUTY = { serious: 0.5, critical: 0.25 } as const;

class MiningState {
  phase = $state<MinerPhase>('idle');
  detail = $state('');
  gpu = $state<GpuDescription | null>(null);
  unitsDone = $state(0);
  unitsRejected = $state(0);
  lastRejection = $state('');
  /** Units computed this session, oldest first (at most HISTORY_UNITS). */
  history = $state<ComputedUnit[]>([]);
  /** Units the GPU finished this session, verdict or not. */
  unitsComputed = $state(0);
  deviceLosses = $state(0);
  deviceRecoveries = $state(0);
  coordinatorUrl = $state('');
  /** What carries the link to the coordinator in use, and why the data channel was given up when it was. */
  transport = $state<Transport | null>(null);
  fallbackReason = $state('');
  /** Why this browser cannot mine with WebGPU, when it cannot. */
  noWebGpu = $state('');
  /** What the last Start chose to compute with. */
  backend = $state<Backend>('webgpu');
  /** Whose time the speed figures count: the CPU's for the WebAssembly fallback, else the GPU's. */
  engine = $derived(this.gpu?.backend === 'wasm' ? 'CPU' : 'GPU');
  /** The engine each onnx model runs on here (sha256 -> engine), as the worker measured and chose it. */
  modelEngines = $state<Record<string, Engine>>({});
  private recent = $state<{ ops: bigint; gpuSeconds: number }[]>([]);

  /** GFLOP/s of GPU time over the recent units. */
  gflops = $derived.by(() => {
    const seconds = this.recent.reduce((s, u) => s + u.gpuSeconds, 0);
    const ops = this.recent.reduce((s, u) => s + Number(u.ops), 0);
    return seconds > 0 ? ops / seconds / 1e9 : 0;
  });

  /** Share of wall time the GPU was busy over the last units: GPU seconds after the first / time between finishes. */
  measuredDuty = $derived.by(() => {
    const units = this.history.slice(-SPEED_WINDOW_UNITS);
    if (units.length < 3) return null;
    const wallMs = units[units.length - 1].finishedAtMs - units[0].finishedAtMs;
    const gpuSeconds = units.slice(1).reduce((s, u) => s + u.gpuSeconds, 0);
    return wallMs > 0 ? Math.min(1, (gpuSeconds * 1000) / wallMs) : null;
  });

  running = $derived(this.phase !== 'idle' && this.phase !== 'failed');

  /** Why mining is paused now, in words; empty when it may run. */
  pauseReason = $derived.by(() => {
    const s = settings.value;
    if (s.pauseOnBattery && politeness.onBattery === true) return 'Paused: this device is on battery. It resumes when plugged in.';
    if (!s.keepMiningInBackground && politeness.hidden) return 'Paused: the tab is hidden. It resumes when you come back.';
    return '';
  });

  /** The throttle the worker honours: the person's, tightened under serious pressure. */
  throttle = $derived.by((): Throttle => {
    const duty = settings.value.dutyPercent / 100;
    const pressure = settings.value.backOffUnderPressure ? politeness.pressure : null;
    return {
      duty: pressure === 'serious' || pressure === 'critical' ? Math.min(duty, PRESSURE_DUTY[pressure]) : duty,
      gpuSecondsPerMinute: settings.value.gpuSecondsPerMinute,
    };
  });

  private loop: MiningLoop | undefined;
  /** Results sent without a verdict yet, on disk: one database connection for the page, whatever the Starts. */
  private readonly kept = new UnsettledStore((problem) => (this.detail = problem));
  private client: GpuClient | undefined;
  /** Releases the Web Lock held while mining: Chromium does not freeze a hidden page that holds one. */
  private releaseLock: (() => void) | undefined;
  private wired = false;

  /** Opens the wallet and starts following settings and the device's condition. Touches no GPU. */
  async load(): Promise<void> {
    politeness.start();
    this.wire();
    await earnings.load();
  }

  /**
   * The person pressed Start: only now is the worker made and asked for a GPU device. `wasm` is the CPU fallback
   * that a browser without usable WebGPU offers; the person chooses it, it is never picked silently.
   */
  start(backend: Backend = 'webgpu'): void {
    const wallet = earnings.wallet;
    if (!wallet || this.loop?.isRunning) return;
    if (backend === 'webgpu') this.noWebGpu = '';
    this.backend = backend;
    const gpu = new GpuClient({
      deviceLost: (message) => {
        this.deviceLosses++;
        this.detail = `GPU device lost (${message}); making a new one and running the unit again`;
      },
      deviceRestored: (description) => {
        this.deviceRecoveries++;
        this.gpu = description;
        this.detail = 'GPU device recovered';
      },
    }, backend);
    this.client = gpu;
    gpu.setThrottle($state.snapshot(this.throttle));
    gpu.setOperandCache(mibToBytes(settings.value.operandCacheMiB));
    const meter = new EnergyMeter(() => energy.config(), () => this.gpu?.adapter, (problem, method) => energy.probeReport(problem, method));
    meter.start();
    // The person's coordinators first, then those their fleets vouch for (learnt when the wallet pinned their keys).
    const coordinators = () => [...new Set([...settings.value.coordinators, ...earnings.fleetUrls].map((url) => new URL(url).href))];
    const loop = new MiningLoop(coordinators, wallet, gpu, {
      phase: (phase, detail) => {
        this.phase = phase;
        this.detail = detail ?? '';
        if (phase === 'failed' && gpu.noWebGpu) this.noWebGpu = detail ?? 'WebGPU is not available';
        if (phase === 'idle' || phase === 'failed') {
          meter.stop();
          this.releaseLock?.();
          this.releaseLock = undefined;
          gpu.terminate();
          if (this.client === gpu) this.client = undefined;
        }
      },
      gpu: (description) => {
        this.gpu = description;
      },
      coordinator: (url) => {
        this.coordinatorUrl = url;
        this.transport = null;
      },
      transport: (transport, fallbackReason) => {
        this.transport = transport;
        this.fallbackReason = fallbackReason;
      },
      computed: (unit) => {
        this.unitsComputed++;
        this.history = [...this.history, unit].slice(-HISTORY_UNITS);
        if (unit.ranOn && this.modelEngines[unit.ranOn.model] !== unit.ranOn.engine) this.modelEngines = { ...this.modelEngines, [unit.ranOn.model]: unit.ranOn.engine };
      },
      unit: (report) => {
        if (!report.accepted) {
          this.unitsRejected += report.units;
          this.lastRejection = report.reason ?? '';
          return;
        }
        this.unitsDone += report.units;
        this.recent = [...this.recent, { ops: report.ops, gpuSeconds: report.gpuSeconds }].slice(-SPEED_WINDOW_UNITS);
      },
      receipt: async () => {
        await earnings.refresh();
      },
      pending: async (forfeitedReason) => {
        if (forfeitedReason !== undefined) this.lastRejection = `pending credits forfeited: ${forfeitedReason}`;
        await earnings.refresh();
      },
    }, (timing) => meter.unitEnergy(timing), this.kept);
    this.loop = loop;
    this.holdLock();
    loop.setPaused(this.pauseReason);
    loop.start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }

  /** Empties the kept operands: Cache Storage here, and the worker's copies in memory. */
  async clearOperands(): Promise<void> {
    this.client?.clearOperands();
    await clearOperandCache();
  }

  private holdLock(): void {
    if (this.releaseLock || !('locks' in navigator)) return;
    navigator.locks
      .request('ergon-mining', () => new Promise<void>((resolve) => (this.releaseLock = resolve)))
      .catch((err: unknown) => (this.detail = `Could not hold a Web Lock; a hidden tab may be frozen: ${(err as Error).message}`));
  }

  /** Diagnostics: destroys the worker's GPU device for real, to show that mining recovers without a reload. */
  loseDevice(): void {
    this.client?.loseDevice();
  }

  /** Keeps the loop's pause and the worker's throttle in step with settings and the device's condition. */
  private wire(): void {
    if (this.wired) return;
    this.wired = true;
    $effect.root(() => {
      $effect(() => {
        const reason = this.pauseReason;
        this.loop?.setPaused(reason);
      });
      // The derived throttle is a new object whenever pressure or settings are re-read; act on real changes only,
      // or every pressure sample would cut the loop's rest short and leave a lease waiting in the worker.
      let last = '';
      $effect(() => {
        const throttle = $state.snapshot(this.throttle);
        const key = JSON.stringify(throttle);
        if (key === last) return;
        last = key;
        this.client?.setThrottle(throttle);
        this.loop?.throttleChanged();
      });
      $effect(() => {
        const budgetBytes = mibToBytes(settings.value.operandCacheMiB);
        this.client?.setOperandCache(budgetBytes);
      });
    });
  }
}

export const mining = new MiningState();
