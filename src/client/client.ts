// The requester's typed client of the coordinator's HTTP API: submit jobs of every kind, read their status, wait with
// progress, fetch results (resuming a dropped download with Range), delete. Used by the CLI, the demo requester, tests.
import { ndarray, toFloat32, type NdArray } from '../protocol/npy.ts';

/** A job as the API describes it: the fields every kind has, and the kind's own (shape, precision, ...). */
export interface JobView {
  id: string;
  kind: string;
  status: string;
  unitsTotal: number;
  unitsDone: number;
  miners: number;
  createdAtMs: number;
  finishedAtMs?: number | null;
  [field: string]: unknown;
}

/** A model stored on the coordinator by the sha256 of its bytes, with its inputs and outputs. */
export interface ModelView {
  id: string;
  [field: string]: unknown;
}

export interface Progress {
  job: JobView;
  /** Units verified per second since waiting began; undefined until one has been. */
  unitsPerSecond?: number;
  /** Time left at that rate. */
  etaMs?: number;
  elapsedMs: number;
}

export interface JobResult {
  contentType: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

/** The coordinator answered with a refusal: its HTTP status, its stable code and its sentence. */
export class ErgonApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** No answer from the coordinator at all: refused, reset, unresolvable or timed out. */
export class ErgonUnreachableError extends Error {
  readonly code = 'unreachable';
}

/** The job ended without a result (its status is neither queued, running nor done), or vanished while waited on. */
export class ErgonJobFailedError extends Error {
  constructor(readonly job: JobView | undefined, message: string) {
    super(message);
  }
}

/** What the caller handed over cannot be a job: the code says which rule (shape-mismatch, bad-input). */
export class ErgonInputError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface ClientOptions {
  /** The coordinator's base URL, e.g. http://127.0.0.1:8787/ */
  url: string;
  apiKey: string;
  /** fetch to use (tests inject one); the global one by default. */
  fetch?: typeof fetch;
}

/** How often `wait` asks for the job's status. */
const POLL_MS = 500;
/** How many times a dropped result download is resumed before giving up. */
const DOWNLOAD_RESUMES = 20;
/** Pause before a resume, times the attempt: the coordinator or the path may need a moment. */
const RESUME_BACKOFF_MS = 200;
/**
 * How long `wait` keeps asking while the coordinator cannot be reached (a restart: jobs survive it) before it gives
 * up with ErgonUnreachableError.
 */
export const WAIT_UNREACHABLE_MS = 60_000;
/** Statuses of a job still under way. */
const OPEN_STATUSES = new Set(['queued', 'running']);

export class ErgonClient {
  readonly url: URL;
  private readonly apiKey: string;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    } catch {
      throw new ErgonInputError('bad-url', `${JSON.stringify(options.url)} is not a URL (expected e.g. http://127.0.0.1:8787/)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ErgonInputError('bad-url', `${url.href} is not an http(s) URL`);
    this.url = url;
    this.apiKey = options.apiKey;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  // ---- submission ----

  /** C = A·B: A is m x k, B is k x n, any real dtype (sent as f32). `precision: 'f16'` asks for f16 work. */
  async submitGemm(a: NdArray, b: NdArray, options: { precision?: 'f32' | 'f16' } = {}): Promise<JobView> {
    const { m, n, k } = gemmShape(a, b);
    const body = new Float32Array(m * k + k * n);
    body.set(toFloat32(a), 0);
    body.set(toFloat32(b), m * k);
    const precision = options.precision === 'f16' ? '&precision=f16' : '';
    return this.submit(`jobs/gemm?m=${m}&n=${n}&k=${k}${precision}`, new Uint8Array(body.buffer), 'application/octet-stream');
  }

  /** Stores an ONNX model on the coordinator (POST /api/models); its id is the sha256 of its bytes. */
  async uploadModel(onnx: Uint8Array): Promise<ModelView> {
    return (await this.json(await this.request('models', { method: 'POST', body: asBody(onnx), headers: { 'content-type': 'application/octet-stream' } }))) as ModelView;
  }

  /** Runs a stored model over inputs given as an .npz (one array per input name, the first axis the batch). */
  async submitOnnx(model: string, npz: Uint8Array): Promise<JobView> {
    if (!/^[0-9a-f]{64}$/.test(model)) throw new ErgonInputError('bad-input', `a model is named by the sha256 of its bytes (64 hex digits), not ${JSON.stringify(model)}`);
    return this.submit(`jobs/onnx?model=${model}`, npz, 'application/octet-stream');
  }

  /** Reads the text on one page image (PNG or JPEG, told apart by its first bytes). */
  async submitOcr(image: Uint8Array): Promise<JobView> {
    return this.submit('jobs/ocr', image, imageType(image));
  }

  /** Submits a job of any kind: the body as the kind wants it, parameters in the query string. */
  async submit(path: string, body: Uint8Array, contentType: string): Promise<JobView> {
    return (await this.json(await this.request(path, { method: 'POST', body: asBody(body), headers: { 'content-type': contentType } }))) as JobView;
  }

  // ---- jobs ----

  async job(id: string): Promise<JobView> {
    return (await this.json(await this.request(`jobs/${encodeURIComponent(id)}`))) as JobView;
  }

  /** This key's jobs, open and finished (until deleted or expired). */
  async jobs(): Promise<JobView[]> {
    return ((await this.json(await this.request('jobs'))) as { jobs: JobView[] }).jobs;
  }

  async delete(id: string): Promise<void> {
    await this.request(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /**
   * Polls the job until it is done, calling `onProgress` at each poll; throws ErgonJobFailedError when the job ends
   * any other way. Throughput is measured over the wait, not claimed by anyone.
   */
  async wait(
    id: string,
    options: { onProgress?: (progress: Progress) => void; pollMs?: number; signal?: AbortSignal; unreachableMs?: number } = {},
  ): Promise<JobView> {
    const startedMs = Date.now();
    let firstDone: number | undefined;
    let unreachableSinceMs: number | undefined;
    for (;;) {
      options.signal?.throwIfAborted();
      let job: JobView;
      try {
        job = await this.job(id);
        unreachableSinceMs = undefined;
      } catch (err) {
        if (err instanceof ErgonApiError && err.code === 'unknown-job') throw new ErgonJobFailedError(undefined, `job ${id} is gone: it was deleted or expired`);
        if (!(err instanceof ErgonUnreachableError)) throw err;
        unreachableSinceMs ??= Date.now();
        if (Date.now() - unreachableSinceMs >= (options.unreachableMs ?? WAIT_UNREACHABLE_MS)) throw err;
        await sleep(options.pollMs ?? POLL_MS, options.signal);
        continue;
      }
      firstDone ??= job.unitsDone;
      const elapsedMs = Date.now() - startedMs;
      const verified = job.unitsDone - firstDone;
      const unitsPerSecond = verified > 0 && elapsedMs > 0 ? (verified * 1000) / elapsedMs : undefined;
      const etaMs = unitsPerSecond ? ((job.unitsTotal - job.unitsDone) / unitsPerSecond) * 1000 : undefined;
      options.onProgress?.({ job, unitsPerSecond, etaMs, elapsedMs });
      if (job.status === 'done') return job;
      if (!OPEN_STATUSES.has(job.status)) {
        const reason = typeof job.error === 'object' && job.error !== null && 'message' in job.error ? `: ${String(job.error.message)}` : '';
        throw new ErgonJobFailedError(job, `job ${id} ended ${job.status}${reason}`);
      }
      await sleep(options.pollMs ?? POLL_MS, options.signal);
    }
  }

  // ---- results ----

  /**
   * The job's output. A download cut short is resumed from the last byte received (Range, with If-Range on the
   * result's ETag so that two different bodies are never spliced), up to DOWNLOAD_RESUMES times.
   */
  async result(id: string, options: { onBytes?: (received: number, total: number) => void } = {}): Promise<JobResult> {
    const path = `jobs/${encodeURIComponent(id)}/result`;
    let body: Uint8Array<ArrayBuffer> | undefined;
    let received = 0;
    let etag: string | null = null;
    let first: Response | undefined;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (body && etag) {
        headers.range = `bytes=${received}-`;
        headers['if-range'] = etag;
      }
      let res: Response;
      try {
        res = await this.request(path, { headers });
      } catch (err) {
        if (!(err instanceof ErgonUnreachableError) || body === undefined || attempt >= DOWNLOAD_RESUMES) throw err;
        await sleep(RESUME_BACKOFF_MS * (attempt + 1));
        continue;
      }
      if (res.status === 206 && body) {
        const start = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
        if (!start || Number(start[1]) !== received || Number(start[2]) !== body.byteLength) {
          throw new ErgonApiError(res.status, 'bad-range', `the coordinator resumed at ${res.headers.get('content-range')}, not at byte ${received} of ${body.byteLength}`);
        }
      } else {
        // The whole body (a first request, or the result changed): start over.
        const total = Number(res.headers.get('content-length'));
        if (!Number.isSafeInteger(total)) throw new ErgonApiError(res.status, 'bad-response', 'the result came without a Content-Length');
        body = new Uint8Array(total);
        received = 0;
        etag = res.headers.get('etag');
        first = res;
      }
      const done = await readInto(res, body, received, (at) => {
        received = at;
        options.onBytes?.(received, body?.byteLength ?? 0);
      });
      if (done && received === body.byteLength && first) {
        return { contentType: first.headers.get('content-type') ?? 'application/octet-stream', headers: first.headers, body };
      }
      if (attempt >= DOWNLOAD_RESUMES) throw new ErgonUnreachableError(`the result download of job ${id} broke off ${attempt + 1} times; got ${received} of ${body.byteLength} bytes`);
      // Without an ETag the server cannot promise the same bytes: start over rather than splice.
      if (!etag) body = undefined;
      await sleep(RESUME_BACKOFF_MS * (attempt + 1));
    }
  }

  /** A gemm job's product C as an m x n f32 array. */
  async gemmResult(id: string, options: { onBytes?: (received: number, total: number) => void } = {}): Promise<NdArray> {
    return productOf(id, await this.result(id, options));
  }

  // ---- HTTP ----

  /** A request with the key; an API refusal becomes ErgonApiError, no answer ErgonUnreachableError. */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(`api/${path}`, this.url);
    let res: Response;
    try {
      res = await this.fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${this.apiKey}` } });
    } catch (err) {
      throw new ErgonUnreachableError(`cannot reach the coordinator at ${this.url.origin}: ${describeNetworkError(err)}`);
    }
    if (res.ok) return res;
    throw await apiError(res);
  }

  private async json(res: Response): Promise<unknown> {
    try {
      return await res.json();
    } catch (err) {
      throw new ErgonApiError(res.status, 'bad-response', `the coordinator's answer is not JSON: ${describeNetworkError(err)}`);
    }
  }
}

