// The kinds this miner runs, by name; a new kind adds its line here and its folder beside gemm.ts.
import { gemmMinerKind } from './gemm.ts';
import { onnxMinerKind } from './onnx.ts';
import type { MinerKind } from './kind.ts';

export const MINER_KINDS: ReadonlyMap<string, MinerKind> = new Map([gemmMinerKind, onnxMinerKind].map((kind) => [kind.name, kind]));
