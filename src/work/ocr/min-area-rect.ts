// The smallest rectangle, at any angle, around a set of points (what OpenCV's minAreaRect gives): the convex hull,
// then for each hull edge the rectangle aligned with it, keeping the one of least area (a rectangle of least area
// has a side on the hull). Pure geometry for DB boxes of rotated text.

export type Point = [number, number];

export interface RotatedRect {
  centre: Point;
  /** unit vector along the rectangle's width: of its two axes, the one nearer horizontal, pointing right */
  axis: Point;
  width: number;
  height: number;
}

/** The convex hull of the points, counter-clockwise in a y-up frame (Andrew's monotone chain), without repeats. */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of sorted) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/**
 * A level rectangle is kept unless a tilted one is this much smaller. Anti-aliased glyph edges make a level line's
 * hull ragged by about a pixel, and the least-area rectangle then tilts by a tenth of a degree to save ~3% of a
 * 30 px line's area; a real tilt of half a degree on a 20:1 line already saves over 10%.
 */
const LEVEL_PREFERENCE = 0.1;

/** The least-area rectangle around the points (at least one); level unless a tilted one is markedly smaller. */
export function minAreaRect(points: readonly Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new RangeError('minAreaRect: no points');
  let best: { area: number; rect: RotatedRect } | undefined;
  let level: { area: number; rect: RotatedRect } | undefined;
  // The axis-aligned candidate first: of rectangles of equal area, the level one wins.
  const directions: Point[] = [[1, 0]];
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i];
    const b = hull[(i + 1) % hull.length];
    const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (length > 0) directions.push([(b[0] - a[0]) / length, (b[1] - a[1]) / length]);
  }
  for (const direction of directions) {
    const u = levelAxis(direction);
    const n: Point = [-u[1], u[0]];
    let minU = Infinity, maxU = -Infinity, minN = Infinity, maxN = -Infinity;
    for (const p of hull) {
      const pu = p[0] * u[0] + p[1] * u[1];
      const pn = p[0] * n[0] + p[1] * n[1];
      minU = Math.min(minU, pu); maxU = Math.max(maxU, pu); minN = Math.min(minN, pn); maxN = Math.max(maxN, pn);
    }
    const area = (maxU - minU) * (maxN - minN);
    // A relative margin keeps rounding noise from preferring a tilted rectangle over an equal level one.
    if (!best || area < best.area * (1 - 1e-9)) {
      const cu = (minU + maxU) / 2;
      const cn = (minN + maxN) / 2;
      best = { area, rect: { centre: [cu * u[0] + cn * n[0], cu * u[1] + cn * n[1]], axis: u, width: maxU - minU, height: maxN - minN } };
    }
    level ??= best;
  }
  if (!best || !level) throw new RangeError('minAreaRect: no rectangle');
  return best.area < level.area * (1 - LEVEL_PREFERENCE) ? best.rect : level.rect;
}

/** Of a direction and its perpendiculars and opposites, the one within 45 degrees of +x. */
function levelAxis([x, y]: Point): Point {
  const candidates: Point[] = [[x, y], [-y, x], [-x, -y], [y, -x]];
  return candidates.reduce((best, c) => (c[0] > best[0] ? c : best));
}

/** The rectangle's corners: top-left, top-right, bottom-right, bottom-left (y down), grown by `grow` on every side. */
export function rectCorners(rect: RotatedRect, grow = 0): [Point, Point, Point, Point] {
  const [cx, cy] = rect.centre;
  const [ux, uy] = rect.axis;
  const [nx, ny] = [-uy, ux]; // with y down, the normal of a rightward axis points down the page
  const hw = rect.width / 2 + grow;
  const hh = rect.height / 2 + grow;
  const at = (su: number, sn: number): Point => [cx + su * hw * ux + sn * hh * nx, cy + su * hw * uy + sn * hh * ny];
  return [at(-1, -1), at(1, -1), at(1, 1), at(-1, 1)];
}
