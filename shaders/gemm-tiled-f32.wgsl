// C = A · B in f32: workgroup-memory tiles, register blocking and double-buffered K tiles.
//
// Buffers (row-major, tightly packed, any alignment):
//   binding 0  A: M x K      binding 1  B: K x N      binding 2  C: M x N
//   binding 3  params: M, N, K, rowOffset, rowEnd, colOffset, colEnd
//              (this dispatch computes rows [rowOffset, rowEnd) and columns [colOffset, colEnd) of C)
// Dispatch: (ceil((colEnd - colOffset) / TILE_N), ceil((rowEnd - rowOffset) / TILE_M), 1) workgroups of
// WG_X x WG_Y threads.
//
// Each workgroup computes a TILE_M x TILE_N tile of C, stepping through K by TILE_K. Each thread computes a
// TM x TN block in registers: rows ty * TM + i and columns tx * TN + j of the tile. Tiles of A are stored
// transposed and both tiles as vec4, so a thread reads its TM values of A and TN values of B as TM / 4 and
// TN / 4 vector loads per step of k. While the workgroup computes on one pair of tiles, every thread has
// already fetched its share of the next pair into registers (double buffering), so one barrier a step suffices.
//
// The five `const` lines marked `tuned` are replaced from TypeScript (src/miner/gpu/kernel-config.ts):
// WGSL allows override-sized arrays only in workgroup memory, and the register arrays need them too.

const WG_X: u32 = 16u;   // tuned
const WG_Y: u32 = 16u;   // tuned
const TM: u32 = 4u;      // tuned: multiple of 4
const TN: u32 = 4u;      // tuned: multiple of 4
const TILE_K: u32 = 16u; // tuned

const TILE_M: u32 = WG_Y * TM;
const TILE_N: u32 = WG_X * TN;
const THREADS: u32 = WG_X * WG_Y;
const LOADS_A: u32 = TILE_M * TILE_K / THREADS;
const LOADS_B: u32 = TILE_K * TILE_N / THREADS;

struct Params { M: u32, N: u32, K: u32, rowOffset: u32, rowEnd: u32, colOffset: u32, colEnd: u32 }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// [buffer * TILE_K + k][m / 4] holds A[row0 + m][k0 + k] for m in 4 consecutive rows.
var<workgroup> tileA: array<array<vec4<f32>, TILE_M / 4u>, 2u * TILE_K>;
// [buffer * TILE_K + k][n / 4] holds B[k0 + k][col0 + n] for n in 4 consecutive columns.
var<workgroup> tileB: array<array<vec4<f32>, TILE_N / 4u>, 2u * TILE_K>;

fn loadA(row: u32, k: u32) -> f32 {
  if (row < params.rowEnd && k < params.K) { return A[row * params.K + k]; }
  return 0.0;
}

fn loadB(k: u32, col: u32) -> f32 {
  if (k < params.K && col < params.colEnd) { return B[k * params.N + col]; }
  return 0.0;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = params.rowOffset + wg.y * TILE_M;
  let col0 = params.colOffset + wg.x * TILE_N;
  let tid = lid.y * WG_X + lid.x;
  let tileCount = (params.K + TILE_K - 1u) / TILE_K;

  var nextA: array<f32, LOADS_A>;
  var nextB: array<f32, LOADS_B>;
  var acc: array<array<vec4<f32>, TN / 4u>, TM>;

  // Consecutive threads read consecutive k of A's rows and consecutive columns of B's rows.
  for (var i = 0u; i < LOADS_A; i++) {
    let idx = tid + i * THREADS;
    nextA[i] = loadA(row0 + idx / TILE_K, idx % TILE_K);
  }
  for (var i = 0u; i < LOADS_B; i++) {
    let idx = tid + i * THREADS;
    nextB[i] = loadB(idx / TILE_N, col0 + idx % TILE_N);
  }
  for (var i = 0u; i < LOADS_A; i++) {
    let idx = tid + i * THREADS;
    let m = idx / TILE_K;
    tileA[idx % TILE_K][m / 4u][m % 4u] = nextA[i];
  }
  for (var i = 0u; i < LOADS_B; i++) {
    let idx = tid + i * THREADS;
    let n = idx % TILE_N;
    tileB[idx / TILE_N][n / 4u][n % 4u] = nextB[i];
  }
  workgroupBarrier();

  for (var t = 0u; t < tileCount; t++) {
    let current = (t % 2u) * TILE_K;
    let hasNext = t + 1u < tileCount;
    if (hasNext) {
      let k0 = (t + 1u) * TILE_K;
      for (var i = 0u; i < LOADS_A; i++) {
        let idx = tid + i * THREADS;
        nextA[i] = loadA(row0 + idx / TILE_K, k0 + idx % TILE_K);
      }
      for (var i = 0u; i < LOADS_B; i++) {
        let idx = tid + i * THREADS;
        nextB[i] = loadB(k0 + idx / TILE_N, col0 + idx % TILE_N);
      }
    }

    for (var k = 0u; k < TILE_K; k++) {
      var a: array<vec4<f32>, TM / 4u>;
      var b: array<vec4<f32>, TN / 4u>;
      for (var i = 0u; i < TM / 4u; i++) { a[i] = tileA[current + k][lid.y * (TM / 4u) + i]; }
      for (var j = 0u; j < TN / 4u; j++) { b[j] = tileB[current + k][lid.x * (TN / 4u) + j]; }
      for (var i = 0u; i < TM; i++) {
        let ai = vec4<f32>(a[i / 4u][i % 4u]);
        for (var j = 0u; j < TN / 4u; j++) { acc[i][j] += ai * b[j]; }
      }
    }

    if (hasNext) {
      let following = TILE_K - current; // the other buffer
      for (var i = 0u; i < LOADS_A; i++) {
        let idx = tid + i * THREADS;
        let m = idx / TILE_K;
        tileA[following + idx % TILE_K][m / 4u][m % 4u] = nextA[i];
      }
      for (var i = 0u; i < LOADS_B; i++) {
        let idx = tid + i * THREADS;
        let n = idx % TILE_N;
        tileB[following + idx / TILE_N][n / 4u][n % 4u] = nextB[i];
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let row = row0 + lid.y * TM + i;
    if (row >= params.rowEnd) { break; }
    for (var j = 0u; j < TN / 4u; j++) {
      let col = col0 + lid.x * TN + j * 4u;
      for (var c = 0u; c < 4u; c++) {
        if (col + c < params.colEnd) { C[row * params.N + col + c] = acc[i][j][c]; }
      }
    }
  }
}
