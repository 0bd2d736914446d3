// Ambient types for the bench page's modules: WebGPU and Vite's `?raw` and import.meta.glob.
/// <reference types="@webgpu/types" />
/// <reference types="vite/client" />
