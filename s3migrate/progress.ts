/**
 * Progress of a pass: the counters of DESIGN.md section 4, the progress line built from them,
 * its JSON form, rates over a sliding window, and the end-of-pass summary.
 *
 * The line, exactly:
 * `obj=1234 :: ign=56 exist=89 work=123 [45% ~2h:34m:12s] :: fail=2 skip(dn=3 up=4) dnld=567 (12.3/s) dl.byt=1.2GB (45MB/s) upld=560 (12.1/s) ul.byt=1.1GB (43MB/s)`
 */

/** The counters of one pass. All are cumulative within the pass. */
export interface Counters {
  /** Keys read from the key source (after `--start-after`). */
  obj: number;
  /** Keys of other shards. */
  ign: number;
  /** Keys found in the `--dest-folder` lists. */
  exist: number;
  /** Keys handed to the workers (to copy, or counted as "would copy" in a dry run). */
  work: number;
  /** Keys that failed after their retries (in failed.log). */
  fail: number;
  /** Keys missing on the source (`skip(dn)`). */
  skipDn: number;
  /** Keys already on the target (`skip(up)`: 412 or found by HEAD). */
  skipUp: number;
  /** Objects downloaded from the source. */
  dnld: number;
  /** Bytes downloaded. */
  dlBytes: number;
  /** Objects written to the target. */
  upld: number;
  /** Bytes uploaded. */
  ulBytes: number;
  /** Keys finished in any way (for the percentage and the ETA). */
  done: number;
  /** Keys skipped by `--start-after`/`--resume` (count as done for the percentage). */
  before: number;
}

/** A fresh set of zero counters. */
export function newCounters(): Counters {
  return {
    obj: 0,
    ign: 0,
    exist: 0,
    work: 0,
    fail: 0,
    skipDn: 0,
    skipUp: 0,
    dnld: 0,
    dlBytes: 0,
    upld: 0,
    ulBytes: 0,
    done: 0,
    before: 0,
  };
}

/** Rates shown on the progress line, per second. */
export interface Rates {
  readonly dnld: number;
  readonly dlBytes: number;
  readonly upld: number;
  readonly ulBytes: number;
  /** Keys finished per second, for the ETA. */
  readonly done: number;
}

/** Everything the progress line shows. */
export interface ProgressSnapshot {
  readonly counters: Readonly<Counters>;
  readonly rates: Rates;
  /** Total keys expected in the pass (before `--start-after` included), when known. */
  readonly total?: number;
}

/** Formats a byte count with decimal units (B, KB, MB, GB, TB, PB): one decimal below 10. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let v = Math.max(0, bytes);
  let i = 0;
  while (i < units.length - 1 && v >= 1000) {
    v /= 1000;
    i++;
  }
  let text = i === 0 || v >= 9.95 ? String(Math.round(v)) : v.toFixed(1);
  if (text === "1000" && i < units.length - 1) {
    text = "1.0";
    i++;
  }
  return `${text}${units[i]}`;
}

/** Formats seconds as `2h:34m:12s` (hours unbounded, minutes and seconds two digits). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}h:${String(m).padStart(2, "0")}m:${String(s % 60).padStart(2, "0")}s`;
}

/** Percentage done (0..100, floored) and seconds left, when the total is known. */
export function estimate(snapshot: ProgressSnapshot): { percent?: number; etaSeconds?: number } {
  const { total, counters: c, rates } = snapshot;
  if (total === undefined || total <= 0) return {};
  const finished = Math.min(total, c.before + c.done);
  const percent = Math.floor((finished / total) * 100);
  const left = total - finished;
  if (left === 0) return { percent, etaSeconds: 0 };
  return rates.done > 0 ? { percent, etaSeconds: left / rates.done } : { percent };
}

/** The progress line of DESIGN.md section 4. */
export function formatProgressLine(snapshot: ProgressSnapshot): string {
  const c = snapshot.counters;
  const r = snapshot.rates;
  const { percent, etaSeconds } = estimate(snapshot);
  const pct = percent === undefined ? "?" : String(percent);
  const eta = etaSeconds === undefined ? "?" : formatDuration(etaSeconds);
  return (
    `obj=${c.obj} :: ign=${c.ign} exist=${c.exist} work=${c.work} [${pct}% ~${eta}] :: ` +
    `fail=${c.fail} skip(dn=${c.skipDn} up=${c.skipUp}) ` +
    `dnld=${c.dnld} (${r.dnld.toFixed(1)}/s) dl.byt=${formatBytes(c.dlBytes)} (${formatBytes(r.dlBytes)}/s) ` +
    `upld=${c.upld} (${r.upld.toFixed(1)}/s) ul.byt=${formatBytes(c.ulBytes)} (${formatBytes(r.ulBytes)}/s)`
  );
}

