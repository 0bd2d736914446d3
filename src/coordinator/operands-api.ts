// GET /api/operands/SHA256: the operand blocks leases name, for the miners holding those leases. Immutable (named by
// their hash), with Range requests; only a session whose live lease names the hash may read it.
import express, { type Express } from 'express';
import { OPERAND_TOKEN_HEADER } from '../protocol/messages.ts';
import { sendWithRanges } from './byte-range.ts';
import { HttpError } from './http-error.ts';
import { answerApiError } from './http.ts';
import type { OperandBlobs } from './operand-blobs.ts';

/** Which other origins' pages may fetch operands: those the operator allowed, and the pages of the fleet's coordinators. */
export interface OperandOrigins {
  allowedOrigins?: readonly string[];
  isFleetOrigin?: (origin: string) => boolean;
}

export function mountOperandsApi(app: Express, blobs: OperandBlobs, origins: OperandOrigins = {}): void {
  const router = express.Router();

  // As the rest of /api: a browser reads from the coordinator's own origin (the page it serves) or one the operator
  // allowed; and, like the fleet's config reads, from the page of another coordinator of its fleet, which mines here
  // when it fails over. The token in the header, not the origin, is what authorises a read.
  router.use((req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined || origin === `${req.protocol}://${req.headers.host}`) return next();
    if (!(origins.allowedOrigins ?? []).includes(origin) && !(origins.isFleetOrigin?.(origin) ?? false)) {
      return next(new HttpError(403, 'origin-not-allowed', `requests from ${origin} are not allowed; use the coordinator's own page`));
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET');
      res.setHeader('access-control-allow-headers', `${OPERAND_TOKEN_HEADER}, range, if-range`);
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  });

  router.get('/:sha', (req, res, next) => {
    (async () => {
      const sha = req.params.sha;
      if (!/^[0-9a-f]{64}$/.test(sha)) throw new HttpError(404, 'unknown-operand', `${JSON.stringify(sha)} is not a sha256 in lower-case hex`);
      const token = req.header(OPERAND_TOKEN_HEADER);
      const read = await blobs.read(token, sha);
      if (!read.ok) throw new HttpError(read.status, read.code, read.message);
      res.setHeader('content-type', 'application/octet-stream');
      // Named by the hash of its bytes, it never changes; `private`: only its lease holder may read it.
      res.setHeader('cache-control', 'private, max-age=31536000, immutable');
      sendWithRanges(req, res, read.bytes, `"${sha}"`);
      if (res.statusCode === 200 || res.statusCode === 206) blobs.served(token, Number(res.getHeader('content-length') ?? 0));
    })().catch(next);
  });

  router.use(answerApiError);
  app.use('/api/operands', router);
}
