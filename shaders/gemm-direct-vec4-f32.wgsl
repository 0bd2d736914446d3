// C = A · B in f32, for K and N multiples of 4, straight from storage: no workgroup memory, no barriers.
//
// Operands may be halves: kernel-config.ts then enables f16 and sets `Operand` to f16 (needs `shader-f16`). Each
// value is widened to f32 as it is loaded and every multiply and add stays in f32; a product of two halves (11-bit
// significands) is exact in f32 (24), so C is an f32 GEMM of the f16 operands and a Freivalds check against them
// holds to f32's tolerance. Halves halve the bytes loaded; in storage array<vec4<f16>> has an 8-byte stride.
// WGSL lets a device flush subnormal halves (|x| < 2^-14) to zero: the coordinator sends none (halves.ts).
//
// Buffers (row-major, tightly packed; K % 4 == 0 and N % 4 == 0, so every row starts on a vec4):
//   binding 0  A: M x K as vec4<Operand>   binding 1  B: K x N as vec4<Operand>   binding 2  C: M x N as vec4<f32>
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd (colOffset and colEnd multiples of 4)
// Dispatch: (ceil((colEnd - colOffset) / (WG_X * TN)), ceil((rowEnd - rowOffset) / (WG_Y * TM)), 1) workgroups
// of WG_X x WG_Y threads.
//
// Thread (x, y) of the grid computes the TM x TN block of C at rows rowOffset + y * TM + i and columns
// colOffset + x * TN + j. Each step of kv (4 consecutive k) it loads one vec4 of A per row and 4 x TN / 4 vec4
// of B (4 rows of B, its TN columns), and does TM x TN x 4 multiply-adds from registers. Neighbouring threads
// read the same A and B vectors, which the caches serve. Rows and columns past the end are clamped to the last
// one for loading (in bounds, no branch in the loop) and never stored.
//
// Why no workgroup memory: SwiftShader runs a barrier as a switch between every thread of the workgroup, and
// ran the tiled kernels 3-5x slower than this one. Why unrolled: SwiftShader does not unroll loops, and a
// private array indexed by a loop variable becomes a per-lane gather and scatter on every use; with the loops
// over rows and columns unrolled into named values this kernel ran 3.8x faster (8 x 16 block, 512^3).
// Why `a * b + c` and not fma(): SwiftShader's Subzero backend calls std::fma once per lane.
//
// Template: kernel-config.ts replaces the four `const` lines marked `tuned`, then repeats each block between
// `//unroll v < BOUND` and `//end v` BOUND times with {v} replaced by 0, 1, ... (BOUND is TM or TN4 = TN / 4;
// blocks nest). Only the expanded text is WGSL.

const WG_X: u32 = 8u;  // tuned
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 8u;    // tuned
const TN: u32 = 16u;   // tuned: multiple of 4
alias Operand = f32;   // precision

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<vec4<Operand>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<Operand>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = params.rowOffset + gid.y * TM;
  let col0 = params.colOffset + gid.x * TN;
  if (row0 >= params.rowEnd || col0 >= params.colEnd) { return; }
  let kVecs = params.K / 4u;
  let nVecs = params.N / 4u;

  // Index of row i's first vec4 in A, and of column vector j's vec4 within a row of B.
  //unroll i < TM
  let rowA{i} = min(row0 + {i}u, params.rowEnd - 1u) * kVecs;
  //end i
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
    let b0_{j} = vec4<f32>(B[bRow + colB{j}]);
    let b1_{j} = vec4<f32>(B[bRow + nVecs + colB{j}]);
    let b2_{j} = vec4<f32>(B[bRow + 2u * nVecs + colB{j}]);
    let b3_{j} = vec4<f32>(B[bRow + 3u * nVecs + colB{j}]);
    //end j
    //unroll i < TM
    let a{i} = vec4<f32>(A[rowA{i} + kv]);
    //unroll j < TN4
    acc{i}_{j} += a{i}.x * b0_{j} + a{i}.y * b1_{j} + a{i}.z * b2_{j} + a{i}.w * b3_{j};
    //end j
    //end i
  }

  //unroll i < TM
  if (row0 + {i}u < params.rowEnd) {
    //unroll j < TN4
    if (col0 + {j}u * 4u < params.colEnd) { C[((row0 + {i}u) * params.N + col0 + {j}u * 4u) / 4u] = acc{i}_{j}; }
    //end j
  }
  //end i
}