/** The JSON form of a progress line (one JSON line per interval with `--json`). */
export function progressJson(snapshot: ProgressSnapshot, pass: number): Record<string, unknown> {
  const { percent, etaSeconds } = estimate(snapshot);
  const c = snapshot.counters;
  return {
    type: "progress",
    pass,
    obj: c.obj,
    ign: c.ign,
    exist: c.exist,
    work: c.work,
    fail: c.fail,
    skipDn: c.skipDn,
    skipUp: c.skipUp,
    dnld: c.dnld,
    dlBytes: c.dlBytes,
    upld: c.upld,
    ulBytes: c.ulBytes,
    total: snapshot.total ?? null,
    percent: percent ?? null,
    etaSeconds: etaSeconds === undefined ? null : Math.round(etaSeconds),
    rates: { ...snapshot.rates },
  };
}

interface Sample {
  readonly t: number;
  readonly c: Counters;
}

/** Rates over a sliding time window of counter samples. */
export class RateMeter {
  private readonly samples: Sample[] = [];

  /** Creates a meter averaging over `windowMs`. */
  constructor(private readonly windowMs = 10_000) {}

  /** Records the counters at time `t` (ms) and returns the rates since the oldest sample in the window. */
  sample(t: number, counters: Readonly<Counters>): Rates {
    this.samples.push({ t, c: { ...counters } });
    while (this.samples.length > 2 && t - (this.samples[1] as Sample).t >= this.windowMs) {
      this.samples.shift();
    }
    const old = this.samples[0] as Sample;
    const dt = (t - old.t) / 1000;
    const rate = (k: keyof Counters): number => (dt > 0 ? (counters[k] - old.c[k]) / dt : 0);
    return {
      dnld: rate("dnld"),
      dlBytes: rate("dlBytes"),
      upld: rate("upld"),
      ulBytes: rate("ulBytes"),
      done: rate("done"),
    };
  }
}

/** The end-of-pass summary. */
export interface PassSummary {
  readonly type: "summary";
  readonly pass: number;
  readonly dryRun: boolean;
  /** A `--verify` pass: keys were compared, not copied; mismatches are `errors.Mismatch`. */
  readonly verify: boolean;
  readonly seconds: number;
  readonly counters: Counters;
  /** Failed keys by error code. */
  readonly errors: Record<string, number>;
  /** Objects per second and bytes per second uploaded, over the whole pass. */
  readonly rates: { readonly objects: number; readonly bytes: number };
}

/** Builds the summary of a pass. */
export function summarize(options: {
  pass: number;
  dryRun: boolean;
  verify?: boolean;
  seconds: number;
  counters: Readonly<Counters>;
  errors: ReadonlyMap<string, number>;
}): PassSummary {
  const s = Math.max(options.seconds, 0.001);
  return {
    type: "summary",
    pass: options.pass,
    dryRun: options.dryRun,
    verify: options.verify ?? false,
    seconds: Math.round(options.seconds * 1000) / 1000,
    counters: { ...options.counters },
    errors: Object.fromEntries([...options.errors].sort(([a], [b]) => (a < b ? -1 : 1))),
    rates: { objects: options.counters.upld / s, bytes: options.counters.ulBytes / s },
  };
}

/** The summary as text lines for people. */
export function formatSummary(summary: PassSummary): string {
  const c = summary.counters;
  const errors = Object.entries(summary.errors)
    .map(([code, n]) => `${code}=${n}`)
    .join(" ");
  const mismatches = summary.errors.Mismatch ?? 0;
  const copied = summary.verify
    ? `checked ${c.work} objects, ${mismatches} differ${mismatches > 0 ? " (see verify.log)" : ""}`
    : summary.dryRun
      ? `would copy ${c.work} objects`
      : `copied ${c.upld} objects, ${formatBytes(c.ulBytes)} ` +
        `(${summary.rates.objects.toFixed(1)}/s, ${formatBytes(summary.rates.bytes)}/s)`;
  return [
    `pass ${summary.pass}${summary.verify ? " (verify)" : summary.dryRun ? " (dry run)" : ""} finished in ${formatDuration(summary.seconds)}: ${copied}`,
    `  read=${c.obj} ign=${c.ign} exist=${c.exist} skip(dn=${c.skipDn} up=${c.skipUp}) fail=${c.fail}` +
      (errors ? ` errors: ${errors}` : ""),
  ].join("\n");
}
