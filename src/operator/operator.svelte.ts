// The operator page's state: the operator key (from the URL's #fragment or typed in, kept for this tab only), and the
// coordinator's state polled from /api/operator/state, parsed with the schema the coordinator sends it by.
import * as v from 'valibot';
import { OperatorState, type Sample } from '../protocol/operator-state.ts';

/** How often the page asks for fresh state (the coordinator samples its counters every 2 s). */
export const POLL_EVERY_MS = 2_000;
/** Samples the page keeps for its charts: an hour at one every 2 s. */
const SAMPLES_KEPT = 1_800;
const KEY_STORAGE = 'ergon-operator-key';

type Current = Omit<OperatorState, 'history'>;

class OperatorPage {
  key = $state('');
  /** The latest state, without its samples (they accumulate in `history`). */
  current = $state<Current | null>(null);
  history = $state<Sample[]>([]);
  /** A sentence saying why the last poll failed; '' when it worked. */
  error = $state('');
  /** True when the coordinator refused the key: the page asks for it again. */
  refused = $state(false);
  polls = $state(0);
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Takes the key from `#key=...` (what `npm start` prints) and removes it from the address bar and history, so it
   * is not left on screen or in a bookmark; else the one this tab was given before.
   */
  start(): void {
    const fromFragment = new URLSearchParams(location.hash.slice(1)).get('key');
    if (fromFragment) {
      sessionStorage.setItem(KEY_STORAGE, fromFragment);
      history.replaceState(null, '', location.pathname + location.search);
    }
    this.key = sessionStorage.getItem(KEY_STORAGE) ?? '';
    if (this.key !== '') void this.poll();
  }

  useKey(key: string): void {
    this.key = key.trim();
    sessionStorage.setItem(KEY_STORAGE, this.key);
    this.refused = false;
    this.error = '';
    this.history = [];
    this.current = null;
    clearTimeout(this.timer);
    void this.poll();
  }

  forgetKey(): void {
    clearTimeout(this.timer);
    sessionStorage.removeItem(KEY_STORAGE);
    this.key = '';
    this.current = null;
    this.history = [];
  }

  private async poll(): Promise<void> {
    const since = this.history.at(-1)?.atMs;
    try {
      const res = await fetch(`/api/operator/state${since === undefined ? '' : `?since=${since}`}`, {
        headers: { authorization: `Bearer ${this.key}` },
        cache: 'no-store',
      });
      const body: unknown = await res.json().catch(() => null);
      if (!res.ok) {
        this.error = errorSentence(body) ?? `the coordinator answered ${res.status}`;
        if (res.status === 401) {
          this.refused = true;
          return; // no more polls until a key is given
        }
      } else {
        const parsed = v.safeParse(OperatorState, body);
        if (!parsed.success) {
          this.error = `the coordinator sent a state this page cannot read: ${parsed.issues[0]?.message ?? 'unknown issue'}`;
        } else {
          const { history, ...current } = parsed.output;
          this.current = current;
          const merged = [...this.history, ...history.filter((s) => s.atMs > (since ?? -1))];
          this.history = merged.slice(-SAMPLES_KEPT);
          this.error = '';
          this.polls++;
        }
      }
    } catch (err) {
      this.error = `the coordinator could not be reached: ${(err as Error).message}`;
    }
    this.timer = setTimeout(() => void this.poll(), POLL_EVERY_MS);
  }
}

function errorSentence(body: unknown): string | undefined {
  const parsed = v.safeParse(v.object({ error: v.object({ code: v.string(), message: v.string() }) }), body);
  return parsed.success ? parsed.output.error.message : undefined;
}

export const operatorPage = new OperatorPage();

/** Micro-credits (decimal digits) as credits with six decimals, exactly: no float ever touches money. */
export function formatMicroCredits(micro: string): string {
  const negative = micro.startsWith('-');
  const digits = (negative ? micro.slice(1) : micro).padStart(7, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

export const shortKey = (hex: string): string => (hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex);

/** A rate with three significant digits at any scale (a SwiftShader miner and a data-centre GPU differ 10^4-fold). */
export function significant(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return x === 0 ? '0' : String(x);
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}
