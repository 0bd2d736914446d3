// `ergon`, the requester's command line: GEMM on .npy files, ONNX on .npz, OCR on a page image, and the key's jobs;
// every failure a sentence and a documented exit code, never a stack trace.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { decodeNpy, encodeNpy, type NdArray } from '../protocol/npy.ts';
import { decodeNpz } from '../protocol/npz.ts';
import {
  ErgonApiError, ErgonClient, ErgonInputError, ErgonJobFailedError, ErgonUnreachableError, gemmShape, imageType, productOf, type JobView, type Progress,
} from './client.ts';
import { ProgressReporter } from './progress.ts';

/** Exit codes a script can rely on; --help and the README list them. */
export const EXIT = {
  ok: 0,
  /** a bug in ergon itself: the message says what broke */
  internal: 1,
  /** the command line is wrong: unknown command or flag, missing argument, no URL or key */
  usage: 2,
  /** an input file cannot be read or is not what the command needs (malformed or truncated, shapes that do not fit) */
  badInput: 3,
  /** the coordinator refused the request (wrong key, limits, unknown job, ...): its code and sentence are printed */
  refused: 4,
  /** the coordinator could not be reached */
  unreachable: 5,
  /** the job ended without a result, or was deleted while waited on */
  jobFailed: 6,
} as const;

export const HELP = `ergon: submit work to an Ergon coordinator and fetch verified results.

Usage:
  ergon gemm A.npy B.npy -o C.npy [--f16]   C = A·B (A is MxK, B is KxN; any real dtype, sent as f32)
  ergon onnx MODEL.onnx INPUTS.npz -o OUT.npz
                                             stores the model (by its sha256) and runs it on the inputs
                                             (one array per input name, the first axis the batch)
  ergon ocr PAGE.png|PAGE.jpg [--json]      the page's text, one line per line read (--json: lines with boxes)
  ergon result ID -o FILE                   waits for a job and fetches its result (a gemm job's C as .npy)
  ergon jobs [--json]                       this key's jobs
  ergon status ID [--json]                  one job
  ergon delete ID                           forgets a job and its result

Options:
  --url URL      the coordinator (default: $ERGON_URL)
  --key KEY      the API key (default: $ERGON_API_KEY)
  --keep         gemm/onnx/ocr: keep the job on the coordinator after fetching its result (it is deleted by default)
  -q, --quiet    no progress
  -h, --help     this text

Progress (units verified of total, throughput, ETA) goes to stderr: a bar on a terminal, plain lines when piped.

Exit codes:
  0  done
  1  internal error in ergon (please report it)
  2  usage: unknown command or option, missing argument, no URL or key
  3  bad input file: unreadable, malformed or truncated .npy/.npz/image, shapes that do not fit
  4  the coordinator refused (wrong key, limits, unknown job...): its code and sentence are printed
  5  the coordinator cannot be reached
  6  the job failed or was deleted before it was done
`;

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** fetch to use; tests inject one to see the requests a command makes */
  fetch?: typeof fetch;
}

class UsageError extends Error {}

/** Runs one command; resolves with its exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    const [code, line] = describe(err);
    io.stderr.write(`ergon: ${line}\n`);
    if (code === EXIT.usage) io.stderr.write('Run "ergon --help" for usage.\n');
    return code;
  }
}

/** The exit code and the sentence for whatever stopped a command. */
function describe(err: unknown): [number, string] {
  if (err instanceof UsageError) return [EXIT.usage, err.message];
  if (err instanceof InputFileError) return [EXIT.badInput, err.message];
  if (err instanceof ErgonInputError) return [err.code === 'bad-url' ? EXIT.usage : EXIT.badInput, err.message];
  if (err instanceof ErgonApiError) {
    const hint = err.code === 'bad-api-key' || err.code === 'no-api-key' ? ' (check --key or ERGON_API_KEY)' : '';
    return [EXIT.refused, `the coordinator refused: ${err.code}: ${err.message}${hint}`];
  }
  if (err instanceof ErgonUnreachableError) return [EXIT.unreachable, `${err.message} (check --url or ERGON_URL, and that the coordinator is running)`];
  if (err instanceof ErgonJobFailedError) return [EXIT.jobFailed, err.message];
  return [EXIT.internal, `internal error: ${err instanceof Error ? err.message : String(err)}`];
}

