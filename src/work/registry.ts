// The kinds of work this build knows, by name: the only place besides each kind's folder that names one.
import { gemmKind } from './gemm/gemm.ts';
import type { AnyWorkKind } from './kind.ts';
import type { ModelCatalog } from './onnx/model.ts';
import { onnxKind } from './onnx/onnx.ts';

export type KindRegistry = ReadonlyMap<string, AnyWorkKind>;

/** A registry of these kinds; a name used twice is a programming error. */
export function kindRegistry(kinds: readonly AnyWorkKind[]): KindRegistry {
  const byName = new Map<string, AnyWorkKind>();
  for (const kind of kinds) {
    if (byName.has(kind.name)) throw new Error(`two kinds of work are named ${kind.name}`);
    byName.set(kind.name, kind);
  }
  return byName;
}

/** Every kind the coordinator serves by default. A new kind adds its line here. */
export const BUILT_IN_KINDS: readonly AnyWorkKind[] = [gemmKind as AnyWorkKind];

export const defaultKinds = (): KindRegistry => kindRegistry(BUILT_IN_KINDS);

/** The kinds that need the coordinator's models (by hash): onnx. */
export const modelKinds = (models: ModelCatalog): readonly AnyWorkKind[] => [onnxKind(models) as AnyWorkKind];
