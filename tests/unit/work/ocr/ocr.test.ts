import { describe, expect, it } from 'vitest';
import { dbBoxes, detInputSize } from '../../../../src/work/ocr/detect.ts';
import { ctcDecode, parseDictionary, recWidth } from '../../../../src/work/ocr/recognize.ts';
import { minAreaRect, rectCorners, type Point } from '../../../../src/work/ocr/min-area-rect.ts';
import { readingOrder } from '../../../../src/work/ocr/reading-order.ts';
import { normalizeU8 } from '../../../../src/work/onnx/normalize.ts';
import { DET_NORMALIZE } from '../../../../src/work/ocr/ocr.ts';

/** A map of `width` x `height` zeros with rectangles [x0, x1) x [y0, y1) set to p. */
function map(width: number, height: number, rects: [number, number, number, number, number][]): Float32Array {
  const prob = new Float32Array(width * height);
  for (const [x0, y0, x1, y1, p] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) prob[y * width + x] = p;
  return prob;
}

describe('DB post-processing', () => {
  it('unclips a component by area * 1.5 / perimeter on each side', () => {
    // An 8x8 block at x, y 4..11: area 64, perimeter 32, so it grows by 3 on every side: [1, 15) x [1, 15).
    const boxes = dbBoxes(map(20, 20, [[4, 4, 12, 12, 0.9]]), 20, 20, 20, 20);
    expect(boxes).toEqual([{ box: [[1, 1], [15, 1], [15, 15], [1, 15]], score: expect.closeTo(0.9, 6) }]);
  });

  it('scales boxes back to the page and clips them to it', () => {
    // A 6x3 block at (2, 1) grows by 1.5: [0.5, 9.5) x [-0.5, 5.5), twice that on a page twice as large, clipped at 0.
    // A 3x3 block at (0, 5) grows by 1.125: [-1.125, 4.125) x [3.875, 9.125), doubled: [0, 8) x [8, 16) once clipped.
    const boxes = dbBoxes(map(10, 8, [[2, 1, 8, 4, 0.9], [0, 5, 3, 8, 0.8]]), 10, 8, 20, 16);
    expect(boxes.map((b) => b.box)).toEqual([
      [[1, 0], [19, 0], [19, 11], [1, 11]],
      [[0, 8], [8, 8], [8, 16], [0, 16]],
    ]);
  });

  it('drops components whose mean probability is under 0.6, and specks under 3 pixels', () => {
    const prob = map(12, 8, [[1, 1, 5, 4, 0.5], [7, 1, 8, 2, 0.99], [7, 4, 11, 7, 0.7]]);
    const boxes = dbBoxes(prob, 12, 8, 12, 8);
    expect(boxes).toHaveLength(1);
    expect(boxes[0].score).toBeCloseTo(0.7, 6);
  });

  it('joins diagonal neighbours (8-connectivity) and averages over the component', () => {
    // Two 3x3 blocks touching at a corner: one component of mean 0.7; pixels under 0.3 are background.
    const prob = map(10, 10, [[0, 0, 3, 3, 0.9], [3, 3, 6, 6, 0.5], [7, 0, 10, 3, 0.25]]);
    const boxes = dbBoxes(prob, 10, 10, 10, 10);
    expect(boxes).toHaveLength(1);
    expect(boxes[0].score).toBeCloseTo(0.7, 6);
  });

  it('boxes a rotated line with a rotated box', () => {
    // A 60 x 8 band turned 20 degrees, rasterised by pixel centres: its box's top edge rises at about 20 degrees.
    const [w, h, angle] = [100, 60, (20 * Math.PI) / 180];
    const prob = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [dx, dy] = [x + 0.5 - 50, y + 0.5 - 30];
        const u = dx * Math.cos(angle) + dy * Math.sin(angle);
        const n = -dx * Math.sin(angle) + dy * Math.cos(angle);
        if (Math.abs(u) <= 30 && Math.abs(n) <= 4) prob[y * w + x] = 0.9;
      }
    }
    const [found] = dbBoxes(prob, w, h, w, h);
    const [tl, tr, , bl] = found.box;
    expect(Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * (180 / Math.PI)).toBeCloseTo(20, -0.5);
    // The pixels' squares add cos 20 + sin 20 = 1.28 to each side: about 61.3 x 9.3, grown by
    // 61.3 * 9.3 * 1.5 / (2 * 70.6) = 6.1 a side: about 73.4 x 21.4.
    expect(Math.hypot(tr[0] - tl[0], tr[1] - tl[1])).toBeGreaterThan(71);
    expect(Math.hypot(tr[0] - tl[0], tr[1] - tl[1])).toBeLessThan(76);
    expect(Math.hypot(bl[0] - tl[0], bl[1] - tl[1])).toBeGreaterThan(19);
    expect(Math.hypot(bl[0] - tl[0], bl[1] - tl[1])).toBeLessThan(24);
  });

  it('sizes the detection input: longer side at most 960, sides multiples of 32, never scaled up', () => {
    expect(detInputSize(1920, 1080)).toEqual({ width: 960, height: 544 });
    expect(detInputSize(900, 260)).toEqual({ width: 896, height: 256 });
    expect(detInputSize(10, 10)).toEqual({ width: 32, height: 32 });
  });
});

