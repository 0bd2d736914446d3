// The shapes every GEMM kernel must get right, shared by the browser and Node kernel tests: [m, k, n].
// 1, primes, K = 1 and edges that do not divide the tiles; odd K or N take the scalar variant, multiples of 4 vec4.
export const ODD_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1], [1, 7, 3], [67, 45, 33], [131, 97, 257], [3, 200, 5], [1, 4096, 37], [33, 1, 65], [7, 1, 4],
  [1, 4, 4], [68, 36, 44], [64, 64, 64], [130, 96, 260], [5, 4, 132], [9, 8, 4],
];
