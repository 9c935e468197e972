/**
 * Prints progress while a pass runs: the line redrawn in place on a terminal, a new line every
 * `--progress-interval` seconds otherwise, JSON lines with `--json`; and the pass summary.
 */
import type { Writable } from "node:stream";
import {
  RateMeter,
  formatProgressLine,
  formatSummary,
  progressJson,
  type Counters,
  type PassSummary,
  type ProgressSnapshot,
  type Rates,
} from "./progress.js";

/** Options of {@link ProgressReporter}. */
export interface ReporterOptions {
  /** Where progress and summaries go. */
  readonly out: Writable;
  /** The output is a terminal: redraw one line in place. */
  readonly tty: boolean;
  /** Emit JSON lines instead of text. */
  readonly json: boolean;
  /** Seconds between lines when not on a terminal. */
  readonly intervalSeconds: number;
  /** Print nothing while running (the summary still prints). */
  readonly quiet?: boolean;
}

/** Redraws or prints the progress of the current pass. */
export class ProgressReporter {
  private timer?: NodeJS.Timeout;
  private meter = new RateMeter();
  private lastRates: Rates = { dnld: 0, dlBytes: 0, upld: 0, ulBytes: 0, done: 0 };
  private drawn = false;
  private counters?: Readonly<Counters>;
  private total?: () => number | undefined;
  private pass = 0;

  /** Creates a reporter; nothing prints until {@link start}. */
  constructor(private readonly options: ReporterOptions) {}

  /** Starts reporting a pass's counters; `total` gives the expected key count when known. */
  start(pass: number, counters: Readonly<Counters>, total: () => number | undefined): void {
    this.stop();
    this.pass = pass;
    this.counters = counters;
    this.total = total;
    this.meter = new RateMeter();
    this.meter.sample(Date.now(), counters);
    if (this.options.quiet) return;
    const every =
      this.options.tty && !this.options.json ? 1000 : this.options.intervalSeconds * 1000;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  /** The latest snapshot (counters, rates over the last seconds, total). */
  snapshot(): ProgressSnapshot | undefined {
    if (!this.counters) return undefined;
    const total = this.total?.();
    return total === undefined
      ? { counters: this.counters, rates: this.lastRates }
      : { counters: this.counters, rates: this.lastRates, total };
  }

  private tick(): void {
    if (!this.counters) return;
    this.lastRates = this.meter.sample(Date.now(), this.counters);
    this.print();
  }

  private print(): void {
    const snap = this.snapshot();
    if (!snap) return;
    if (this.options.json) {
      this.options.out.write(JSON.stringify(progressJson(snap, this.pass)) + "\n");
    } else if (this.options.tty) {
      // \r and "erase line" (ECMA-48 EL, CSI 2 K) redraw in place.
      this.options.out.write(`\r\x1b[2K${formatProgressLine(snap)}`);
      this.drawn = true;
    } else {
      this.options.out.write(formatProgressLine(snap) + "\n");
    }
  }

  /** Stops the timer and prints the final line of the pass. */
  finish(): void {
    if (!this.counters) return;
    this.stop();
    this.lastRates = this.meter.sample(Date.now(), this.counters);
    if (!this.options.quiet) this.print();
    if (this.drawn) this.options.out.write("\n");
    this.drawn = false;
  }

  /** Prints a pass summary (text or JSON). */
  summary(summary: PassSummary): void {
    this.options.out.write(
      this.options.json ? JSON.stringify(summary) + "\n" : formatSummary(summary) + "\n",
    );
  }

  /** Stops the timer without printing. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
