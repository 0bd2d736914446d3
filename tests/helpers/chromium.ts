// Where the tests find Chromium, and the flags that give it WebGPU headless (see shared/NOTES-webgpu.md).
import { existsSync } from 'node:fs';

export const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`Chromium not found at ${path}. Install it (as root: apt-get install -y chromium) or set CHROMIUM_PATH.`);
  }
  return path;
}
