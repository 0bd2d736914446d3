// C = A · B in f32, tiled through workgroup memory.
//
// Buffers (row-major, tightly packed):
//   binding 0  A: M x K      binding 1  B: K x N      binding 2  C: M x N      binding 3  dims: M, N, K
// Dispatch: (ceil(N / 64), ceil(M / 64), 1) workgroups of 16 x 16 threads.
// Each workgroup computes a 64 x 64 tile of C, stepping through K 16 at a time; each thread computes a
// 4 x 4 block of that tile, rows lid.y + 16 i and columns lid.x + 16 j, so that neighbouring threads read
// neighbouring columns of B and write neighbouring columns of C. Edges are guarded: any M, N, K >= 1 works.

struct Dims { M: u32, N: u32, K: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const TILE_M = 64u;
const TILE_N = 64u;
const TILE_K = 16u;
const WG = 16u;
const PER_THREAD = 4u;
const THREADS = 256u; // WG * WG

var<workgroup> tileA: array<f32, 1024>; // TILE_M * TILE_K
var<workgroup> tileB: array<f32, 1024>; // TILE_K * TILE_N

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wg.y * TILE_M;
  let col0 = wg.x * TILE_N;
  let tid = lid.y * WG + lid.x;
  var acc: array<f32, 16>;

  for (var k0 = 0u; k0 < dims.K; k0 += TILE_K) {
    for (var i = 0u; i < 4u; i++) {
      let idx = tid + i * THREADS;
      let ar = row0 + idx / TILE_K;
      let ac = k0 + idx % TILE_K;
      var a = 0.0;
      if (ar < dims.M && ac < dims.K) { a = A[ar * dims.K + ac]; }
      tileA[idx] = a;
      let br = k0 + idx / TILE_N;
      let bc = col0 + idx % TILE_N;
      var b = 0.0;
      if (br < dims.K && bc < dims.N) { b = B[br * dims.N + bc]; }
      tileB[idx] = b;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < TILE_K; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < PER_THREAD; i++) { a[i] = tileA[(lid.y + i * WG) * TILE_K + kk]; }
      for (var j = 0u; j < PER_THREAD; j++) { b[j] = tileB[kk * TILE_N + lid.x + j * WG]; }
      for (var i = 0u; i < PER_THREAD; i++) {
        for (var j = 0u; j < PER_THREAD; j++) {
          acc[i * PER_THREAD + j] = fma(a[i], b[j], acc[i * PER_THREAD + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < PER_THREAD; i++) {
    let r = row0 + lid.y + i * WG;
    for (var j = 0u; j < PER_THREAD; j++) {
      let c = col0 + lid.x + j * WG;
      if (r < dims.M && c < dims.N) { C[r * dims.N + c] = acc[i * PER_THREAD + j]; }
    }
  }
}
