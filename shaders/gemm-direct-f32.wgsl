// C = A · B in f32 for any shape, straight from storage: no workgroup memory, no barriers.
//
// Operands may be halves, as in gemm-direct-vec4-f32.wgsl: `Operand` is then f16, widened to f32 as it is loaded.
//
// Buffers (row-major, tightly packed, any alignment):
//   binding 0  A: M x K Operand   binding 1  B: K x N Operand   binding 2  C: M x N f32
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd
//              (this dispatch computes rows [rowOffset, rowEnd) and columns [colOffset, colEnd) of C)
// Dispatch: (ceil((colEnd - colOffset) / (WG_X * TN)), ceil((rowEnd - rowOffset) / (WG_Y * TM)), 1) workgroups
// of WG_X x WG_Y threads.
//
// Thread (x, y) of the grid computes the TM x TN block of C at rows rowOffset + y * TM + i and columns
// colOffset + x * TN + j: for each k it loads TM values of A and TN of B and does TM x TN multiply-adds from
// registers. The scalar twin of gemm-direct-vec4-f32.wgsl, for shapes whose K or N is not a multiple of 4.
// Rows and columns past the end are clamped to the last one for loading (in bounds, no branch in the loop)
// and never stored.
//
// Unrolled, with `a * b + c` for fma(), for the reasons given in gemm-direct-vec4-f32.wgsl. Template:
// kernel-config.ts replaces the four `const` lines marked `tuned`, then repeats each block between
// `//unroll v < BOUND` and `//end v` BOUND times with {v} replaced by 0, 1, ... (BOUND is TM or TN).

const WG_X: u32 = 8u;  // tuned
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 4u;    // tuned
const TN: u32 = 4u;    // tuned
alias Operand = f32;   // precision

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<Operand>;
@group(0) @binding(1) var<storage, read> B: array<Operand>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = params.rowOffset + gid.y * TM;
  let col0 = params.colOffset + gid.x * TN;
  if (row0 >= params.rowEnd || col0 >= params.colEnd) { return; }

  // Index of row i's first element in A, and column j of B.
  //unroll i < TM
  let rowA{i} = min(row0 + {i}u, params.rowEnd - 1u) * params.K;
  //end i
  //unroll j < TN
  let colB{j} = min(col0 + {j}u, params.colEnd - 1u);
  //end j
  //unroll i < TM
  //unroll j < TN
  var acc{i}_{j}: f32;
  //end j
  //end i

  for (var k = 0u; k < params.K; k++) {
    let bRow = k * params.N;
    //unroll j < TN
    let b{j} = f32(B[bRow + colB{j}]);
    //end j
    //unroll i < TM
    let a{i} = f32(A[rowA{i} + k]);
    //unroll j < TN
    acc{i}_{j} += a{i} * b{j};
    //end j
    //end i
  }

  //unroll i < TM
  if (row0 + {i}u < params.rowEnd) {
    //unroll j < TN
    if (col0 + {j}u < params.colEnd) { C[(row0 + {i}u) * params.N + col0 + {j}u] = acc{i}_{j}; }
    //end j
  }
  //end i
}
