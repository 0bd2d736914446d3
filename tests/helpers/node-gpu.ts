// A WebGPU device in Node, from Dawn's bindings (npm `webgpu`), got through the miner's own acquireDevice().
import { create, globals } from 'webgpu';
import { afterAll, beforeAll } from 'vitest';
import { acquireDevice, NoWebGpuError, type AcquiredDevice } from '../../src/miner/gpu/device.ts';

// At import, before any module that reads them when it loads (gemm.ts builds its usage table from GPUBufferUsage).
Object.assign(globalThis, globals);

/** What gives this lane its adapter on Debian 12: Mesa's lavapipe from backports (Dawn rejects the 22.3 in bookworm). */
export const LAVAPIPE_INSTALL = [
  'echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  'apt-get update',
  'apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
];

/** Installs a `navigator.gpu` for acquireDevice(), and returns what it acquired: the device, adapter info and the adapter's features. */
export async function acquireNodeDevice(): Promise<AcquiredDevice> {
  const gpu = create([]);
  // Node 20 has no navigator; later versions have one without gpu.
  if (typeof globalThis.navigator === 'undefined') Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  else Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true });
  try {
    return await acquireDevice();
  } catch (err) {
    if (!(err instanceof NoWebGpuError)) throw err;
    throw new Error(
      'Dawn (npm `webgpu`) found no WebGPU adapter. These tests run on Mesa\'s lavapipe, Vulkan on the CPU, Mesa 25 or later. ' +
        `On Debian 12, as root (or run \`node tests/preflight.mjs\` as root, which does it):\n  ${LAVAPIPE_INSTALL.join('\n  ')}`,
      { cause: err },
    );
  }
}

/**
 * Destroys the device and drops `navigator.gpu`: Dawn's instance keeps Node alive for as long as something refers
 * to it (https://issues.chromium.org/issues/387965810).
 */
export function releaseNodeDevice(acquired: AcquiredDevice | undefined): void {
  acquired?.device.destroy();
  Reflect.deleteProperty(globalThis.navigator, 'gpu');
}

/** A device for the tests of one file: acquired before them, released after; the getter throws if that failed. */
export function useNodeDevice(): () => AcquiredDevice {
  let acquired: AcquiredDevice | undefined;
  beforeAll(async () => {
    acquired = await acquireNodeDevice();
  });
  afterAll(() => releaseNodeDevice(acquired));
  return () => {
    if (!acquired) throw new Error('no device: acquiring it failed');
    return acquired;
  };
}
