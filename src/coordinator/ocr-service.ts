// OCR as a service: a page image in, its lines of text out. The page is decoded here; detection (one unit) and then
// recognition (batches of line crops) run as ordinary jobs of the stage kind, owned by the requester and charged to
// their quota, so miners, pay and verification are those of any job. Each OCR job's state is a JSON file beside the
// data folder's jobs, so a restart resumes it (its stage jobs are restored with the others).
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import type { Parsed } from '../protocol/errors.ts';
import { ndarray } from '../protocol/npy.ts';
import { encodeNpz } from '../protocol/npz.ts';
import type { Normalize } from '../work/onnx/normalize.ts';
import { readNpz } from '../work/onnx/npz.ts';
import {
  DET_NORMALIZE, detectedBoxes, detectionInput, ocrLines, OCR_STAGE_KIND, recognitionBatches, recognizedLines, REC_NORMALIZE, type OcrLine, type StageInput,
} from '../work/ocr/ocr.ts';
import type { Quad } from '../work/ocr/detect.ts';
import { parseDictionary, type DecodedLine } from '../work/ocr/recognize.ts';
import { HttpError } from './http-error.ts';
import type { Jobs } from './jobs.ts';
import { log } from './log.ts';
import { OCR_DICTIONARY, ocrAsset, type ModelStore } from './model-store.ts';
import { decodePage, type PageType } from './page-image.ts';
import { Quotas, queueUsage, type RequesterQuota } from './quotas.ts';

/** How often open OCR jobs look at their stage jobs. */
const TICK_MS = 200;
/** A finished OCR job's result is kept this long unless deleted first. */
export const OCR_RESULT_TTL_MS = 24 * 60 * 60 * 1000;
/** The largest stage output read back (a recognition job of 8 long lines is about 30 MB of probabilities). */
const MAX_STAGE_OUTPUT_BYTES = 512 * 1024 * 1024;

/** The models and dictionary the pipeline runs: the coordinator's shipped PaddleOCR det and rec. */
export interface OcrModels {
  det: { sha256: string; input: string };
  rec: { sha256: string; input: string };
  dictionary: readonly string[];
}

/** The shipped models' hashes and input names, and the dictionary beside them in the package. */
export async function shippedOcrModels(models: ModelStore): Promise<OcrModels> {
  const stage = (sha256: string) => {
    const input = models.model(sha256)?.inputs[0]?.name;
    if (!input) throw new Error(`OCR: the shipped model ${sha256} is not loaded`);
    return { sha256, input };
  };
  return { det: stage(models.shipped.det), rec: stage(models.shipped.rec), dictionary: parseDictionary(await readFile(ocrAsset(OCR_DICTIONARY), 'utf8')) };
}

const Point = v.tuple([v.number(), v.number()]);
const OcrRecord = v.object({
  id: v.string(),
  owner: v.string(),
  createdAtMs: v.number(),
  finishedAtMs: v.nullable(v.number()),
  page: v.object({ width: v.number(), height: v.number(), type: v.picklist(['image/png', 'image/jpeg']) }),
  stage: v.picklist(['detect', 'recognize', 'done', 'failed']),
  detJob: v.string(),
  boxes: v.optional(v.array(v.tuple([Point, Point, Point, Point]))),
  recJobs: v.optional(v.array(v.object({ job: v.string(), lines: v.array(v.number()) }))),
  lines: v.optional(v.array(v.object({ text: v.string(), box: v.tuple([Point, Point, Point, Point]), confidence: v.number() }))),
  error: v.optional(v.object({ code: v.string(), message: v.string() })),
  /** Units of stage jobs already done and deleted (detection's, once recognition is queued): progress never goes back. */
  unitsFinished: v.optional(v.number(), 0),
  /** Wallet keys of the miners whose results those units are. */
  minersFinished: v.optional(v.array(v.string()), []),
});
type OcrRecord = v.InferOutput<typeof OcrRecord>;

