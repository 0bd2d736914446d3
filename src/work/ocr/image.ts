// A page as RGBA pixels, and the few geometric operations OCR needs on it: bilinear resize, crop, and the planar
// BGR bytes PaddleOCR's models take (alpha composited over white). Pure: the coordinator decodes the image first.

export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes, row-major, R G B A */
  data: Uint8Array;
}

/** The image resized to width x height by bilinear interpolation (pixel centres aligned, as OpenCV's INTER_LINEAR). */
export function resizeBilinear(src: RgbaImage, width: number, height: number): RgbaImage {
  const out = new Uint8Array(width * height * 4);
  const sx = src.width / width;
  const sy = src.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), src.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, src.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), src.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, src.width - 1);
      const wx = fx - x0;
      const a = (y0 * src.width + x0) * 4;
      const b = (y0 * src.width + x1) * 4;
      const c = (y1 * src.width + x0) * 4;
      const d = (y1 * src.width + x1) * 4;
      const o = (y * width + x) * 4;
      for (let k = 0; k < 4; k++) {
        const top = src.data[a + k] * (1 - wx) + src.data[b + k] * wx;
        const bottom = src.data[c + k] * (1 - wx) + src.data[d + k] * wx;
        out[o + k] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { width, height, data: out };
}

/** The pixels of [x0, x1) x [y0, y1), clipped to the image (at least one pixel). */
export function crop(src: RgbaImage, x0: number, y0: number, x1: number, y1: number): RgbaImage {
  const left = Math.min(Math.max(Math.floor(x0), 0), src.width - 1);
  const top = Math.min(Math.max(Math.floor(y0), 0), src.height - 1);
  const right = Math.max(Math.min(Math.ceil(x1), src.width), left + 1);
  const bottom = Math.max(Math.min(Math.ceil(y1), src.height), top + 1);
  const width = right - left;
  const height = bottom - top;
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) out.set(src.data.subarray(((top + y) * src.width + left) * 4, ((top + y) * src.width + right) * 4), y * width * 4);
  return { width, height, data: out };
}

/**
 * Writes the image as planar B, G, R bytes into `into` (3 planes of planeWidth x image.height, starting at `at`),
 * left-aligned; columns past the image keep what `into` holds there (the caller's padding). Transparent pixels are
 * composited over white: a page drawn on a transparent canvas reads as ink on paper.
 */
export function writeBgrPlanes(image: RgbaImage, into: Uint8Array, at: number, planeWidth: number): void {
  const plane = planeWidth * image.height;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const p = (y * image.width + x) * 4;
      const alpha = image.data[p + 3] / 255;
      const o = at + y * planeWidth + x;
      into[o] = Math.round(image.data[p + 2] * alpha + 255 * (1 - alpha));
      into[o + plane] = Math.round(image.data[p + 1] * alpha + 255 * (1 - alpha));
      into[o + 2 * plane] = Math.round(image.data[p] * alpha + 255 * (1 - alpha));
    }
  }
}