/** A gemm job's result as the m x n f32 array it is (its shape from x-ergon-shape). */
export function productOf(id: string, result: JobResult): NdArray {
  const shape = /^(\d+)x(\d+)$/.exec(result.headers.get('x-ergon-shape') ?? '');
  if (!shape) throw new ErgonApiError(200, 'bad-response', `job ${id}'s result has no x-ergon-shape header; is it a gemm job?`);
  const [m, n] = [Number(shape[1]), Number(shape[2])];
  if (result.body.byteLength !== 4 * m * n) throw new ErgonApiError(200, 'bad-response', `job ${id}'s result is ${result.body.byteLength} bytes, not ${m}x${n} f32`);
  return ndarray('f4', [m, n], new Float32Array(result.body.buffer));
}

/** m, n and k of A·B, or why these arrays cannot be multiplied. */
export function gemmShape(a: NdArray, b: NdArray): { m: number; n: number; k: number } {
  if (a.shape.length !== 2) throw new ErgonInputError('bad-shape', `A must be a matrix (2 dimensions); it has shape (${a.shape.join(', ')})`);
  if (b.shape.length !== 2) throw new ErgonInputError('bad-shape', `B must be a matrix (2 dimensions); it has shape (${b.shape.join(', ')})`);
  const [m, k] = a.shape;
  const [kb, n] = b.shape;
  if (k !== kb) throw new ErgonInputError('shape-mismatch', `A is ${m}x${k} and B is ${kb}x${n}: A's columns (${k}) must equal B's rows (${kb})`);
  if (m === 0 || n === 0 || k === 0) throw new ErgonInputError('bad-shape', `A is ${m}x${k} and B is ${kb}x${n}: no dimension may be 0`);
  return { m, n, k };
}

