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

/**
 * How long Start may take to reach the coordinator: a fresh profile first tunes the GEMM kernel, which compiles
 * every candidate on SwiftShader (WebGPU on the CPU). Seen here: 30-70 s when other Chromium runs shared the 2 cores.
 */
export const GPU_START_TIMEOUT_MS = 180_000;
