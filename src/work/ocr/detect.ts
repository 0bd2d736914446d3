// Text detection's pre- and post-processing for PaddleOCR's DB model: the page resized so that its longer side is at
// most 960 and both sides are multiples of 32, and the probability map turned into text boxes in the page's pixels
// (threshold, connected components, mean probability, least-area rectangle, unclip, scale back). Pure.
import { minAreaRect, rectCorners, type Point } from './min-area-rect.ts';

/** A quadrilateral in the page's pixels: top-left, top-right, bottom-right, bottom-left. */
export type Quad = [[number, number], [number, number], [number, number], [number, number]];

/** PaddleOCR's det_limit_side_len: the longer side of the model's input. */
export const DET_MAX_SIDE = 960;
/** The model downsamples by 32: its input's sides are multiples of it. */
const DET_ALIGN = 32;

export interface DbOptions {
  /** a pixel is text when its probability exceeds this */
  threshold: number;
  /** a component is kept when its pixels' mean probability is at least this */
  boxThreshold: number;
  /** the box grows by area * unclipRatio / perimeter on every side: DB's maps are shrunk text */
  unclipRatio: number;
  /** components narrower or shorter than this many map pixels are noise */
  minSize: number;
}

/** PaddleOCR's defaults (det_db_thresh, det_db_box_thresh, det_db_unclip_ratio). */
export const DB_DEFAULTS: DbOptions = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minSize: 3 };

/** The model's input size for a page: scaled down (never up) to DET_MAX_SIDE, each side rounded to a multiple of 32. */
export function detInputSize(width: number, height: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > DET_MAX_SIDE ? DET_MAX_SIDE / Math.max(width, height) : 1;
  const align = (side: number) => Math.max(DET_ALIGN, Math.round((side * ratio) / DET_ALIGN) * DET_ALIGN);
  return { width: align(width), height: align(height) };
}

export interface DetectedBox {
  box: Quad;
  /** mean probability of the component's pixels */
  score: number;
}

/**
 * Text boxes from DB's probability map (mapWidth x mapHeight, row-major), in the page's pixels (pageWidth x
 * pageHeight): 8-connected components of pixels above the threshold, each kept when its mean probability is high
 * enough, its least-area rectangle (at any angle: rotated text gets a rotated box) unclipped and scaled back.
 */
export function dbBoxes(
  prob: Float32Array, mapWidth: number, mapHeight: number, pageWidth: number, pageHeight: number, options: DbOptions = DB_DEFAULTS,
): DetectedBox[] {
  if (prob.length !== mapWidth * mapHeight) throw new RangeError(`dbBoxes: ${prob.length} values for a ${mapWidth}x${mapHeight} map`);
  const seen = new Uint8Array(prob.length);
  const stack: number[] = [];
  const boxes: DetectedBox[] = [];
  const sx = pageWidth / mapWidth;
  const sy = pageHeight / mapHeight;
  for (let start = 0; start < prob.length; start++) {
    if (seen[start] || !(prob[start] > options.threshold)) continue;
    seen[start] = 1;
    stack.push(start);
    // Each row's leftmost and rightmost pixel: their corners bound the component's hull.
    const rows = new Map<number, [number, number]>();
    let sum = 0, count = 0;
    while (stack.length > 0) {
      const at = stack.pop() as number;
      const x = at % mapWidth;
      const y = (at - x) / mapWidth;
      const row = rows.get(y);
      if (row) {
        row[0] = Math.min(row[0], x);
        row[1] = Math.max(row[1], x);
      } else rows.set(y, [x, x]);
      sum += prob[at];
      count++;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= mapHeight) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= mapWidth) continue;
          const next = ny * mapWidth + nx;
          if (seen[next] || !(prob[next] > options.threshold)) continue;
          seen[next] = 1;
          stack.push(next);
        }
      }
    }
    const corners: Point[] = [];
    for (const [y, [left, right]] of rows) corners.push([left, y], [left, y + 1], [right + 1, y], [right + 1, y + 1]);
    const rect = minAreaRect(corners);
    if (Math.min(rect.width, rect.height) < options.minSize) continue;
    const score = sum / count;
    if (score < options.boxThreshold) continue;
    // DB's unclip: the polygon offset by area * ratio / perimeter (a rectangle's corners, squared off).
    const grow = (rect.width * rect.height * options.unclipRatio) / (2 * (rect.width + rect.height));
    const box = rectCorners(rect, grow).map(([x, y]) => [clamp(Math.round(x * sx), 0, pageWidth), clamp(Math.round(y * sy), 0, pageHeight)]) as Quad;
    const [tl, tr, , bl] = box;
    if (Math.hypot(tr[0] - tl[0], tr[1] - tl[1]) < 1 || Math.hypot(bl[0] - tl[0], bl[1] - tl[1]) < 1) continue;
    boxes.push({ box, score });
  }
  return boxes;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
