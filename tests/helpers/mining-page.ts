// What every Chromium spec that mines does first: open the app, wait for its wallet, press Start, and wait until
// the worker has its GPU (or CPU fallback) and asks for work.
import { expect, type Page } from '@playwright/test';
import { GPU_START_TIMEOUT_MS } from './chromium.ts';

/** Presses Start on a page already showing the app, and waits until it is mining or waiting for work. */
export async function pressStart(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByTestId('phase')).toHaveAttribute('data-phase', /waiting-for-work|mining/, { timeout: GPU_START_TIMEOUT_MS });
}

/** Opens the app at `url` with a wallet ready, and starts mining. */
export async function startMining(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await pressStart(page);
}
