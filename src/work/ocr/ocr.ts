// OCR as a pipeline of onnx units: one detection unit per page, then recognition units on batches of line crops.
// This module builds each stage's uint8 inputs (pixels, normalised by whoever runs the model) from the page and turns
// the stages' outputs into lines; the coordinator decodes the image and runs the stages as jobs. Pure.
import type { Normalize } from '../onnx/normalize.ts';
import { dbBoxes, detInputSize, type DetectedBox, type Quad } from './detect.ts';
import { resizeBilinear, sampleQuad, writeBgrPlanes, type RgbaImage } from './image.ts';
import { readingOrder } from './reading-order.ts';
import { ctcDecode, recWidth, REC_HEIGHT, type DecodedLine } from './recognize.ts';

/** The kind each stage runs as: ordinary jobs of it, so miners, pay and verification are the same as for any. */
export const OCR_STAGE_KIND = 'onnx';

/** Detection: BGR, (x / 255 - mean) / std with ImageNet's mean and std (PaddleOCR's det preprocessing). */
export const DET_NORMALIZE: Normalize = {
  scale: [1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)],
  offset: [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225],
};
/** Recognition: BGR, (x / 255 - 0.5) / 0.5. */
export const REC_NORMALIZE: Normalize = { scale: [2 / 255, 2 / 255, 2 / 255], offset: [-1, -1, -1] };
/** Crops per recognition job: each is split into units by the kind; lines of similar width share a job. */
export const REC_BATCH = 8;
/**
 * A batch's width is its widest crop's, rounded up to this: every new width is one measuring run on the coordinator
 * (exact ops per shape), so widths come in few sizes. The model's steps are 8 px.
 */
const REC_WIDTH_STEP = 64;
/** Padding right of a shorter crop: mid grey, which normalises to about 0, as PaddleOCR pads. */
const REC_PAD = 128;

/** A stage's input: uint8 [batch, 3, height, width]. */
export interface StageInput {
  shape: [number, number, number, number];
  pixels: Uint8Array;
}

/** The detection unit's input: the page resized for the model, as planar BGR bytes. */
export function detectionInput(page: RgbaImage): StageInput {
  const size = detInputSize(page.width, page.height);
  const resized = resizeBilinear(page, size.width, size.height);
  const pixels = new Uint8Array(3 * size.width * size.height);
  writeBgrPlanes(resized, pixels, 0, size.width);
  return { shape: [1, 3, size.height, size.width], pixels };
}

/** The page's text boxes from the detection output (probabilities [1, 1, H, W] at the model's input size). */
export function detectedBoxes(prob: Float32Array, mapShape: readonly number[], page: { width: number; height: number }): DetectedBox[] {
  const [mapHeight, mapWidth] = mapShape.slice(-2);
  return readingOrder(dbBoxes(prob, mapWidth, mapHeight, page.width, page.height));
}

/** A recognition job's input and which lines (indices into the boxes) it holds, in order. */
export interface RecognitionBatch extends StageInput {
  lines: number[];
}

/** A crop this much taller than wide is vertical text: turned a quarter counter-clockwise, as PaddleOCR does. */
const VERTICAL_ASPECT = 1.5;

/** The box's pixels, straightened, at height 48: rotated boxes are sampled along their own axes. */
export function lineCrop(page: RgbaImage, box: Quad): RgbaImage {
  const [tl, tr, br, bl] = box;
  const width = Math.hypot(tr[0] - tl[0], tr[1] - tl[1]);
  const height = Math.hypot(bl[0] - tl[0], bl[1] - tl[1]);
  const upright = height >= VERTICAL_ASPECT * width;
  const quad = upright ? [tr, br, bl, tl] : box;
  const [w, h] = upright ? [height, width] : [width, height];
  return sampleQuad(page, quad, recWidth(w, h), REC_HEIGHT);
}

/** The boxes' crops at height 48, grouped by width into batches, each padded to its widest (rounded up). */
export function recognitionBatches(page: RgbaImage, boxes: readonly Quad[]): RecognitionBatch[] {
  const crops = boxes.map((box, line) => ({ line, image: lineCrop(page, box) }));
  crops.sort((a, b) => a.image.width - b.image.width);
  const batches: RecognitionBatch[] = [];
  for (let at = 0; at < crops.length; at += REC_BATCH) {
    const group = crops.slice(at, at + REC_BATCH);
    const widest = Math.max(...group.map((c) => c.image.width));
    const width = Math.ceil(widest / REC_WIDTH_STEP) * REC_WIDTH_STEP;
    const sample = 3 * REC_HEIGHT * width;
    const pixels = new Uint8Array(group.length * sample).fill(REC_PAD);
    group.forEach((c, i) => writeBgrPlanes(c.image, pixels, i * sample, width));
    batches.push({ lines: group.map((c) => c.line), shape: [group.length, 3, REC_HEIGHT, width], pixels });
  }
  return batches;
}

/** Each line of a recognition output ([count, steps, classes] probabilities), decoded. */
export function recognizedLines(probs: Float32Array, shape: readonly number[], dictionary: readonly string[]): DecodedLine[] {
  const [count, steps, classes] = shape;
  const per = steps * classes;
  return Array.from({ length: count }, (_, i) => ctcDecode(probs.subarray(i * per, (i + 1) * per), steps, classes, dictionary));
}

/** One line of the result, as the API answers it. */
export interface OcrLine {
  text: string;
  box: Quad;
  confidence: number;
}

/** The page's lines in reading order, empty ones left out, confidences rounded to 4 places. */
export function ocrLines(boxes: readonly Quad[], decoded: readonly (DecodedLine | undefined)[]): OcrLine[] {
  const lines: OcrLine[] = [];
  boxes.forEach((box, i) => {
    const line = decoded[i];
    if (line && line.text.trim() !== '') lines.push({ text: line.text, box, confidence: Math.round(line.confidence * 10_000) / 10_000 });
  });
  return readingOrder(lines);
}
