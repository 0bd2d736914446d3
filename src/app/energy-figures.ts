// Ops per joule and credits per kWh, pure: figures are grouped by method and never added across methods.
import { METHOD_LABELS, type EnergyMethod, type UnitEnergy } from '../protocol/energy.ts';

export interface MethodFigure {
  method: EnergyMethod;
  label: string;
  estimate: boolean;
  units: number;
  joules: number;
  /** Uncertainty of `joules`, the units' added in quadrature (their errors taken as independent). */
  uncertaintyJoules: number;
  gflopsPerJoule: number;
  /** Relative uncertainty of gflopsPerJoule, the same as that of joules. */
  relativeUncertainty: number;
}

/** Per method, in the order given by `methods` (best first): verified or computed ops over joules. */
export function figuresByMethod(units: readonly { ops: bigint; energy?: UnitEnergy }[]): MethodFigure[] {
  const groups = new Map<EnergyMethod, { units: number; ops: number; joules: number; variance: number }>();
  for (const u of units) {
    if (!u.energy || u.energy.joules <= 0) continue;
    const g = groups.get(u.energy.method) ?? { units: 0, ops: 0, joules: 0, variance: 0 };
    g.units++;
    g.ops += Number(u.ops);
    g.joules += u.energy.joules;
    g.variance += u.energy.uncertaintyJoules ** 2;
    groups.set(u.energy.method, g);
  }
  return (Object.keys(METHOD_LABELS) as EnergyMethod[]).flatMap((method) => {
    const g = groups.get(method);
    if (!g) return [];
    const uncertaintyJoules = Math.sqrt(g.variance);
    return [{
      method, label: METHOD_LABELS[method], estimate: method === 'estimate', units: g.units, joules: g.joules, uncertaintyJoules,
      gflopsPerJoule: g.ops / g.joules / 1e9, relativeUncertainty: uncertaintyJoules / g.joules,
    }];
  });
}

/** Joules in a kilowatt-hour. */
export const JOULES_PER_KWH = 3.6e6;

/** Credits earned per kWh spent, from signed receipts of one method: micro-credits over joules. */
export function creditsPerKwh(receipts: readonly { microCredits: bigint; joules: number }[]): number | null {
  const joules = receipts.reduce((s, r) => s + r.joules, 0);
  if (joules <= 0) return null;
  const credits = Number(receipts.reduce((s, r) => s + r.microCredits, 0n)) / 1e6;
  return (credits / joules) * JOULES_PER_KWH;
}
