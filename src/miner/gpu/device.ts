// Acquires a WebGPU device with the adapter's own storage limits, and describes the adapter.
import type { AdapterInfo } from '../../protocol/messages.ts';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: AdapterInfo;
  features: string[];
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupsPerDimension: number };
}

export class NoWebGpuError extends Error {}

export async function acquireDevice(): Promise<AcquiredDevice> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new NoWebGpuError('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoWebGpuError('WebGPU found no adapter: the GPU may be blocklisted or disabled');
  // Device defaults (128 MiB bindings) are lower than most adapters allow; a 4096-deep unit needs more.
  // Subgroups let a kernel share loads between lanes without workgroup memory (gemm-subgroup-vec4-f32.wgsl).
  // Timestamp queries time each dispatch on the GPU's own clock. shader-f16 runs units with f16 operands.
  const wanted: GPUFeatureName[] = ['subgroups', 'timestamp-query', 'shader-f16'];
  const requiredFeatures = wanted.filter((feature) => adapter.features.has(feature));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  const info = adapter.info;
  return {
    device,
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: info.isFallbackAdapter ?? false, // older browsers lack the field
    },
    features: [...adapter.features].sort(),
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
    },
  };
}
