// The last resort: an adapter's typical board power (W) from its name, times its busy time. Always an estimate,
// and labelled as one; the figures are the makers' published board or package powers.
import type { AdapterInfo } from '../../protocol/messages.ts';

const TABLE: [RegExp, number][] = [
  [/\bH200\b/i, 700],
  [/\bH100\b/i, 700],
  [/\bA100\b/i, 400],
  [/RTX\s*5090/i, 575],
  [/RTX\s*4090/i, 450],
  [/RTX\s*4080/i, 320],
  [/RTX\s*4070/i, 200],
  [/RTX\s*4060/i, 115],
  [/RTX\s*3090/i, 350],
  [/RTX\s*3080/i, 320],
  [/RTX\s*3070/i, 220],
  [/RTX\s*3060/i, 170],
  [/RX\s*7900/i, 355],
  [/RX\s*6900/i, 300],
  [/RX\s*6800/i, 250],
  [/Apple M\d (Max|Ultra)/i, 60],
  [/Apple M\d/i, 20],
  // SwiftShader runs the GPU's work on the CPU: a desktop CPU's package power.
  [/swiftshader/i, 65],
  [/Intel.*(Iris|UHD|HD Graphics)/i, 15],
];
/** Any other adapter: a mid-range discrete GPU. */
const UNKNOWN_WATTS = 150;
/** An estimate from a name is good to a factor of about two either way. */
export const ESTIMATE_RELATIVE_UNCERTAINTY = 0.5;

/** The adapter's board power as the table knows it, and whether the table knew it. */
export function boardPowerWatts(adapter: AdapterInfo): { watts: number; known: boolean } {
  const name = `${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`;
  const hit = TABLE.find(([pattern]) => pattern.test(name));
  return hit ? { watts: hit[1], known: true } : { watts: UNKNOWN_WATTS, known: false };
}
