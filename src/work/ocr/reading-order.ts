// Reading order for a page's lines: top to bottom, and left to right among boxes on the same row. Pure.
import type { Quad } from './detect.ts';

const top = (q: Quad) => Math.min(...q.map((p) => p[1]));
const bottom = (q: Quad) => Math.max(...q.map((p) => p[1]));
const left = (q: Quad) => Math.min(...q.map((p) => p[0]));

/**
 * The items sorted by reading order. A row starts at the topmost box left; a box whose vertical centre lies within
 * the row's first box's top and bottom is on that row. Rows are read top to bottom, each left to right.
 */
export function readingOrder<T extends { box: Quad }>(items: readonly T[]): T[] {
  const byTop = [...items].sort((a, b) => top(a.box) - top(b.box) || left(a.box) - left(b.box));
  const rows: T[][] = [];
  for (const item of byTop) {
    const row = rows.at(-1);
    const centre = (top(item.box) + bottom(item.box)) / 2;
    if (row && centre >= top(row[0].box) && centre <= bottom(row[0].box)) row.push(item);
    else rows.push([item]);
  }
  return rows.flatMap((row) => row.sort((a, b) => left(a.box) - left(b.box)));
}
