// What the device and the browser say about being polite: on battery or AC, tab hidden or shown, CPU pressure.
// Read from the Battery Status API, the Page Visibility API and the Compute Pressure API where the browser has them.

/** The parts of the Battery Status API used here (not in TypeScript's DOM library). */
interface BatteryManagerLike extends EventTarget {
  charging: boolean;
  level: number;
}
type PressureState = 'nominal' | 'fair' | 'serious' | 'critical';
interface PressureRecordLike {
  state: PressureState;
}
interface PressureObserverLike {
  observe(source: 'cpu', options?: { sampleInterval?: number }): Promise<void>;
  disconnect(): void;
}
type PressureObserverCtor = new (callback: (records: PressureRecordLike[]) => void) => PressureObserverLike;

/** How often Compute Pressure may report; it only reports changes anyway. */
const PRESSURE_SAMPLE_MS = 2_000;

class Politeness {
  /** null: the browser does not say */
  onBattery = $state<boolean | null>(null);
  batteryLevel = $state<number | null>(null);
  hidden = $state(false);
  pressure = $state<PressureState | null>(null);
  pressureError = $state('');
  private started = false;

  start(): void {
    if (this.started) return;
    this.started = true;
    this.hidden = document.visibilityState === 'hidden';
    document.addEventListener('visibilitychange', () => {
      this.hidden = document.visibilityState === 'hidden';
    });
    void this.watchBattery();
    void this.watchPressure();
  }

  private async watchBattery(): Promise<void> {
    const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryManagerLike> };
    if (typeof nav.getBattery !== 'function') return;
    const battery = await nav.getBattery();
    const read = () => {
      this.onBattery = !battery.charging;
      this.batteryLevel = battery.level;
    };
    read();
    battery.addEventListener('chargingchange', read);
    battery.addEventListener('levelchange', read);
  }

  private async watchPressure(): Promise<void> {
    const ctor = (globalThis as { PressureObserver?: PressureObserverCtor }).PressureObserver;
    if (!ctor) return;
    const observer = new ctor((records) => {
      const last = records.at(-1);
      if (last) this.pressure = last.state;
    });
    try {
      await observer.observe('cpu', { sampleInterval: PRESSURE_SAMPLE_MS });
    } catch (err) {
      this.pressureError = (err as Error).message;
    }
  }
}

export const politeness = new Politeness();
