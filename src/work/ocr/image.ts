// A page as RGBA pixels, and the few geometric operations OCR needs on it: bilinear resize, a (rotated) crop, and the planar
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

/**
 * The quadrilateral's pixels (top-left, top-right, bottom-right, bottom-left; a rotated rectangle, or any
 * parallelogram) sampled bilinearly into a width x height image whose rows run from its top-left towards its top-right.
 */
export function sampleQuad(src: RgbaImage, quad: readonly (readonly [number, number])[], width: number, height: number): RgbaImage {
  const [tl, tr, , bl] = quad;
  const out = new Uint8Array(width * height * 4);
  const ux = (tr[0] - tl[0]) / width, uy = (tr[1] - tl[1]) / width;
  const vx = (bl[0] - tl[0]) / height, vy = (bl[1] - tl[1]) / height;
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      // Pixel centres: (i + 0.5, j + 0.5) in the output is that point of the quad, less half a source pixel.
      const fx = Math.min(Math.max(tl[0] + (i + 0.5) * ux + (j + 0.5) * vx - 0.5, 0), src.width - 1);
      const fy = Math.min(Math.max(tl[1] + (i + 0.5) * uy + (j + 0.5) * vy - 0.5, 0), src.height - 1);
      const x0 = Math.floor(fx), y0 = Math.floor(fy);
      const x1 = Math.min(x0 + 1, src.width - 1), y1 = Math.min(y0 + 1, src.height - 1);
      const wx = fx - x0, wy = fy - y0;
      const a = (y0 * src.width + x0) * 4, b = (y0 * src.width + x1) * 4, c = (y1 * src.width + x0) * 4, d = (y1 * src.width + x1) * 4;
      const o = (j * width + i) * 4;
      for (let k = 0; k < 4; k++) {
        const top = src.data[a + k] * (1 - wx) + src.data[b + k] * wx;
        const bottom = src.data[c + k] * (1 - wx) + src.data[d + k] * wx;
        out[o + k] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
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