describe('least-area rectangles', () => {
  it('finds a square turned 45 degrees, half the area of its level bounding box', () => {
    const rect = minAreaRect([[0, 1], [1, 0], [2, 1], [1, 2], [1, 1]]);
    expect(rect.width).toBeCloseTo(Math.SQRT2, 9);
    expect(rect.height).toBeCloseTo(Math.SQRT2, 9);
    expect(rect.centre[0]).toBeCloseTo(1, 9);
    expect(rect.centre[1]).toBeCloseTo(1, 9);
  });

  it('recovers a 40 x 10 rectangle turned 30 degrees, its axis the one nearer level, corners clockwise from top-left', () => {
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    const corner = (u: number, n: number): Point => [50 + u * c - n * s, 50 + u * s + n * c];
    const rect = minAreaRect([corner(-20, -5), corner(20, -5), corner(20, 5), corner(-20, 5), corner(3, 1)]);
    expect(rect.width).toBeCloseTo(40, 9);
    expect(rect.height).toBeCloseTo(10, 9);
    expect(rect.axis[0]).toBeCloseTo(c, 9);
    expect(rect.axis[1]).toBeCloseTo(s, 9);
    const [tl, tr, br, bl] = rectCorners(rect, 1);
    // grown by 1 on every side: 42 x 12
    expect(tl[0]).toBeCloseTo(corner(-21, -6)[0], 9);
    expect(tr[1]).toBeCloseTo(corner(21, -6)[1], 9);
    expect(br[0]).toBeCloseTo(corner(21, 6)[0], 9);
    expect(bl[1]).toBeCloseTo(corner(-21, 6)[1], 9);
  });

  it('keeps a ragged level line level: a tilt that saves a few percent is edge noise', () => {
    // 100 x 10 with one pixel missing at a corner: tilting saves under 10%.
    const points: Point[] = [[0, 0], [100, 0], [100, 10], [1, 10], [0, 9]];
    const rect = minAreaRect(points);
    expect(rect.axis).toEqual([1, 0]);
    expect([rect.width, rect.height]).toEqual([100, 10]);
  });
});

describe('CTC greedy decoding', () => {
  const dictionary = ['a', 'b', 'c'];
  /** steps x 5 classes (blank, a, b, c, space), each step one-hot at `classes[t]` with probability p[t]. */
  function steps(classes: number[], p: number[]): Float32Array {
    const probs = new Float32Array(classes.length * 5);
    classes.forEach((c, t) => {
      for (let k = 0; k < 5; k++) probs[t * 5 + k] = (1 - p[t]) / 4;
      probs[t * 5 + c] = p[t];
    });
    return probs;
  }

  it('collapses repeats, drops blanks, keeps a repeat a blank separates, maps the last class to a space', () => {
    // a a _ a b b 4(space) c _ -> "aab c"
    const decoded = ctcDecode(steps([1, 1, 0, 1, 2, 2, 4, 3, 0], [0.9, 0.8, 0.99, 0.7, 0.6, 0.9, 0.5, 1, 0.9]), 9, 5, dictionary);
    expect(decoded.text).toBe('aab c');
    // The emitted characters' probabilities: 0.9 (first a), 0.7, 0.6, 0.5, 1.0.
    expect(decoded.confidence).toBeCloseTo((0.9 + 0.7 + 0.6 + 0.5 + 1) / 5, 6);
  });

  it('reads nothing from all blanks, with confidence 0', () => {
    expect(ctcDecode(steps([0, 0, 0], [0.9, 0.9, 0.9]), 3, 5, dictionary)).toEqual({ text: '', confidence: 0 });
  });

  it('refuses a dictionary that does not fit the classes', () => {
    expect(() => ctcDecode(new Float32Array(10), 2, 5, ['a'])).toThrow(/dictionary/);
  });

  it('reads the dictionary file one character a line', () => {
    expect(parseDictionary("'\n疗\n \n")).toEqual(["'", '疗', ' ']);
  });

  it('resizes crops to height 48, aspect kept', () => {
    expect(recWidth(300, 30)).toBe(480);
    expect(recWidth(10000, 10)).toBe(1600);
    expect(recWidth(1, 48)).toBe(8);
  });
});

describe('reading order', () => {
  const box = (x0: number, y0: number, x1: number, y1: number) =>
    ({ box: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]] as [[number, number], [number, number], [number, number], [number, number]], name: `${x0},${y0}` });

  it('reads rows top to bottom and left to right within a row, though a row\'s boxes are not level', () => {
    const a = box(100, 10, 200, 30);
    const b = box(10, 14, 90, 34); // lower than a, same row: its centre (24) is within a's 10..30
    const c = box(10, 50, 90, 70);
    const d = box(120, 45, 190, 66);
    expect(readingOrder([c, a, d, b]).map((x) => x.name)).toEqual([b.name, a.name, c.name, d.name]);
  });
});

describe('uint8 normalisation', () => {
  it('applies x * scale[c] + offset[c] along axis 1 in float32', () => {
    // [1, 3, 1, 2]: channel c holds two pixels
    const out = normalizeU8(Uint8Array.from([0, 255, 0, 255, 128, 128]), [1, 3, 1, 2], DET_NORMALIZE);
    expect(out[0]).toBeCloseTo(-0.485 / 0.229, 5);
    expect(out[1]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(out[3]).toBeCloseTo((1 - 0.456) / 0.224, 5);
    expect(out[4]).toBeCloseTo((128 / 255 - 0.406) / 0.225, 5);
  });

  it('refuses a normalisation of another channel count', () => {
    expect(() => normalizeU8(new Uint8Array(4), [1, 4, 1, 1], DET_NORMALIZE)).toThrow(/channels/);
  });
});
