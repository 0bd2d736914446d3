// The CLI's progress: a bar redrawn in place on a terminal, plain lines (only when something changed) when piped.
import type { Progress } from './client.ts';

const BAR_WIDTH = 24;
/** Piped output gets at most one line per this many ms, besides the first and the last. */
const PLAIN_EVERY_MS = 2_000;

interface Stream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressReporter {
  private drawn = false;
  private lastPlain = '';
  private lastPlainMs = 0;

  constructor(private readonly stream: Stream, private readonly options: { quiet: boolean }) {}

  /** A line of its own (e.g. "job ... submitted"). */
  line(text: string): void {
    if (this.options.quiet) return;
    this.end();
    this.stream.write(`${text}\n`);
  }

  update({ job, unitsPerSecond, etaMs }: Progress): void {
    const rate = unitsPerSecond === undefined ? '- units/s' : `${unitsPerSecond.toFixed(unitsPerSecond < 10 ? 2 : 0)} units/s`;
    const eta = job.status === 'done' ? 'done' : etaMs === undefined ? 'ETA -' : `ETA ${formatDuration(etaMs)}`;
    const counts = `${job.unitsDone}/${job.unitsTotal} units verified`;
    if (this.stream.isTTY) {
      const filled = job.unitsTotal > 0 ? Math.round((job.unitsDone / job.unitsTotal) * BAR_WIDTH) : 0;
      this.draw(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${counts}  ${rate}  ${eta}`);
    } else {
      this.plain(`progress: ${counts}, ${rate}, ${eta}`, job.status === 'done');
    }
  }

  bytes(received: number, total: number): void {
    const text = `result: ${formatBytes(received)} of ${formatBytes(total)}`;
    if (this.stream.isTTY) this.draw(text);
    else this.plain(text, received === total);
  }

  /** Ends a bar drawn in place with a newline, so that what follows starts on its own line. */
  end(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private draw(text: string): void {
    if (this.options.quiet) return;
    const width = (this.stream.columns ?? 80) - 1;
    this.stream.write(`\r\x1b[2K${text.slice(0, width)}`);
    this.drawn = true;
  }

  private plain(text: string, last: boolean): void {
    if (this.options.quiet || text === this.lastPlain) return;
    // Counts that changed are printed at most every PLAIN_EVERY_MS, so a log is not flooded; the last always is.
    const nowMs = Date.now();
    if (!last && this.lastPlain !== '' && nowMs - this.lastPlainMs < PLAIN_EVERY_MS) return;
    this.lastPlain = text;
    this.lastPlainMs = nowMs;
    this.stream.write(`${text}\n`);
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
