// C = A · B with f16 operands and f32 accumulation, for K and N multiples of 4, straight from storage: the f16
// twin of gemm-direct-vec4-f32.wgsl (same blocking, same template), loading half the bytes.
//
// Mixed precision, as tensor cores do it: A and B are IEEE halves; each is widened to f32 as it is loaded, and
// every multiply and add is in f32. A product of two halves (11-bit significands) has at most 22 significant bits,
// so it is exact in f32 (24): the only rounding is f32 summation. C is therefore an f32 GEMM of the f16 operands,
// and a Freivalds check against the f16-rounded operands holds to the same tolerance as for f32 work. (The cost of
// f16 is in the operands, rounded to 11 bits before the unit is sent: about 1e-3 relative, not the kernel's.)
// WGSL lets a device flush subnormal halves (|x| < 2^-14) to zero; a flushed term moves its sum by under 2^-14 |b|.
//
// Buffers (row-major, tightly packed; K % 4 == 0 and N % 4 == 0, so every row starts on a vec4<f16>, 8 bytes):
//   binding 0  A: M x K as vec4<f16>   binding 1  B: K x N as vec4<f16>   binding 2  C: M x N as vec4<f32>
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd (colOffset and colEnd multiples of 4)
// In storage, array<vec4<f16>> has an 8-byte stride and alignment (no 16-byte rounding, which only uniform
// buffers have), so element i is halves 4i .. 4i + 3.
// Dispatch: (ceil((colEnd - colOffset) / (WG_X * TN)), ceil((rowEnd - rowOffset) / (WG_Y * TM)), 1) workgroups
// of WG_X x WG_Y threads.
//
// Thread (x, y) of the grid computes the TM x TN block of C at rows rowOffset + y * TM + i and columns
// colOffset + x * TN + j, exactly as in gemm-direct-vec4-f32.wgsl, which gives the reasons for its shape (no
// workgroup memory, unrolled, `a * b + c` for fma()). Needs the `shader-f16` feature.
//
// Template: kernel-config.ts replaces the four `const` lines marked `tuned`, then repeats each block between
// `//unroll v < BOUND` and `//end v` BOUND times with {v} replaced by 0, 1, ... (BOUND is TM or TN4 = TN / 4;
// blocks nest). Only the expanded text is WGSL.

enable f16;

const WG_X: u32 = 8u;  // tuned
const WG_Y: u32 = 8u;  // tuned
const TM: u32 = 8u;    // tuned
const TN: u32 = 16u;   // tuned: multiple of 4

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<vec4<f16>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f16>>;
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
