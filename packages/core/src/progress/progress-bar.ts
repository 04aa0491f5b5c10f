/**
 * tqdm-style progress bars for a terminal: `desc: 50%|█████     | 8/16 [00:01<00:01, 7.50it/s]`.
 * Bars stack at the bottom of the screen; `write` prints a line above them. Rendering is
 * synchronous and throttled, with no timers, so a bar can never keep the process alive.
 */

/** What a bar needs of a stream: a `process.stdout`-like writable. */
export interface BarStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface BarOptions {
  total: number;
  desc?: string;
  /** Keep the finished bar on screen (true) or erase it (false). */
  leave?: boolean;
  /** Where the count starts (a resumed run); the rate counts only what this bar saw. */
  initial?: number;
}

const MIN_REDRAW_MS = 100;

export class ProgressBar {
  n: number;
  readonly total: number;
  readonly desc: string;
  readonly leave: boolean;
  readonly initial: number;
  readonly startedAt: number;

  constructor(
    private readonly screen: BarScreen,
    options: BarOptions,
  ) {
    this.total = options.total;
    this.desc = options.desc ?? "";
    this.leave = options.leave ?? true;
    this.initial = options.initial ?? 0;
    this.n = this.initial;
    this.startedAt = screen.now();
  }

  update(increment = 1): void {
    this.n += increment;
    this.screen.changed(this.n >= this.total);
  }

  close(): void {
    this.screen.remove(this);
  }

  /** The bar's line at a given width and time, as tqdm draws it, at most `width` long. */
  render(width: number, now: number): string {
    const elapsed = Math.max(0, (now - this.startedAt) / 1000);
    const done = this.n - this.initial;
    const rate = elapsed > 0 && done > 0 ? done / elapsed : undefined;
    const remaining = rate !== undefined && this.total > 0 ? (this.total - this.n) / rate : NaN;
    const share = this.total > 0 ? Math.min(1, Math.max(0, this.n / this.total)) : 0;
    const percent = `${String(Math.floor(share * 100)).padStart(3)}%`;
    const rateText =
      rate === undefined
        ? "?it/s"
        : rate >= 1
          ? `${rate.toFixed(2).padStart(5)}it/s`
          : `${(1 / rate).toFixed(2).padStart(5)}s/it`;
    const stats = ` ${this.n}/${this.total} [${clock(elapsed)}<${clock(remaining)}, ${rateText}]`;
    const prefix = `${this.desc ? `${this.desc}: ` : ""}${percent}|`;
    const barWidth = Math.max(1, width - prefix.length - stats.length - 1);
    return `${prefix}${fill(share, barWidth)}|${stats}`.slice(0, width);
  }
}

/** Owns the bottom lines of a terminal where open bars are drawn. */
export class BarScreen {
  private readonly bars: ProgressBar[] = [];
  private drawnLines = 0;
  private lastDraw = -Infinity;

  constructor(
    readonly stream: BarStream,
    readonly now: () => number = () => performance.now(),
  ) {}

  open(options: BarOptions): ProgressBar {
    const bar = new ProgressBar(this, options);
    this.bars.push(bar);
    this.redraw();
    return bar;
  }

  /** Prints a line above the bars. */
  write(line: string): void {
    this.stream.write(`${this.erase()}${line}\n${this.draw()}`);
  }

  changed(force: boolean): void {
    if (force || this.now() - this.lastDraw >= MIN_REDRAW_MS) this.redraw();
  }

  remove(bar: ProgressBar): void {
    const index = this.bars.indexOf(bar);
    if (index === -1) return;
    const erase = this.erase();
    this.bars.splice(index, 1);
    const kept = bar.leave ? `${bar.render(this.width(), this.now())}\n` : "";
    this.stream.write(`${erase}${kept}${this.draw()}`);
  }

  private redraw(): void {
    this.stream.write(`${this.erase()}${this.draw()}`);
  }

  /** Clears the lines the bars occupy and leaves the cursor at the start of the first. */
  private erase(): string {
    if (this.drawnLines === 0) return "";
    const up = "\x1b[1A\r\x1b[K".repeat(this.drawnLines - 1);
    this.drawnLines = 0;
    return `\r\x1b[K${up}`;
  }

  private draw(): string {
    if (this.bars.length === 0) return "";
    const now = this.now();
    this.lastDraw = now;
    this.drawnLines = this.bars.length;
    return this.bars.map((bar) => bar.render(this.width(), now)).join("\n");
  }

  /**
   * One less than the terminal's width (never more), so a bar never wraps: a wrapped line
   * could not be erased in place.
   */
  private width(): number {
    const columns = this.stream.columns || 80;
    return Math.max(1, Math.min(columns, 161) - 1);
  }
}

function fill(share: number, width: number): string {
  const eighths = Math.floor(share * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  const partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
  const body = "█".repeat(full) + (full < width ? partials[partial] : "");
  return body.padEnd(width, " ");
}

/** Seconds as tqdm shows them (whole seconds, cut): mm:ss, or h:mm:ss; "?" when unknown. */
function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const total = Math.floor(Math.max(0, seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}