/** The content type of a page image from its first bytes; refuses anything but PNG and JPEG. */
export function imageType(image: Uint8Array): 'image/png' | 'image/jpeg' {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.every((b, i) => image[i] === b)) return 'image/png';
  if (image[0] === 0xff && image[1] === 0xd8 && image[2] === 0xff) return 'image/jpeg';
  throw new ErgonInputError('bad-input', 'the page is neither a PNG nor a JPEG image');
}

/** The bytes as fetch takes them: a view of the same memory (a copy only for a SharedArrayBuffer). */
function asBody(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Uint8Array.from(bytes);
}

/** The API's `{error: {code, message}}`, or a code made from the status when the answer is not the API's. */
async function apiError(res: Response): Promise<ErgonApiError> {
  const text = await res.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (error && typeof error.code === 'string' && typeof error.message === 'string') return new ErgonApiError(res.status, error.code, error.message);
  } catch {
    // not JSON: said below
  }
  return new ErgonApiError(res.status, `http-${res.status}`, `the coordinator answered ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

/** Reads the response body into `into` from `at`; true when it ended normally, false when the connection broke. */
async function readInto(res: Response, into: Uint8Array, at: number, onBytes: (at: number) => void): Promise<boolean> {
  if (!res.body) return at === into.byteLength;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return true;
      if (at + value.byteLength > into.byteLength) throw new ErgonApiError(res.status, 'bad-response', `the result is longer than the ${into.byteLength} bytes announced`);
      into.set(value, at);
      at += value.byteLength;
      onBytes(at);
    }
  } catch (err) {
    if (err instanceof ErgonApiError) throw err;
    return false;
  }
}

/** The cause a failed fetch gives (ECONNREFUSED, ENOTFOUND, ...), as a short phrase. */
function describeNetworkError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (cause instanceof Error) return 'code' in cause && typeof cause.code === 'string' ? `${cause.code} (${cause.message})` : cause.message;
  return String(cause);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