/** An input file that cannot be used: exit 3. */
class InputFileError extends Error {}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        output: { type: 'string', short: 'o' },
        f16: { type: 'boolean' },
        json: { type: 'boolean' },
        keep: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values: flags, positionals } = parsed;
  const [command, ...args] = positionals;
  if (flags.help || command === 'help') {
    io.stdout.write(HELP);
    return EXIT.ok;
  }
  if (command === undefined) throw new UsageError('no command given');
  const expect = (count: number, names: string) => {
    if (args.length !== count) throw new UsageError(`"ergon ${command}" takes ${names}; got ${args.length} argument${args.length === 1 ? '' : 's'}`);
  };
  const allowOnly = (...allowed: string[]) => {
    for (const flag of ['output', 'f16', 'json', 'keep'] as const) {
      if (flags[flag] !== undefined && !allowed.includes(flag)) throw new UsageError(`--${flag} does not apply to "ergon ${command}"`);
    }
  };
  const output = () => {
    if (!flags.output) throw new UsageError(`"ergon ${command}" needs -o FILE for its result`);
    return flags.output;
  };

  const client = () => {
    const url = flags.url ?? io.env.ERGON_URL;
    const key = flags.key ?? io.env.ERGON_API_KEY;
    if (!url) throw new UsageError('no coordinator URL: pass --url URL or set ERGON_URL');
    if (!key) throw new UsageError('no API key: pass --key KEY or set ERGON_API_KEY');
    return new ErgonClient({ url, apiKey: key, fetch: io.fetch });
  };
  const progress = new ProgressReporter(io.stderr, { quiet: flags.quiet ?? false });
  const wait = async (c: ErgonClient, job: JobView) => {
    progress.line(`job ${job.id} submitted: ${job.unitsTotal} unit${job.unitsTotal === 1 ? '' : 's'} (if interrupted: ergon result ${job.id} -o FILE)`);
    try {
      return await c.wait(job.id, { onProgress: (p: Progress) => progress.update(p) });
    } finally {
      progress.end();
    }
  };
  const fetchResult = async (c: ErgonClient, job: JobView) => {
    const result = await c.result(job.id, { onBytes: (received, total) => progress.bytes(received, total) });
    progress.end();
    return result;
  };
  const forget = async (c: ErgonClient, job: JobView) => {
    if (!flags.keep) await c.delete(job.id);
  };

  switch (command) {
    case 'gemm': {
      expect(2, 'A.npy B.npy');
      allowOnly('output', 'f16', 'keep');
      const out = output();
      const a = await readNpy(args[0], 'A');
      const b = await readNpy(args[1], 'B');
      gemmShape(a, b);
      const c = client();
      const job = await c.submitGemm(a, b, { precision: flags.f16 ? 'f16' : 'f32' });
      await wait(c, job);
      const product = await c.gemmResult(job.id, { onBytes: (received, total) => progress.bytes(received, total) });
      progress.end();
      await writeOutput(out, encodeNpy(product));
      await forget(c, job);
      progress.line(`C (${product.shape.join('x')}, f32) written to ${out}`);
      return EXIT.ok;
    }
    case 'onnx': {
      expect(2, 'MODEL.onnx INPUTS.npz');
      allowOnly('output', 'keep');
      const out = output();
      const model = await readInput(args[0]);
      const npz = await readInput(args[1]);
      const inputs = decodeNpz(npz);
      if (!inputs.ok) throw new InputFileError(`${args[1]}: ${inputs.error.message}`);
      const c = client();
      const stored = await c.uploadModel(model);
      progress.line(`model ${stored.id} stored`);
      const job = await c.submitOnnx(stored.id, npz);
      await wait(c, job);
      const result = await fetchResult(c, job);
      const outputs = decodeNpz(result.body);
      if (!outputs.ok) throw new ErgonApiError(200, 'bad-response', `the coordinator's result is not an .npz: ${outputs.error.message}`);
      await writeOutput(out, result.body);
      await forget(c, job);
      progress.line(`outputs ${[...outputs.value.keys()].join(', ')} written to ${out}`);
      return EXIT.ok;
    }
    case 'ocr': {
      expect(1, 'PAGE.png (or .jpg)');
      allowOnly('json', 'keep');
      const image = await readInput(args[0]);
      try {
        imageType(image);
      } catch (err) {
        throw new InputFileError(`${args[0]}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const c = client();
      const job = await c.submitOcr(image);
      await wait(c, job);
      const result = await fetchResult(c, job);
      const text = new TextDecoder().decode(result.body);
      const lines = ocrLines(text);
      io.stdout.write(flags.json ? `${JSON.stringify({ lines }, null, 2)}\n` : lines.map((line) => `${line.text}\n`).join(''));
      await forget(c, job);
      return EXIT.ok;
    }
    case 'result': {
      expect(1, 'a job ID');
      allowOnly('output', 'keep');
      const out = output();
      const c = client();
      const job = await c.wait(args[0], { onProgress: (p: Progress) => progress.update(p) });
      progress.end();
      const result = await fetchResult(c, job);
      // A gemm job's product comes with its shape: written as .npy; any other result as the bytes served.
      const isProduct = result.headers.get('x-ergon-shape') !== null;
      await writeOutput(out, isProduct ? encodeNpy(productOf(job.id, result)) : result.body);
      await forget(c, job);
      progress.line(`result of job ${job.id} written to ${out}`);
      return EXIT.ok;
    }
    case 'jobs': {
      expect(0, 'no arguments');
      allowOnly('json');
      const jobs = await client().jobs();
      if (flags.json) io.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
      else io.stdout.write(jobTable(jobs));
      return EXIT.ok;
    }
    case 'status': {
      expect(1, 'a job ID');
      allowOnly('json');
      const job = await client().job(args[0]);
      io.stdout.write(flags.json ? `${JSON.stringify(job, null, 2)}\n` : jobLines(job));
      return EXIT.ok;
    }
    case 'delete': {
      expect(1, 'a job ID');
      allowOnly();
      await client().delete(args[0]);
      io.stdout.write(`job ${args[0]} deleted\n`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new InputFileError(`cannot read ${path}: ${err instanceof Error && 'code' in err ? String(err.code) : String(err)}`);
  }
}

async function readNpy(path: string, name: string): Promise<NdArray> {
  const parsed = decodeNpy(await readInput(path));
  if (!parsed.ok) throw new InputFileError(`${name} (${path}): ${parsed.error.message}`);
  return parsed.value;
}

async function writeOutput(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (err) {
    throw new InputFileError(`cannot write ${path}: ${err instanceof Error && 'code' in err ? String(err.code) : String(err)}`);
  }
}

interface OcrLine {
  text: string;
  box?: unknown;
  confidence?: unknown;
}

/** The lines of an OCR result ({"lines": [{"text", "box", "confidence"}]}), checked. */
export function ocrLines(json: string): OcrLine[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ErgonApiError(200, 'bad-response', 'the OCR result is not JSON');
  }
  const lines = typeof parsed === 'object' && parsed !== null && 'lines' in parsed ? parsed.lines : undefined;
  if (!Array.isArray(lines) || !lines.every((l): l is OcrLine => typeof l === 'object' && l !== null && typeof (l as OcrLine).text === 'string')) {
    throw new ErgonApiError(200, 'bad-response', 'the OCR result has no list of lines with text');
  }
  return lines;
}

function jobTable(jobs: readonly JobView[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  const rows = [['ID', 'KIND', 'STATUS', 'UNITS', 'CREATED'], ...jobs.map((j) => [j.id, j.kind, j.status, `${j.unitsDone}/${j.unitsTotal}`, new Date(j.createdAtMs).toISOString()])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n') + '\n';
}

function jobLines(job: JobView): string {
  return Object.entries(job)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => `${key}: ${key.endsWith('AtMs') && typeof value === 'number' ? new Date(value).toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value)}\n`)
    .join('');
}
