// Polite by default: pause on battery and resume on AC, pause when the tab is hidden unless the person chose
// background mining, and back off under CPU pressure.
//
// STAND-INS, here and nowhere else: headless Chromium has no battery and no way to drive Compute Pressure, and it
// never hides a page (checked: a minimised window, a popup and another tab all leave visibilityState 'visible').
// So this file replaces navigator.getBattery, PressureObserver and document.visibilityState with fakes the test
// drives. Everything else (the page, the worker, WebGPU, the coordinator) is real.
import { expect, test, type Page } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from '../helpers/chromium.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startStack, submitGemm, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
});
test.afterAll(async () => {
  await stack?.stop();
});

interface Sensors {
  setCharging(charging: boolean): void;
  setPressure(state: string): void;
  setHidden(hidden: boolean): void;
}

function installSensors(): void {
  const battery = new EventTarget() as EventTarget & { charging: boolean; level: number; chargingTime: number; dischargingTime: number };
  battery.charging = true;
  battery.level = 0.8;
  const observers: ((records: { state: string; source: string; time: number }[]) => void)[] = [];
  let hidden = false;
  Object.defineProperty(Navigator.prototype, 'getBattery', { configurable: true, value: () => Promise.resolve(battery) });
  Object.defineProperty(globalThis, 'PressureObserver', {
    configurable: true,
    value: class {
      constructor(private readonly callback: (records: { state: string; source: string; time: number }[]) => void) {}
      observe(): Promise<void> {
        observers.push(this.callback);
        return Promise.resolve();
      }
      disconnect(): void {}
    },
  });
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  const sensors: Sensors = {
    setCharging(charging) {
      battery.charging = charging;
      battery.dispatchEvent(new Event('chargingchange'));
    },
    setPressure(state) {
      for (const callback of observers) callback([{ state, source: 'cpu', time: performance.now() }]);
    },
    setHidden(value) {
      hidden = value;
      document.dispatchEvent(new Event('visibilitychange'));
    },
  };
  (window as unknown as { sensors: Sensors }).sensors = sensors;
}

async function sense(page: Page, call: (s: Sensors) => void): Promise<void> {
  await page.evaluate(`(${call.toString()})(window.sensors)`);
}

async function computed(page: Page): Promise<number> {
  return Number((await page.getByTestId('units-computed').textContent()) ?? '0');
}

/** Checks that no unit starts while paused: at most the one in hand finishes. */
async function expectHeld(page: Page): Promise<void> {
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'paused', { timeout: 60_000 });
  const held = await computed(page);
  await page.waitForTimeout(3_000);
  expect(await computed(page)).toBeLessThanOrEqual(held + 1);
}

/** Submits a small job, so that there is work to resume on however much the page mined before (on a slow machine, more). */
let jobsSubmitted = 0;
async function submitWork(): Promise<void> {
  const [m, n, k] = [256 * 4, 256, 512];
  const seed = 100 * ++jobsSubmitted;
  await submitGemm(stack.url, m, n, k, randomMatrix(m * k, seed), randomMatrix(k * n, seed + 1));
}

async function expectMiningAgain(page: Page): Promise<void> {
  await submitWork();
  const before = await computed(page);
  await expect(page.getByTestId('phase')).not.toHaveAttribute('data-phase', 'paused', { timeout: 60_000 });
  await expect.poll(() => computed(page), { timeout: 120_000 }).toBeGreaterThan(before);
}

test('pauses on battery, when hidden unless asked to keep going, and backs off under CPU pressure', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.addInitScript(installSensors);
  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await expect(page.getByTestId('power')).toContainText('plugged in');
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
  await submitWork();
  await expect.poll(() => computed(page), { timeout: 180_000 }).toBeGreaterThanOrEqual(1);

  // Battery: unplugged pauses, plugged in resumes.
  await sense(page, (s) => s.setCharging(false));
  await expect(page.getByTestId('pause-reason')).toContainText('on battery');
  await expectHeld(page);
  await page.screenshot({ path: 'tests/screenshots/polite-paused-on-battery.png', fullPage: true });
  await sense(page, (s) => s.setCharging(true));
  await expectMiningAgain(page);

  // Hidden tab: paused by default.
  await sense(page, (s) => s.setHidden(true));
  await expect(page.getByTestId('pause-reason')).toContainText('tab is hidden');
  await expectHeld(page);
  await sense(page, (s) => s.setHidden(false));
  await expectMiningAgain(page);

  // ...unless the person chose to keep mining in the background: then the page says how browsers throttle it.
  await page.getByRole('checkbox', { name: 'Keep mining when this tab is hidden' }).check();
  await expect(page.getByTestId('background-note')).toContainText('Browsers slow hidden tabs down');
  await sense(page, (s) => s.setHidden(true));
  await expectMiningAgain(page);
  await expect(page.getByTestId('pause-reason')).toHaveCount(0);
  await sense(page, (s) => s.setHidden(false));

  // Critical CPU pressure: the duty cycle drops to at most 25%, and mining goes on.
  await sense(page, (s) => s.setPressure('critical'));
  await expect(page.getByText('the device reports critical CPU pressure, so Ergon backs off')).toBeVisible();
  await expectMiningAgain(page);
  await page.screenshot({ path: 'tests/screenshots/polite-pressure-backoff.png', fullPage: true });
  // The person may lend it all anyway (on a software GPU, mining is itself the pressure): the full duty again.
  const backOff = page.getByRole('checkbox', { name: 'Back off while the CPU is under pressure' });
  await backOff.uncheck();
  await expect(page.getByText('so Ergon backs off')).toHaveCount(0);
  await expectMiningAgain(page);
  await backOff.check();
  await expect(page.getByText('the device reports critical CPU pressure, so Ergon backs off')).toBeVisible();
  await sense(page, (s) => s.setPressure('nominal'));
  await expect(page.getByText('so Ergon backs off')).toHaveCount(0);

  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', 'idle', { timeout: 120_000 });
});
