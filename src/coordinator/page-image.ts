// A page image from a requester, decoded to RGBA pixels with pure-JS decoders (pngjs, jpeg-js): its type checked
// against its bytes and its size bounded before any pixel buffer is made; anything else is a 4xx with a sentence.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../work/ocr/image.ts';
import { HttpError } from './http-error.ts';

const MiB = 1024 * 1024;
/** The largest image body accepted: a 600 dpi A4 scan as PNG is well under it. */
export const MAX_PAGE_BYTES = 20 * MiB;
/** The most pixels a page may have (decoded, 4 bytes each): 600 dpi A4 is 35 Mpx; detection sees at most 960 px a side. */
export const MAX_PAGE_PIXELS = 40_000_000;

export const PAGE_TYPES = ['image/png', 'image/jpeg'] as const;
export type PageType = (typeof PAGE_TYPES)[number];

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The page type a Content-Type header names, or a 415 that says which are taken. */
export function pageType(contentType: string | undefined): PageType {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const known = PAGE_TYPES.find((t) => t === type);
  if (!known) throw new HttpError(415, 'unsupported-media-type', `send the page as content-type image/png or image/jpeg, not ${JSON.stringify(contentType ?? 'none')}`);
  return known;
}

/** The page's pixels; a 400 for bytes that are not an image of the declared type, a 413 for one over the limits. */
export function decodePage(bytes: Uint8Array, type: PageType): RgbaImage {
  if (type === 'image/png') {
    if (!PNG_MAGIC.every((b, i) => bytes[i] === b)) throw new HttpError(400, 'bad-image', 'the body is not a PNG image (it lacks the PNG signature), though sent as image/png');
    // IHDR is the first chunk: width and height at bytes 16..23, big-endian.
    if (bytes.byteLength < 24) throw new HttpError(400, 'bad-image', 'the PNG ends inside its header');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    checkSize(view.getUint32(16), view.getUint32(20));
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      throw new HttpError(400, 'bad-image', `the PNG cannot be decoded: ${err instanceof Error ? err.message : String(err)}`.slice(0, 250));
    }
    return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
  }
  if (!(bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)) throw new HttpError(400, 'bad-image', 'the body is not a JPEG image (it lacks the JPEG start marker), though sent as image/jpeg');
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PAGE_PIXELS / 1e6, maxMemoryUsageInMB: (MAX_PAGE_PIXELS * 4 * 2) / MiB });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/maxResolutionInMP|maxMemoryUsageInMB/.test(text)) throw new HttpError(413, 'image-too-large', `the JPEG has more than ${MAX_PAGE_PIXELS} pixels, the most a page may have`);
    throw new HttpError(400, 'bad-image', `the JPEG cannot be decoded: ${text}`.slice(0, 250));
  }
  checkSize(decoded.width, decoded.height);
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

function checkSize(width: number, height: number): void {
  if (width < 1 || height < 1) throw new HttpError(400, 'bad-image', `the image is ${width}x${height} pixels: it has no pixels`);
  if (width * height > MAX_PAGE_PIXELS) throw new HttpError(413, 'image-too-large', `the image is ${width}x${height} pixels, more than the ${MAX_PAGE_PIXELS} a page may have`);
}
