// C = A · B in f32, for K and N multiples of 4, from storage with A shared across each quad of a subgroup.
//
// Buffers (row-major, tightly packed; K % 4 == 0 and N % 4 == 0, so every row starts on a vec4):
//   binding 0  A: M x K as vec4   binding 1  B: K x N as vec4   binding 2  C: M x N as vec4
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd (colOffset and colEnd multiples of 4)
// Dispatch: (ceil((colEnd - colOffset) / (WG_X * TN)), ceil((rowEnd - rowOffset) / (WG_Y * TM)), 1) workgroups
// of WG_X x WG_Y threads. Needs the `subgroups` feature, subgroups of at least 4 lanes, WG_X % 4 == 0, TM % 4 == 0.
//
// As gemm-direct-vec4-f32.wgsl, thread (x, y) computes the TM x TN block of C at rows rowOffset + y * TM + i
// and columns colOffset + x * TN + j. The four lanes of a quad (lanes 4q..4q+3, which hold four neighbouring
// x of one y when subgroups are laid along x) need the same TM rows of A: lane 4q + p loads only rows
// p, p + 4, ..., and each A vector reaches the other three lanes by subgroupShuffle instead of through
// workgroup memory and a barrier. A layout where a quad spans two y would compute a wrong product; the
// autotuner checks every candidate's product before it may be chosen.
// No thread returns early: every lane must reach the shuffles. Rows and columns past the end are clamped to
// the last one for loading and never stored.
//
// The four `const` lines marked `tuned` are replaced from TypeScript (src/miner/gpu/kernel-config.ts).

enable subgroups;

const WG_X: u32 = 8u;  // tuned: multiple of 4
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 4u;    // tuned: multiple of 4
const TN: u32 = 4u;    // tuned: multiple of 4

const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = params.rowOffset + gid.y * TM;
  let col0 = params.colOffset + gid.x * TN;
  let kVecs = params.K / 4u;
  let nVecs = params.N / 4u;
  let quad = lane & ~3u;
  let part = lane & 3u;

  var rowA: array<u32, TM4>;  // this lane's share of the quad's rows: p, p + 4, ...
  for (var r = 0u; r < TM4; r++) { rowA[r] = min(row0 + r * 4u + part, params.rowEnd - 1u) * kVecs; }
  var colB: array<u32, TN4>;
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
    var mine: array<vec4<f32>, TM4>;
    for (var r = 0u; r < TM4; r++) { mine[r] = A[rowA[r] + kv]; }
    for (var i = 0u; i < TM; i++) {
      // Row i of the block was loaded by lane quad + i % 4, as its share r = i / 4.
      let a = subgroupShuffle(mine[i / 4u], quad + i % 4u);
      for (var j = 0u; j < TN4; j++) {
        acc[i][j] += a.x * b0[j] + a.y * b1[j] + a.z * b2[j] + a.w * b3[j];
      }
    }
  }

  if (col0 >= params.colEnd) { return; }
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= params.rowEnd) { break; }
    for (var j = 0u; j < TN4; j++) {
      let col = col0 + j * 4u;
      if (col < params.colEnd) { C[(row * params.N + col) / 4u] = acc[i][j]; }
    }
  }
}
