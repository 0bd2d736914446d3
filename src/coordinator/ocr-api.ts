// The OCR routes of the requester API: POST /api/jobs/ocr (a page image) and the OCR job's status, result and
// deletion at the same paths as every job's; other job ids fall through to the generic routes.
import type express from 'express';
import type { ApiKeys } from './api-keys.ts';
import { sendWithRanges } from './byte-range.ts';
import { HttpError } from './http-error.ts';
import type { OcrService } from './ocr-service.ts';
import { MAX_PAGE_BYTES, pageType } from './page-image.ts';
import { asyncRoute, jobView, requester } from './http.ts';
import type { Uploads } from './upload.ts';

/** Checks the request's key and rate; answers the key's id. */
export type Authorize = (req: express.Request, res: express.Response) => string;

/** One line for the coordinator's start-up banner, beside the kinds' own. */
export const OCR_USAGE = 'POST /api/jobs/ocr (body: one page, Content-Type image/png or image/jpeg); GET /api/jobs/ID/result: its lines as JSON';

export function mountOcrApi(api: express.Router, ocr: OcrService, uploads: Uploads, apiKeys: ApiKeys, authorize: Authorize): void {
  /**
   * The OCR job a request names, its key checked and a token spent only when it is one: any other id (or a bad key)
   * goes on to the generic routes, which answer it and spend the request's one token.
   */
  const ocrJob = (req: express.Request, res: express.Response) => {
    let owner: string;
    try {
      owner = requester(req, apiKeys);
    } catch {
      return undefined;
    }
    const record = ocr.find(String(req.params.id), owner);
    if (record) authorize(req, res);
    return record;
  };

  api.post('/jobs/ocr', asyncRoute(async (req, res) => {
    const owner = authorize(req, res);
    const type = pageType(req.headers['content-type']);
    const declared = req.headers['content-length'];
    if (declared === undefined) throw new HttpError(411, 'length-required', 'send the page with a Content-Length header');
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) throw new HttpError(400, 'bad-body-length', `Content-Length ${JSON.stringify(declared)} is not a byte count`);
    if (length === 0) throw new HttpError(400, 'empty-body', 'the body is empty: send the page image as the body');
    if (length > MAX_PAGE_BYTES) throw new HttpError(413, 'image-too-large', `the image is ${length} bytes, over the limit of ${MAX_PAGE_BYTES}`);
    const body = await uploads.receive(req, length);
    const record = await ocr.submit(owner, body, type, Date.now());
    res.status(201).json(await ocr.view(record));
  }));

  /** The key's jobs, as the generic route lists them, with each OCR job in place of its stage jobs. */
  api.get('/jobs', asyncRoute(async (req, res) => {
    const owner = authorize(req, res);
    const { queue } = ocr;
    const own = [];
    for (const id of await queue.jobIds()) {
      const state = await queue.job(id);
      if (state?.owner === owner && !ocr.isStage(id)) own.push(await jobView(queue, state));
    }
    for (const record of ocr.owned(owner)) own.push(await ocr.view(record));
    res.json({ jobs: own });
  }));

  api.get('/jobs/:id', asyncRoute(async (req, res, next) => {
    const record = ocrJob(req, res);
    if (!record) return next();
    res.json(await ocr.view(record));
  }));

  api.get('/jobs/:id/result', asyncRoute(async (req, res, next) => {
    const record = ocrJob(req, res);
    if (!record) return next();
    const body = ocr.result(record);
    if (!body) {
      const view = (await ocr.view(record)) as { status: string; error?: { message: string } };
      throw new HttpError(409, 'not-done', `job ${record.id} is ${view.status}${view.error ? `: ${view.error.message}` : ''}`);
    }
    res.setHeader('content-type', 'application/json');
    // A finished OCR job's result never changes and its id is never reused.
    sendWithRanges(req, res, body, `"${record.id}-${body.byteLength}"`);
  }));

  api.delete('/jobs/:id', asyncRoute(async (req, res, next) => {
    const record = ocrJob(req, res);
    if (!record) return next();
    await ocr.remove(record);
    res.status(204).end();
  }));
}
