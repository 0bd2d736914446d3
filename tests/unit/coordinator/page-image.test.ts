import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { decodePage, pageType } from '../../../src/coordinator/page-image.ts';

/** A width x height image: red left half, blue right half, opaque. */
function halves(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(x < width / 2 ? [255, 0, 0, 255] : [0, 0, 255, 255], (y * width + x) * 4);
  }
  return data;
}

describe('page images', () => {
  it('decodes a PNG and a JPEG to RGBA pixels of their size', async () => {
    const png = new PNG({ width: 40, height: 20 });
    png.data = halves(40, 20);
    const fromPng = await decodePage(PNG.sync.write(png), 'image/png');
    expect([fromPng.width, fromPng.height, fromPng.data.length]).toEqual([40, 20, 40 * 20 * 4]);
    expect([...fromPng.data.subarray(0, 4)]).toEqual([255, 0, 0, 255]);

    const jpg = jpeg.encode({ width: 40, height: 20, data: halves(40, 20) }, 95).data;
    const fromJpeg = await decodePage(jpg, 'image/jpeg');
    expect([fromJpeg.width, fromJpeg.height]).toEqual([40, 20]);
    const right = (10 * 40 + 35) * 4;
    // Lossy: the right half is still mostly blue.
    expect(fromJpeg.data[right + 2]).toBeGreaterThan(200);
    expect(fromJpeg.data[right]).toBeLessThan(50);
  });

  it('refuses other content types, bytes of another type, and truncated images, each with a sentence', async () => {
    expect(pageType('image/png; charset=binary')).toBe('image/png');
    expect(() => pageType('image/gif')).toThrow(/image\/png or image\/jpeg/);
    expect(() => pageType(undefined)).toThrow(/image\/png or image\/jpeg/);
    const png = new PNG({ width: 8, height: 8 });
    png.data = halves(8, 8);
    const bytes = PNG.sync.write(png);
    await expect(decodePage(bytes, 'image/jpeg')).rejects.toThrow(/not a JPEG/);
    await expect(decodePage(jpeg.encode({ width: 8, height: 8, data: halves(8, 8) }).data, 'image/png')).rejects.toThrow(/not a PNG/);
    await expect(decodePage(bytes.subarray(0, 40), 'image/png')).rejects.toThrow(/cannot be decoded/);
    await expect(decodePage(Uint8Array.from([0xff, 0xd8, 0xff, 0, 1, 2]), 'image/jpeg')).rejects.toThrow(/cannot be decoded/);
  });

  it('refuses a page of no pixels or too many from its header, before decoding it', async () => {
    const png = new PNG({ width: 8, height: 8 });
    png.data = halves(8, 8);
    const bytes = Uint8Array.from(PNG.sync.write(png));
    const view = new DataView(bytes.buffer);
    view.setUint32(16, 0);
    await expect(decodePage(bytes, 'image/png')).rejects.toThrow(/no pixels/);
    view.setUint32(16, 50_000);
    view.setUint32(20, 50_000);
    await expect(decodePage(bytes, 'image/png')).rejects.toMatchObject({ status: 413, code: 'image-too-large' });
  });
});
