// C = A · B in f32, for K and N multiples of 4, straight from storage: no workgroup memory, no barriers.
//
// Buffers (row-major, tightly packed; K % 4 == 0 and N % 4 == 0, so every row starts on a vec4):
//   binding 0  A: M x K as vec4   binding 1  B: K x N as vec4   binding 2  C: M x N as vec4
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd (colOffset and colEnd multiples of 4)
// Dispatch: (ceil((colEnd - colOffset) / (WG_X * TN)), ceil((rowEnd - rowOffset) / (WG_Y * TM)), 1) workgroups
// of WG_X x WG_Y threads.
//
// Thread (x, y) of the grid computes the TM x TN block of C at rows rowOffset + y * TM + i and columns
// colOffset + x * TN + j. Each step of k4 it loads one vec4 of A per row (4 consecutive k) and 4 x TN / 4
// vec4 of B (4 rows of B, its TN columns), and does TM x TN x 4 multiply-adds from registers. Neighbouring
// threads read the same A and B vectors, which the caches serve. Why no workgroup memory: SwiftShader runs
// a barrier as a fibre switch per thread, and measured 3-4x slower with a shared-memory tile than without.
// Rows and columns past the end are clamped to the last one for loading (in bounds, no branch in the loop)
// and never stored.
//
// The four `const` lines marked `tuned` are replaced from TypeScript (src/miner/gpu/kernel-config.ts).

const WG_X: u32 = 8u;  // tuned
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 4u;    // tuned
const TN: u32 = 4u;    // tuned: multiple of 4

const TN4: u32 = TN / 4u;

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = params.rowOffset + gid.y * TM;
  let col0 = params.colOffset + gid.x * TN;
  if (row0 >= params.rowEnd || col0 >= params.colEnd) { return; }
  let kVecs = params.K / 4u;
  let nVecs = params.N / 4u;

  var rowA: array<u32, TM>;   // index of the row's first vec4 in A
  for (var i = 0u; i < TM; i++) { rowA[i] = min(row0 + i, params.rowEnd - 1u) * kVecs; }
  var colB: array<u32, TN4>;  // index of the column's vec4 within a row of B
  for (var j = 0u; j < TN4; j++) { colB[j] = min(col0 / 4u + j, params.colEnd / 4u - 1u); }

  var acc: array<array<vec4<f32>, TN4>, TM>;
  for (var kv = 0u; kv < kVecs; kv++) {
    let bRow = kv * 4u * nVecs;
    var b0: array<vec4<f32>, TN4>;
    var b1: array<vec4<f32>, TN4>;
    var b2: array<vec4<f32>, TN4>;
    var b3: array<vec4<f32>, TN4>;
    for (var j = 0u; j < TN4; j++) {
      b0[j] = B[bRow + colB[j]];
      b1[j] = B[bRow + nVecs + colB[j]];
      b2[j] = B[bRow + 2u * nVecs + colB[j]];
      b3[j] = B[bRow + 3u * nVecs + colB[j]];
    }
    for (var i = 0u; i < TM; i++) {
      let a = A[rowA[i] + kv];
      for (var j = 0u; j < TN4; j++) {
        acc[i][j] += a.x * b0[j] + a.y * b1[j] + a.z * b2[j] + a.w * b3[j];
      }
    }
  }

  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= params.rowEnd) { break; }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + j * 4u;
      if (col < params.colEnd) { C[(row * params.N + col) / 4u] = acc[i][j]; }
    }
  }
}
