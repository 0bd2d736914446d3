// Shared state of the miner page: what the views show, fed by the mining loop and the wallet.
import { GpuClient } from '../miner/gpu-client.ts';
import { MiningLoop, type MinerPhase } from '../miner/mining-loop.ts';
import type { GpuDescription } from '../miner/worker-messages.ts';
import { Wallet, type Balance } from '../wallet/wallet.ts';

/** Live speed is a moving window over the last few units. */
const SPEED_WINDOW_UNITS = 8;

class MiningState {
  phase = $state<MinerPhase>('idle');
  detail = $state('');
  gpu = $state<GpuDescription | null>(null);
  unitsDone = $state(0);
  unitsRejected = $state(0);
  lastRejection = $state('');
  balance = $state<Balance | null>(null);
  walletKey = $state('');
  private recent = $state<{ ops: bigint; gpuSeconds: number }[]>([]);

  /** GFLOP/s of GPU time over the recent units. */
  gflops = $derived.by(() => {
    const seconds = this.recent.reduce((s, u) => s + u.gpuSeconds, 0);
    const ops = this.recent.reduce((s, u) => s + Number(u.ops), 0);
    return seconds > 0 ? ops / seconds / 1e9 : 0;
  });

  running = $derived(this.phase !== 'idle' && this.phase !== 'failed');

  private wallet: Wallet | undefined;
  private loop: MiningLoop | undefined;

  async load(): Promise<void> {
    this.wallet = await Wallet.open();
    this.walletKey = this.wallet.publicKeyHex;
    this.balance = await this.wallet.balance();
  }

  start(): void {
    const wallet = this.wallet;
    if (!wallet || this.loop?.isRunning) return;
    const gpu = new GpuClient((message) => {
      this.detail = `GPU device lost (${message}); a new one is made for the next unit`;
    });
    this.loop = new MiningLoop(new URL('/', location.href).href, wallet, gpu, {
      phase: (phase, detail) => {
        this.phase = phase;
        this.detail = detail ?? '';
        if (phase === 'idle' || phase === 'failed') gpu.terminate();
      },
      gpu: (description) => {
        this.gpu = description;
      },
      unit: (report) => {
        if (!report.accepted) {
          this.unitsRejected++;
          this.lastRejection = report.reason ?? '';
          return;
        }
        this.unitsDone++;
        this.recent = [...this.recent, { ops: report.ops, gpuSeconds: report.gpuSeconds }].slice(-SPEED_WINDOW_UNITS);
      },
      receipt: async () => {
        this.balance = await wallet.balance();
      },
    });
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }
}

export const mining = new MiningState();
