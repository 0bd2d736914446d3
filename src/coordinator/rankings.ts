// The network's efficiency table, pure: verified ops per joule per miner, grouped by energy method. Figures of
// different methods are never ranked together, estimates come after every measured group, and throughput is the
// coordinator's own lease-to-result time, with the miner's self-reported GPU time beside it, marked as such.
import { ENERGY_METHODS } from '../protocol/energy.ts';
import type { AdapterInfo } from '../protocol/messages.ts';
import type { EfficiencyRow } from './ledger/ledger.ts';

/** The adapter model a miner declared, as one line: vendor and description (or architecture). Self-reported. */
export function adapterModel(adapter: AdapterInfo): string {
  return `${adapter.vendor} ${adapter.description || adapter.architecture || adapter.device}`.trim().slice(0, 200);
}

export interface RankedMiner {
  minerKey: string;
  /** The adapter model it declared (self-reported); a miner on two adapters has a row for each. */
  adapter: string;
  units: number;
  ops: string;
  joules: number;
  uncertaintyJoules: number;
  gflopsPerJoule: number;
  /** Verified ops over the coordinator's seconds from lease to result (includes transfers and queueing). */
  gflopsMeasured: number | null;
  /** Verified ops over the GPU seconds the miner reported: self-reported. */
  gflopsSelfReported: number | null;
}

export interface MethodGroup {
  method: string;
  /** True for 'estimate': never ranked with a measurement. */
  estimate: boolean;
  /** The joules are the miner's own claims, checked for plausibility only (every method is, today). */
  selfReported: true;
  miners: RankedMiner[];
  /** The same work summed per declared adapter model, ranked the same way. */
  adapters: { adapter: string; miners: number; units: number; gflopsPerJoule: number }[];
}

export interface EfficiencyTable {
  groups: MethodGroup[];
  /** Verified units that carried no energy figure. */
  unmeasuredUnits: number;
}

export function efficiencyTable(rows: readonly EfficiencyRow[]): EfficiencyTable {
  const groups: MethodGroup[] = [];
  // ENERGY_METHODS is best first and ends with 'estimate'; 'probe' (old receipts) sits just before the estimate.
  const order = [...ENERGY_METHODS.filter((m) => m !== 'estimate'), 'probe', 'estimate'];
  for (const method of order) {
    const miners = rows
      .filter((r) => r.joulesSource === method && r.joules > 0)
      .map((r): RankedMiner => ({
        minerKey: r.minerKey,
        adapter: r.adapter,
        units: r.units,
        ops: r.ops.toString(),
        joules: r.joules,
        uncertaintyJoules: r.uncertaintyJoules,
        gflopsPerJoule: Number(r.ops) / r.joules / 1e9,
        gflopsMeasured: r.wallSeconds > 0 ? Number(r.ops) / r.wallSeconds / 1e9 : null,
        gflopsSelfReported: r.gpuSeconds > 0 ? Number(r.ops) / r.gpuSeconds / 1e9 : null,
      }))
      .sort((a, b) => b.gflopsPerJoule - a.gflopsPerJoule);
    if (miners.length > 0) groups.push({ method, estimate: method === 'estimate', selfReported: true, miners, adapters: byAdapter(rows.filter((r) => r.joulesSource === method && r.joules > 0)) });
  }
  const unmeasuredUnits = rows.filter((r) => r.joulesSource === 'none' || r.joules <= 0).reduce((n, r) => n + r.units, 0);
  return { groups, unmeasuredUnits };
}

function byAdapter(rows: readonly EfficiencyRow[]): MethodGroup['adapters'] {
  const sums = new Map<string, { miners: Set<string>; units: number; ops: number; joules: number }>();
  for (const r of rows) {
    const sum = sums.get(r.adapter) ?? { miners: new Set(), units: 0, ops: 0, joules: 0 };
    sum.miners.add(r.minerKey);
    sum.units += r.units;
    sum.ops += Number(r.ops);
    sum.joules += r.joules;
    sums.set(r.adapter, sum);
  }
  return [...sums].map(([adapter, s]) => ({ adapter, miners: s.miners.size, units: s.units, gflopsPerJoule: s.ops / s.joules / 1e9 }))
    .sort((a, b) => b.gflopsPerJoule - a.gflopsPerJoule);
}
