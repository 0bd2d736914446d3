// Energy figures as they cross boundaries: the methods joules are measured by, a unit's energy in a result, and the
// local probe's readings as the page fetches them. Pure: the probe (Node), the page and the coordinator share it.
import * as v from 'valibot';

/**
 * How a figure's joules were obtained, best first. Counters integrate in hardware (NVML's energy counter, RAPL's
 * energy_uj, hwmon energy*_input); power methods are samples of watts integrated over time by the probe; `meter` is
 * a wall meter's watts typed in by the person; `battery` is the Battery Status API's discharge times the capacity
 * the person gave; `estimate` is the adapter's board power times busy time, never a measurement.
 */
export const ENERGY_METHODS = ['nvml-energy', 'rapl', 'hwmon-energy', 'nvml-power', 'hwmon-power', 'meter', 'battery', 'estimate'] as const;
export const EnergyMethod = v.picklist(ENERGY_METHODS);
export type EnergyMethod = v.InferOutput<typeof EnergyMethod>;

/** Methods a local probe measures with (the others come from the page). */
export const PROBE_METHODS = ['nvml-energy', 'rapl', 'hwmon-energy', 'nvml-power', 'hwmon-power'] as const satisfies readonly EnergyMethod[];
export type ProbeMethod = (typeof PROBE_METHODS)[number];

/** A label a person reads beside a figure. */
export const METHOD_LABELS: Record<EnergyMethod, string> = {
  'nvml-energy': 'NVIDIA energy counter',
  rapl: 'RAPL energy counter',
  'hwmon-energy': 'hwmon energy counter',
  'nvml-power': 'NVIDIA power samples',
  'hwmon-power': 'hwmon power samples',
  meter: 'wall meter, typed in',
  battery: 'battery discharge',
  estimate: 'estimate from board power',
};

const Joules = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e9));

/**
 * A unit's energy as the miner measured it over the unit's interval (`seconds` long; for an estimate, its busy
 * time): `joules` in all, `aboveIdleJoules` less the measured idle baseline where one was measured, and the
 * uncertainty of `joules` (one standard deviation, joules).
 */
export const UnitEnergy = v.object({
  joules: Joules,
  seconds: v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(86_400)),
  method: EnergyMethod,
  uncertaintyJoules: Joules,
  aboveIdleJoules: v.optional(Joules),
});
export type UnitEnergy = v.InferOutput<typeof UnitEnergy>;

/** The port a probe listens on unless told otherwise; the page tries it by itself. */
export const DEFAULT_PROBE_PORT = 47_113;
/** The header that carries the pairing code the probe printed. */
export const PAIRING_HEADER = 'x-ergon-pairing';

/** One source's cumulative figures since the probe started. */
export const ProbeSourceReading = v.object({
  method: v.picklist(PROBE_METHODS),
  /** e.g. "intel-rapl:0 package-0" or "GPU 0 NVIDIA H200" */
  label: v.pipe(v.string(), v.maxLength(200)),
  joules: Joules,
  uncertaintyJoules: Joules,
  /** A counter that had not ticked since the last sample (Zeus calls such a figure approximated). */
  stale: v.boolean(),
});
export type ProbeSourceReading = v.InferOutput<typeof ProbeSourceReading>;

/** What GET /v1/reading answers: the best method's cumulative joules (summed over its sources) and each source. */
export const ProbeReading = v.object({
  probe: v.literal('ergon-probe'),
  atMs: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
  method: v.nullable(v.picklist(PROBE_METHODS)),
  joules: Joules,
  uncertaintyJoules: Joules,
  sources: v.pipe(v.array(ProbeSourceReading), v.maxLength(64)),
});
export type ProbeReading = v.InferOutput<typeof ProbeReading>;

/** What GET /v1/hello answers without a pairing code: enough for the page to know a probe is there. */
export const ProbeHello = v.object({
  probe: v.literal('ergon-probe'),
  version: v.literal(1),
  methods: v.pipe(v.array(v.picklist(PROBE_METHODS)), v.maxLength(8)),
});
export type ProbeHello = v.InferOutput<typeof ProbeHello>;
