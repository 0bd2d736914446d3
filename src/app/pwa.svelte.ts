// The service worker's state for the page: offline-ready, and a new version waiting for the person to accept it.
/// <reference types="vite-plugin-pwa/vanillajs" />
import { registerSW } from 'virtual:pwa-register';

class PwaState {
  /** The shell is cached: the page opens without a network. */
  offlineReady = $state(false);
  /** A new version is installed and waits; the page asks before switching (registerType 'prompt'). */
  needRefresh = $state(false);
  error = $state('');
  private updateSW: ((reloadPage?: boolean) => Promise<void>) | undefined;

  register(): void {
    if (this.updateSW || !('serviceWorker' in navigator)) return;
    this.updateSW = registerSW({
      onOfflineReady: () => (this.offlineReady = true),
      onNeedRefresh: () => (this.needRefresh = true),
      onRegisterError: (err: unknown) => (this.error = `The offline copy could not be installed: ${String(err)}`),
    });
  }

  /** Activates the waiting version and reloads into it. */
  async update(): Promise<void> {
    await this.updateSW?.(true);
  }

  dismiss(): void {
    this.needRefresh = false;
    this.offlineReady = false;
  }
}

export const pwa = new PwaState();
