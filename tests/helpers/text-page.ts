// A page of known text for OCR tests, rendered by Chromium's own text stack on an OffscreenCanvas and encoded as
// PNG there: real glyphs and anti-aliasing, no image files in git.
import { chromium, type Page } from 'playwright-core';
import { chromiumPath } from './chromium.ts';

export const PAGE_LINES = ['Invoice 2024-117: total 58.40 EUR', 'The quick brown fox jumps', 'Paid inference job #42 OK'];

export interface TextPage {
  lines?: readonly string[];
  width?: number;
  height?: number;
  /** the text turned clockwise by this much about the page's top-left margin */
  angleDegrees?: number;
}

/** PNG bytes of `lines` drawn black on white, one per row, on a canvas of width x height, in the given page. */
export async function renderTextPage(page: Page, { lines = PAGE_LINES, width = 900, height = 260, angleDegrees = 0 }: TextPage = {}): Promise<Uint8Array<ArrayBuffer>> {
  const base64 = await page.evaluate(async ({ lines, width, height, angleDegrees }) => {
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d context');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = '#111';
    ctx.font = '36px sans-serif';
    ctx.textBaseline = 'middle';
    ctx.translate(30, 0);
    ctx.rotate((angleDegrees * Math.PI) / 180);
    ctx.translate(-30, 0);
    lines.forEach((line, i) => ctx.fillText(line, 30, (height / lines.length) * (i + 0.5)));
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }, { lines, width, height, angleDegrees });
  return Uint8Array.from(Buffer.from(base64, 'base64'));
}

/** The same, from a Chromium started for the purpose (tests that run outside Playwright's runner). */
export async function renderTextPageHeadless(options: TextPage = {}): Promise<Uint8Array<ArrayBuffer>> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto('about:blank');
    return await renderTextPage(page, options);
  } finally {
    await browser.close();
  }
}

/** Levenshtein distance between two strings: how far the OCR's text is from what was drawn. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}
