// Text recognition's pre- and post-processing for PaddleOCR's CRNN/SVTR model: line crops resized to height 48, and
// the per-step class probabilities decoded greedily as CTC (argmax, collapse repeats, drop the blank). Pure.

/** The model's input height. */
export const REC_HEIGHT = 48;
/** Widest crop after resizing: a longer line is squeezed (about 200 characters at 8 px per step). */
export const MAX_REC_WIDTH = 1600;
/** The model's steps are 8 px wide: its input's widths are multiples of 8. */
const REC_ALIGN = 8;

/** The width a crop of w x h takes at height 48, its aspect kept (within [8, MAX_REC_WIDTH]). */
export function recWidth(width: number, height: number): number {
  const w = Math.ceil((REC_HEIGHT * width) / Math.max(1, height));
  return Math.min(MAX_REC_WIDTH, Math.max(REC_ALIGN, w));
}

export interface DecodedLine {
  text: string;
  /** mean of the emitted characters' probabilities; 0 when none */
  confidence: number;
}

/**
 * Greedy CTC decoding of one line: `probs` is steps x classes (row-major) of probabilities. Class 0 is the blank,
 * class i in [1, classes - 2] is dictionary[i - 1], and the last class is a space (PaddleOCR's use_space_char).
 * Repeats of a class collapse unless a blank separates them.
 */
export function ctcDecode(probs: Float32Array, steps: number, classes: number, dictionary: readonly string[]): DecodedLine {
  if (probs.length < steps * classes) throw new RangeError(`ctcDecode: ${probs.length} values for ${steps} steps of ${classes} classes`);
  if (dictionary.length !== classes - 2) throw new RangeError(`ctcDecode: a dictionary of ${dictionary.length} characters for ${classes} classes (want ${classes - 2})`);
  let text = '';
  let sum = 0;
  let emitted = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestProb = -Infinity;
    const row = t * classes;
    for (let c = 0; c < classes; c++) {
      if (probs[row + c] > bestProb) {
        bestProb = probs[row + c];
        best = c;
      }
    }
    if (best !== 0 && best !== previous) {
      text += best === classes - 1 ? ' ' : dictionary[best - 1];
      sum += bestProb;
      emitted++;
    }
    previous = best;
  }
  return { text, confidence: emitted > 0 ? sum / emitted : 0 };
}

/** The dictionary file shipped with the model (one character a line) as the list ctcDecode takes. */
export function parseDictionary(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
