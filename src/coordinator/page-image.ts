// A page image from a requester, decoded to RGBA pixels with pure-JS decoders (pngjs, jpeg-js): its type checked
// against its bytes and its size bounded before any pixel buffer is made; anything else is a 4xx with a sentence.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../work/ocr/image.ts';
import { HttpError } from './http-error.ts';

const MiB = 1024 * 1024;
/** The largest image body accepted: a 600 dpi A4 scan as PNG is well under it. */
export const MAX_PAGE_BYTES = 20 * MiB;
/**
 * The most pixels a page may have: 300 dpi A4 or Letter (8.7 Mpx); detection sees at most 960 px a side anyway.
 * A JPEG is decoded on the event loop (jpeg-js has no asynchronous decoder): measured on this 2-core VM under load,
 * 1.8 s for 12 Mpx, near the 2 s in which a silent miner is dropped. PNGs inflate off the event loop.
 */
export const MAX_PAGE_PIXELS = 9_000_000;

/**
 * jpeg-js's memory cap, per pixel of the largest page: its component planes, padded to 8x8 blocks, and the RGBA
 * output: a 12 Mpx baseline JPEG (4:2:0) needed about 19 bytes a pixel. The pixel count is bounded on its own.
 */
const JPEG_DECODE_BYTES_PER_PIXEL = 24;

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
export async function decodePage(bytes: Uint8Array, type: PageType): Promise<RgbaImage> {
  if (type === 'image/png') {
    if (!PNG_MAGIC.every((b, i) => bytes[i] === b)) throw new HttpError(400, 'bad-image', 'the body is not a PNG image (it lacks the PNG signature), though sent as image/png');
    // IHDR is the first chunk: width and height at bytes 16..23, big-endian.
    if (bytes.byteLength < 24) throw new HttpError(400, 'bad-image', 'the PNG ends inside its header');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    checkSize(view.getUint32(16), view.getUint32(20));
    let png: PNG;
    try {
      // The asynchronous parser inflates on libuv's threads and unfilters as rows arrive: the event loop stays free.
      png = await new Promise<PNG>((resolve, reject) => {
        new PNG().parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err, data) => (err ? reject(err) : resolve(data)));
      });
    } catch (err) {
      throw new HttpError(400, 'bad-image', `the PNG cannot be decoded: ${err instanceof Error ? err.message : String(err)}`.slice(0, 250));
    }
    return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
  }
  if (!(bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)) throw new HttpError(400, 'bad-image', 'the body is not a JPEG image (it lacks the JPEG start marker), though sent as image/jpeg');
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PAGE_PIXELS / 1e6, maxMemoryUsageInMB: (MAX_PAGE_PIXELS * JPEG_DECODE_BYTES_PER_PIXEL) / MiB });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/maxResolutionInMP/.test(text)) throw new HttpError(413, 'image-too-large', `the JPEG has more than ${MAX_PAGE_PIXELS} pixels, the most a page may have`);
    if (/maxMemoryUsageInMB/.test(text)) throw new HttpError(413, 'image-too-large', `the JPEG would take more memory to decode than a page of ${MAX_PAGE_PIXELS} pixels may`);
    throw new HttpError(400, 'bad-image', `the JPEG cannot be decoded: ${text}`.slice(0, 250));
  }
  checkSize(decoded.width, decoded.height);
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

function checkSize(width: number, height: number): void {
  if (width < 1 || height < 1) throw new HttpError(400, 'bad-image', `the image is ${width}x${height} pixels: it has no pixels`);
  if (width * height > MAX_PAGE_PIXELS) throw new HttpError(413, 'image-too-large', `the image is ${width}x${height} pixels, more than the ${MAX_PAGE_PIXELS} a page may have`);
}
