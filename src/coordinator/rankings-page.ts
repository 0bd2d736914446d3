// The efficiency table as a page a person reads (GET /api/rankings with Accept: text/html): one table per method.
import { METHOD_LABELS, type EnergyMethod } from '../protocol/energy.ts';
import type { EfficiencyTable } from './rankings.ts';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (x: number | null) => (x === null ? '–' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const label = (method: string) => (method in METHOD_LABELS ? METHOD_LABELS[method as EnergyMethod] : method);

export function rankingsPage(table: EfficiencyTable): string {
  const groups = table.groups.map((g) => `
  <h2>${escape(label(g.method))} (${escape(g.method)})${g.estimate ? ': estimates, not measurements' : ''}</h2>
  <table>
    <thead><tr><th scope="col">#</th><th scope="col">Miner</th><th scope="col">Adapter (declared)</th><th scope="col">Units</th><th scope="col">GFLOP/J (self-reported joules)</th>
      <th scope="col">± J</th><th scope="col">GFLOP/s, coordinator's clock</th><th scope="col">GFLOP/s, miner's GPU time (self-reported)</th></tr></thead>
    <tbody>${g.miners.map((m, i) => `
      <tr><td>${i + 1}</td><td><code>${escape(m.minerKey.slice(0, 16))}…</code></td><td>${escape(m.adapter || 'unknown')}</td><td>${m.units}</td><td>${num(m.gflopsPerJoule)}</td>
        <td>${num(m.uncertaintyJoules)}</td><td>${num(m.gflopsMeasured)}</td><td>${num(m.gflopsSelfReported)}</td></tr>`).join('')}
    </tbody>
  </table>
  <table>
    <thead><tr><th scope="col">Adapter model (declared)</th><th scope="col">Miners</th><th scope="col">Units</th><th scope="col">GFLOP/J</th></tr></thead>
    <tbody>${g.adapters.map((a) => `
      <tr><td>${escape(a.adapter || 'unknown')}</td><td>${a.miners}</td><td>${a.units}</td><td>${num(a.gflopsPerJoule)}</td></tr>`).join('')}
    </tbody>
  </table>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ergon: efficiency by method</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:.3rem;text-align:left}</style>
</head><body>
  <h1>Efficiency by energy method</h1>
  <p>Verified work per joule, one table per method: figures of different methods are never ranked together, and
  estimates come after every measurement. Joules are the miners' own claims, checked for plausibility only; pay never
  depends on them. ${table.unmeasuredUnits} verified units carried no energy figure.</p>
  ${groups || '<p>No unit has a plausible energy figure yet.</p>'}
</body></html>`;
}
