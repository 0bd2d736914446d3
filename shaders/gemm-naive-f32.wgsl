// C = A · B in f32, the naive way: one thread per element of C, no shared memory, no register blocking.
// The benchmark's floor (bench/gemm): what a first WebGPU matrix multiply looks like.
//
// Buffers (row-major, tightly packed):
//   binding 0  A: M x K      binding 1  B: K x N      binding 2  C: M x N      binding 3  dims: M, N, K
// Dispatch: (ceil(N / WG_X), ceil(M / WG_Y), 1) workgroups of WG_X x WG_Y threads.
// Thread (x, y) of the grid computes C[y][x] as one dot product of row y of A and column x of B, summed in
// order of k with fma; threads outside M x N return at once.

struct Dims { M: u32, N: u32, K: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.y;
  let col = gid.x;
  if (row >= dims.M || col >= dims.N) { return; }
  var acc = 0.0;
  for (var p = 0u; p < dims.K; p++) {
    acc = fma(A[row * dims.K + p], B[p * dims.N + col], acc);
  }
  C[row * dims.N + col] = acc;
}
