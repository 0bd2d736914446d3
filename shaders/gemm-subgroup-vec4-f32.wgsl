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
// the last one for loading and never stored. Unrolled, with `a * b + c` for fma(), for the reasons given in
// gemm-direct-vec4-f32.wgsl.
//
// Template: kernel-config.ts replaces the four `const` lines marked `tuned`, then repeats each block between
// `//unroll v < BOUND` and `//end v` BOUND times with {v} replaced by 0, 1, ... (BOUND is TM, TM4 = TM / 4 or
// TN4 = TN / 4; blocks nest). Only the expanded text is WGSL.

enable subgroups;

const WG_X: u32 = 8u;  // tuned: multiple of 4
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 4u;    // tuned: multiple of 4
const TN: u32 = 4u;    // tuned: multiple of 4

const TM4: u32 = TM / 4u;

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

  // This lane's share r of the quad's rows is row p + 4r; colB{j} indexes column vector j within a row of B.
  //unroll r < TM4
  let rowA{r} = min(row0 + {r}u * 4u + part, params.rowEnd - 1u) * kVecs;
  //end r
  //unroll j < TN4
  let colB{j} = min(col0 / 4u + {j}u, params.colEnd / 4u - 1u);
  //end j
  //unroll i < TM
  //unroll j < TN4
  var acc{i}_{j}: vec4<f32>;
  //end j
  //end i

  for (var kv = 0u; kv < kVecs; kv++) {
    let bRow = kv * 4u * nVecs;
    //unroll j < TN4
    let b0_{j} = B[bRow + colB{j}];
    let b1_{j} = B[bRow + nVecs + colB{j}];
    let b2_{j} = B[bRow + 2u * nVecs + colB{j}];
    let b3_{j} = B[bRow + 3u * nVecs + colB{j}];
    //end j
    var mine: array<vec4<f32>, TM4>;
    //unroll r < TM4
    mine[{r}] = A[rowA{r} + kv];
    //end r
    //unroll i < TM
    // Row i of the block was loaded by lane quad + i % 4, as its share i / 4 (constant indices: no gather).
    let a{i} = subgroupShuffle(mine[{i}u / 4u], quad + {i}u % 4u);
    //unroll j < TN4
    acc{i}_{j} += a{i}.x * b0_{j} + a{i}.y * b1_{j} + a{i}.z * b2_{j} + a{i}.w * b3_{j};
    //end j
    //end i
  }

  if (col0 >= params.colEnd) { return; }
  //unroll i < TM
  if (row0 + {i}u < params.rowEnd) {
    //unroll j < TN4
    if (col0 + {j}u * 4u < params.colEnd) { C[((row0 + {i}u) * params.N + col0 + {j}u * 4u) / 4u] = acc{i}_{j}; }
    //end j
  }
  //end i
}
