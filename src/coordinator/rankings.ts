// The network's efficiency table, pure: verified ops per joule per miner, grouped by energy method. Figures of
// different methods are never ranked together, estimates come after every measured group, and throughput is the
// coordinator's own lease-to-result time, with the miner's self-reported GPU time beside it, marked as such.
import { ENERGY_METHODS } from '../protocol/energy.ts';
import type { EfficiencyRow } from './ledger/ledger.ts';

export interface RankedMiner {
  minerKey: string;
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
        units: r.units,
        ops: r.ops.toString(),
        joules: r.joules,
        uncertaintyJoules: r.uncertaintyJoules,
        gflopsPerJoule: Number(r.ops) / r.joules / 1e9,
        gflopsMeasured: r.wallSeconds > 0 ? Number(r.ops) / r.wallSeconds / 1e9 : null,
        gflopsSelfReported: r.gpuSeconds > 0 ? Number(r.ops) / r.gpuSeconds / 1e9 : null,
      }))
      .sort((a, b) => b.gflopsPerJoule - a.gflopsPerJoule);
    if (miners.length > 0) groups.push({ method, estimate: method === 'estimate', selfReported: true, miners });
  }
  const unmeasuredUnits = rows.filter((r) => r.joulesSource === 'none' || r.joules <= 0).reduce((n, r) => n + r.units, 0);
  return { groups, unmeasuredUnits };
}