export class OcrService {
  private readonly records = new Map<string, OcrRecord>();
  /** OCR jobs whose next step is under way: a tick does not start it twice. */
  private readonly busy = new Set<string>();
  private readonly quotas: Quotas;
  private timer: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly dir: string, private readonly jobs: Jobs, private readonly models: OcrModels, quota: Partial<RequesterQuota>) {
    this.quotas = new Quotas(quota, (owner) => queueUsage(jobs.queue, owner));
  }

  /** Opens the OCR jobs stored in dataDir/ocr and starts following them. */
  static async open(dataDir: string, jobs: Jobs, models: OcrModels, quota: Partial<RequesterQuota> = {}): Promise<OcrService> {
    const dir = join(dataDir, 'ocr');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const service = new OcrService(dir, jobs, models, quota);
    for (const file of await readdir(dir)) {
      if (!file.endsWith('.json')) continue;
      try {
        const record = v.parse(OcrRecord, JSON.parse(await readFile(join(dir, file), 'utf8')));
        service.records.set(record.id, record);
      } catch (err) {
        log('ocr-unrecoverable', { file, error: String(err) });
      }
    }
    log('ocr-restored', { jobs: service.records.size });
    service.timer = setInterval(() => service.tick(Date.now()), TICK_MS);
    return service;
  }

  /** The queue the stage jobs live in. */
  get queue(): Jobs['queue'] {
    return this.jobs.queue;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Decodes the page and queues its detection; a 4xx for an image that cannot be a page. */
  async submit(owner: string, bytes: Uint8Array, type: PageType, nowMs: number): Promise<OcrRecord> {
    const page = await decodePage(bytes, type);
    const detJob = await this.submitStage(owner, this.models.det, detectionInput(page), DET_NORMALIZE);
    const record: OcrRecord = {
      id: randomUUID(), owner, createdAtMs: nowMs, finishedAtMs: null, page: { width: page.width, height: page.height, type }, stage: 'detect', detJob, unitsFinished: 0, minersFinished: [],
    };
    // The page is kept until its lines are cropped: a restart between detection and recognition crops it again.
    await writeFile(join(this.dir, `${record.id}.page`), bytes, { mode: 0o600 });
    await this.save(record);
    log('ocr-submitted', { job: record.id, owner, width: page.width, height: page.height, detJob });
    return record;
  }

  /** The OCR job, if it exists and belongs to this owner. */
  find(id: string, owner: string): OcrRecord | undefined {
    const record = this.records.get(id);
    return record && record.owner === owner ? record : undefined;
  }

  /** The job as the API shows it: the fields every job has, its stage, and the units of its stage jobs. */
  async view(record: OcrRecord): Promise<object> {
    let unitsTotal = record.unitsFinished;
    let unitsDone = record.unitsFinished;
    let started = false;
    const miners = new Set<string>(record.minersFinished);
    // Only the current stage's jobs: those of finished stages are counted in the record, even before they are deleted.
    const live = record.stage === 'detect' ? [record.detJob] : record.stage === 'recognize' ? (record.recJobs ?? []).map((r) => r.job) : [];
    for (const id of live) {
      const state = await this.jobs.queue.job(id);
      if (!state) continue;
      unitsTotal += state.units.size;
      unitsDone += state.output ? state.units.size : state.results.size;
      for (const miner of state.doneBy.values()) miners.add(miner);
      if ((await this.jobs.queue.status(state)) !== 'queued') started = true;
    }
    const status = record.stage === 'done' ? 'done' : record.stage === 'failed' ? 'failed' : started || record.stage === 'recognize' ? 'running' : 'queued';
    return {
      id: record.id,
      kind: 'ocr',
      status,
      stage: record.stage,
      width: record.page.width,
      height: record.page.height,
      unitsTotal,
      unitsDone: record.stage === 'done' ? unitsTotal : Math.min(unitsDone, unitsTotal),
      miners: miners.size,
      ...(record.lines ? { lines: record.lines.length } : {}),
      ...(record.error ? { error: record.error } : {}),
      createdAtMs: record.createdAtMs,
      finishedAtMs: record.finishedAtMs,
    };
  }

  /** This owner's OCR jobs, oldest first. */
  owned(owner: string): OcrRecord[] {
    return [...this.records.values()].filter((r) => r.owner === owner).sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Whether a job is a stage of an OCR job (listed as part of it, not on its own). */
  isStage(jobId: string): boolean {
    for (const record of this.records.values()) if (this.stageJobs(record).includes(jobId)) return true;
    return false;
  }

  /** The result's JSON bytes, once done. */
  result(record: OcrRecord): Uint8Array | undefined {
    if (record.stage !== 'done' || !record.lines) return undefined;
    return new TextEncoder().encode(JSON.stringify({ lines: record.lines }));
  }

  /** Forgets the OCR job, its stage jobs and its files. */
  async remove(record: OcrRecord): Promise<void> {
    this.records.delete(record.id);
    await this.removeStageJobs(this.stageJobs(record));
    await rm(join(this.dir, `${record.id}.json`), { force: true });
    await rm(join(this.dir, `${record.id}.page`), { force: true });
    log('ocr-deleted', { job: record.id });
  }

  /** Moves every open job on when its stage is done; drops finished ones past their time. */
  tick(nowMs: number): void {
    for (const record of this.records.values()) {
      if (this.busy.has(record.id)) continue;
      if ((record.stage === 'done' || record.stage === 'failed') && record.finishedAtMs !== null && nowMs - record.finishedAtMs > OCR_RESULT_TTL_MS) {
        this.busy.add(record.id);
        this.remove(record).catch((err: unknown) => log('ocr-error', { job: record.id, error: String(err) })).finally(() => this.busy.delete(record.id));
        continue;
      }
      if (record.stage !== 'detect' && record.stage !== 'recognize') continue;
      this.busy.add(record.id);
      this.advance(record)
        .catch(async (err: unknown) => {
          const error = err instanceof HttpError ? { code: err.code, message: err.message } : { code: 'internal', message: 'the OCR pipeline failed on the coordinator' };
          log('ocr-failed', { job: record.id, stage: record.stage, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
          await this.finish({ ...record, stage: 'failed', error }, Date.now());
        })
        .catch((err: unknown) => log('ocr-error', { job: record.id, error: String(err) }))
        .finally(() => this.busy.delete(record.id));
    }
  }

  private async advance(record: OcrRecord): Promise<void> {
    if (record.stage === 'detect') {
      const output = await this.stageOutput(record.detJob);
      if (!output) return;
      const boxes = detectedBoxes(output.data, output.shape, record.page).map((b) => b.box);
      const pagePath = join(this.dir, `${record.id}.page`);
      const page = await decodePage(await readFile(pagePath), record.page.type);
      const recJobs: { job: string; lines: number[] }[] = [];
      try {
        for (const batch of recognitionBatches(page, boxes)) {
          recJobs.push({ job: await this.submitStage(record.owner, this.models.rec, batch, REC_NORMALIZE), lines: batch.lines });
        }
      } catch (err) {
        await this.removeStageJobs(recJobs.map((r) => r.job));
        throw err;
      }
      const next: OcrRecord = { ...record, stage: 'recognize', boxes, recJobs, ...(await this.finishedWork(record, [record.detJob])) };
      await this.save(next);
      await rm(pagePath, { force: true });
      await this.removeStageJobs([record.detJob]);
      log('ocr-detected', { job: record.id, lines: boxes.length, recJobs: recJobs.length });
      if (recJobs.length === 0) await this.finish({ ...next, stage: 'done', lines: [] }, Date.now());
      return;
    }
    const boxes = record.boxes ?? [];
    const decoded: (DecodedLine | undefined)[] = new Array<DecodedLine | undefined>(boxes.length);
    for (const { job, lines } of record.recJobs ?? []) {
      const output = await this.stageOutput(job);
      if (!output) return;
      recognizedLines(output.data, output.shape, this.models.dictionary).forEach((line, i) => {
        decoded[lines[i]] = line;
      });
    }
    const work = await this.finishedWork(record, (record.recJobs ?? []).map((r) => r.job));
    await this.finish({ ...record, stage: 'done', lines: ocrLines(boxes as Quad[], decoded), ...work }, Date.now());
    await this.removeStageJobs((record.recJobs ?? []).map((r) => r.job));
  }

  private async finish(record: OcrRecord, nowMs: number): Promise<void> {
    const done: OcrRecord = { ...record, finishedAtMs: nowMs };
    await this.save(done);
    log('ocr-done', { job: record.id, stage: record.stage, lines: record.lines?.length, ms: nowMs - record.createdAtMs });
  }

  /** The stage job's one output once it is done; undefined while it runs. Throws when it is gone. */
  private async stageOutput(jobId: string): Promise<{ shape: number[]; data: Float32Array } | undefined> {
    const state = await this.jobs.queue.job(jobId);
    if (!state) throw new HttpError(410, 'stage-lost', `a stage job of this OCR job (${jobId}) was deleted before it finished`);
    if (!state.output) return undefined;
    const arrays = readNpz(state.output.body, MAX_STAGE_OUTPUT_BYTES / 4);
    if (!arrays.ok) throw new Error(`stage job ${jobId}: ${arrays.error.message}`);
    const [output] = arrays.value.values();
    if (!output) throw new Error(`stage job ${jobId} has no output`);
    return output;
  }

  /** Queues one stage as a job of the stage kind, owned by the requester and held against their quota. */
  private async submitStage(owner: string, model: OcrModels['det'], input: StageInput, normalize: Normalize): Promise<string> {
    const kind = this.jobs.kinds.get(OCR_STAGE_KIND);
    if (!kind) throw new Error(`the OCR stages need the ${OCR_STAGE_KIND} kind, which this coordinator does not serve`);
    const body = encodeNpz(new Map([[model.input, ndarray('u1', input.shape, Uint8Array.from(input.pixels))]]));
    const bytes = new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength);
    const params = orRefuse(kind.parseParams({ model: model.sha256, normalize: JSON.stringify(normalize), 'content-length': String(bytes.byteLength) }));
    const hold = await this.quotas.hold(owner, orRefuse(kind.footprint(params)));
    try {
      if (kind.prepare) orRefuse(await kind.prepare(params, bytes));
      const id = this.jobs.newId();
      const created = orRefuse(kind.createJob(id, params, bytes));
      const state = await this.jobs.submit(owner, kind, { id, ...created }, Date.now());
      log('job-submitted', { job: state.id, owner, kind: kind.name, ...state.view, units: state.units.size, for: 'ocr' });
      return id;
    } finally {
      hold.release();
    }
  }

  /** The record's finished units and miners, with those of these stage jobs (done, about to be deleted) added. */
  private async finishedWork(record: OcrRecord, jobIds: readonly string[]): Promise<Pick<OcrRecord, 'unitsFinished' | 'minersFinished'>> {
    let units = record.unitsFinished;
    const miners = new Set(record.minersFinished);
    for (const id of jobIds) {
      const state = await this.jobs.queue.job(id);
      if (!state) continue;
      units += state.units.size;
      for (const miner of state.doneBy.values()) miners.add(miner);
    }
    return { unitsFinished: units, minersFinished: [...miners] };
  }

  private stageJobs(record: OcrRecord): string[] {
    return [record.detJob, ...(record.recJobs ?? []).map((r) => r.job)];
  }

  private async removeStageJobs(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const state = await this.jobs.queue.job(id);
      if (state) await this.jobs.remove(state);
    }
  }

  private async save(record: OcrRecord): Promise<void> {
    this.records.set(record.id, record);
    const path = join(this.dir, `${record.id}.json`);
    await writeFile(`${path}.partial`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${path}.partial`, path);
  }
}

function orRefuse<T>(parsed: Parsed<T>): T {
  if (parsed.ok) return parsed.value;
  throw new HttpError(parsed.error.code === 'job-too-large' || parsed.error.code === 'product-too-large' ? 413 : 400, parsed.error.code, parsed.error.message);
}
