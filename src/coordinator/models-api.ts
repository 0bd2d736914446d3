// Models by hash over HTTP: requesters POST .onnx bytes (API key) and get the model's id and signature; miners GET a
// model's bytes by its sha256 from the coordinator's origin, immutable, to keep in their cache.
import express, { type Express } from 'express';
import type { ApiKeys } from './api-keys.ts';
import { HttpError } from './http-error.ts';
import { answerApiError, requester } from './http.ts';
import { log } from './log.ts';
import type { ModelStore } from './model-store.ts';

const STATUS_OF: Record<string, number> = { 'model-too-large': 413, 'bad-model': 400, 'unsupported-operator': 422 };

export function mountModelsApi(app: Express, ctx: { models: ModelStore; apiKeys: ApiKeys }): void {
  const router = express.Router();

  router.post('/', (req, res, next) => {
    (async () => {
      const owner = requester(req, ctx.apiKeys);
      const limit = ctx.models.maxModelBytes;
      const declared = Number(req.headers['content-length']);
      if (!Number.isSafeInteger(declared)) throw new HttpError(411, 'length-required', 'send the model with a Content-Length header');
      // The body is read and dropped, so that the client reads the refusal rather than a reset connection.
      if (declared > limit) req.resume();
      if (declared > limit) throw new HttpError(413, 'model-too-large', `the model is ${declared} bytes, over this coordinator's limit of ${limit}`);
      const body = await readBody(req, declared);
      const added = await ctx.models.add(body);
      if (!added.ok) throw new HttpError(STATUS_OF[added.error.code] ?? 400, added.error.code, added.error.message);
      log('model-posted', { owner, model: added.value.sha256 });
      const { sha256, byteLength, inputs, outputs, opTypes } = added.value;
      res.status(201).json({ id: sha256, sha256, byteLength, inputs, outputs, opTypes });
    })().catch(next);
  });

  router.get('/:sha', (req, res, next) => {
    (async () => {
      const sha = req.params.sha;
      const bytes = /^[0-9a-f]{64}$/.test(sha) ? await ctx.models.bytes(sha) : undefined;
      if (!bytes) throw new HttpError(404, 'unknown-model', `no model ${sha} on this coordinator`);
      res.setHeader('content-type', 'application/octet-stream');
      // Named by the hash of its bytes: it never changes.
      res.setHeader('cache-control', 'public, max-age=31536000, immutable');
      res.end(bytes);
    })().catch(next);
  });

  router.use(answerApiError);
  app.use('/api/models', router);
}

/** Exactly `length` bytes of body, or an error. */
function readBody(req: express.Request, length: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const out = new Uint8Array(length);
    let at = 0;
    req.on('data', (chunk: Buffer) => {
      if (at + chunk.byteLength > length) {
        req.destroy();
        reject(new HttpError(400, 'bad-body-length', `the body is longer than its Content-Length of ${length}`));
        return;
      }
      out.set(chunk, at);
      at += chunk.byteLength;
    });
    req.on('end', () => (at === length ? resolve(out) : reject(new HttpError(400, 'bad-body-length', `the body is ${at} bytes, not ${length}`))));
    req.on('error', reject);
  });
}
