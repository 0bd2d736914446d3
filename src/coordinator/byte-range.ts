// Answers a GET for bytes held in memory with HTTP Range support (RFC 9110 §14), so that a dropped download of a
// job's output continues from where it stopped instead of starting over.
import type { Request, Response } from 'express';

export type RangeAnswer =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * What to send for a Range header over `size` bytes. One range only (bytes=a-b, a-, -n); anything else, several
 * ranges included, is answered in full, which the spec allows. `end` is inclusive, as in Content-Range.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const match = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!match || (match[1] === '' && match[2] === '')) return { kind: 'full' };
  const [, first, last] = match;
  if (first === '') {
    // The last n bytes.
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size) return { kind: 'unsatisfiable' };
  if (end < start) return { kind: 'full' };
  return { kind: 'partial', start, end };
}

/**
 * Sends `body` whole (200) or the range asked for (206, or 416 past the end). `etag` names these exact bytes: a
 * client resuming with If-Range and another tag gets the whole body again, never a splice of two.
 */
export function sendWithRanges(req: Request, res: Response, body: Uint8Array, etag: string): void {
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('etag', etag);
  const ifRange = req.headers['if-range'];
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, body.byteLength) : { kind: 'full' as const };
  if (range.kind === 'unsatisfiable') {
    res.setHeader('content-range', `bytes */${body.byteLength}`);
    res.status(416).json({ error: { code: 'range-not-satisfiable', message: `the result is ${body.byteLength} bytes; the range asked for starts past its end` } });
    return;
  }
  if (range.kind === 'full') {
    res.setHeader('content-length', String(body.byteLength));
    res.end(body);
    return;
  }
  res.status(206);
  res.setHeader('content-range', `bytes ${range.start}-${range.end}/${body.byteLength}`);
  res.setHeader('content-length', String(range.end - range.start + 1));
  res.end(body.subarray(range.start, range.end + 1));
}
