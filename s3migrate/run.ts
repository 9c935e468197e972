/**
 * One s3migrate run: passes over the key stream with a bounded worker pool, the ordered
 * migrate.log, failed.log, progress, summary and exit code. The S3 side is behind
 * {@link ObjectCopier} (s3migrate/copier.ts is the real one), so the pass logic here is the
 * same for copy, dry run and verify.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { compareKeys } from "../s3/key-order.js";
import { FailedLog } from "./failed-log.js";
import { classifyKeys, countFolderKeys, folderKeys } from "./key-source.js";
import type { MigrateOptions } from "./options.js";
import { OrderedLog, readLastLogKey, type LogTicket } from "./ordered-log.js";
import { newCounters, summarize, type Counters, type PassSummary } from "./progress.js";
import type { ProgressReporter } from "./reporter.js";

/** What happened to one key. */
export type CopyOutcome =
  /** Written to the target; `bytes` uploaded. */
  | { readonly kind: "copied"; readonly bytes: number }
  /** Missing on the source (`skip(dn)`). */
  | { readonly kind: "skipDn" }
  /** Already on the target (`skip(up)`). */
  | { readonly kind: "skipUp" }
  /** Verify mode: source and target agree. */
  | { readonly kind: "verified" }
  /** Verify mode: they differ; `problem` says how. */
  | { readonly kind: "mismatch"; readonly problem: string };

/** What a copier gets with each key. */
export interface CopyContext {
  /** Aborts the copy (second Ctrl-C): abandon the object, leave nothing half-written. */
  readonly signal: AbortSignal;
  /** The pass counters; the copier adds downloads and bytes as they stream. */
  readonly counters: Counters;
  /** 1-based attempt number. */
  readonly attempt: number;
}

/** The S3 side of a run. */
export interface ObjectCopier {
  /** Copies (or, in verify mode, compares) one key. Throws on failure. */
  copy(key: string, ctx: CopyContext): Promise<CopyOutcome>;
  /** Classifies an error thrown by {@link copy}: its code and whether another attempt may help. */
  describeError(err: unknown): {
    code: string;
    message: string;
    retryable: boolean;
    slowDown: boolean;
  };
  /** Waits before the next attempt (jittered backoff, shared across workers for 503/429). */
  backoff(attempt: number, slowDown: boolean, signal: AbortSignal): Promise<void>;
  /** Lists source keys in order after `startAfter` (`--list-source`). */
  listSource?(startAfter: string | undefined): AsyncIterable<string>;
}

/** Where a run writes and how it is stopped. */
export interface RunIo {
  /** Progress and summaries. */
  readonly reporter: ProgressReporter;
  /** Fires on the first Ctrl-C/SIGTERM: take no more keys, let in-flight keys finish. */
  readonly stop: AbortSignal;
  /** Fires on the second: abandon in-flight keys. */
  readonly abort: AbortSignal;
  /** Messages for people (warnings). */
  readonly err: Writable;
}

/** Names of the files a run writes in `--dest-folder` (suffixed per shard when sharded). */
export interface RunFiles {
  readonly migrateLog: string;
  readonly failedLog: string;
  readonly verifyLog: string;
  readonly summary: string;
}

/** The log file paths for these options: `migrate.log` etc., or `migrate-<I>-of-<N>.log` when sharded. */
export function runFiles(
  opts: Pick<MigrateOptions, "destFolder" | "hashCount" | "hashValue">,
): RunFiles {
  const suffix = opts.hashCount > 1 ? `-${opts.hashValue}-of-${opts.hashCount}` : "";
  return {
    migrateLog: join(opts.destFolder, `migrate${suffix}.log`),
    failedLog: join(opts.destFolder, `failed${suffix}.log`),
    verifyLog: join(opts.destFolder, `verify${suffix}.log`),
    summary: join(opts.destFolder, `summary${suffix}.json`),
  };
}

/** The outcome of a whole run. */
export interface RunResult {
  /** 0 nothing failed; 1 some keys failed or mismatched; 130 stopped by a signal. */
  readonly exitCode: 0 | 1 | 130;
  /** One summary per pass. */
  readonly passes: readonly PassSummary[];
}

/** Run-wide totals over all passes, for metrics. */
export interface RunState {
  /** The counters of the running pass. */
  current: Counters;
  /** Sums of finished passes. */
  finished: Counters;
  /** Failed keys by code over the run. */
  errors: Map<string, number>;
  /** The current pass number. */
  pass: number;
}

/** A fresh run state (shared with the metrics endpoint). */
export function newRunState(): RunState {
  return { current: newCounters(), finished: newCounters(), errors: new Map(), pass: 0 };
}

/** Counters of finished passes plus the running one. */
export function runTotals(state: RunState): Counters {
  const out = newCounters();
  for (const k of Object.keys(out) as (keyof Counters)[])
    out[k] = state.finished[k] + state.current[k];
  return out;
}

interface Log {
  admit(key: string): Promise<LogTicket>;
  complete(ticket: LogTicket): void;
  close(): Promise<void>;
}

/** Stands in for migrate.log in a dry run and in verify mode (they record no progress). */
class NullLog implements Log {
  private seq = 0;
  async admit(): Promise<LogTicket> {
    return { seq: this.seq++ };
  }
  complete(): void {}
  async close(): Promise<void> {}
}

/** Runs the passes of one s3migrate invocation. */
export async function runPasses(
  opts: MigrateOptions,
  copier: ObjectCopier,
  io: RunIo,
  state: RunState = newRunState(),
): Promise<RunResult> {
  const files = runFiles(opts);
  const passes: PassSummary[] = [];
  let startAfter = opts.startAfter;
  let append = false;
  if (opts.resume) {
    startAfter = (await readLastLogKey(files.migrateLog)).key;
    append = true;
  }
  for (let pass = 1; ; pass++) {
    const summary = await runPass(opts, copier, io, state, { pass, startAfter, append, files });
    passes.push(summary);
    if (!opts.dryRun && !opts.verify) {
      await writeFile(files.summary, JSON.stringify({ passes }, null, 2) + "\n").catch(
        () => undefined,
      );
    }
    if (io.stop.aborted) return { exitCode: 130, passes };
    const again = opts.untilClean && !opts.dryRun && !opts.verify && summary.counters.upld > 0;
    if (!again) break;
    // A differential pass starts from the beginning: what exists on the target is skipped
    // cheaply (412 / HEAD), and failed keys get another chance.
    startAfter = undefined;
    append = false;
  }
  const last = passes[passes.length - 1] as PassSummary;
  return { exitCode: last.counters.fail > 0 ? 1 : 0, passes };
}

interface PassPlan {
  readonly pass: number;
  readonly startAfter: string | undefined;
  readonly append: boolean;
  readonly files: RunFiles;
}

async function runPass(
  opts: MigrateOptions,
  copier: ObjectCopier,
  io: RunIo,
  state: RunState,
  plan: PassPlan,
): Promise<PassSummary> {
  const writes = !opts.dryRun && !opts.verify;
  const counters = newCounters();
  if (state.pass > 0) {
    for (const k of Object.keys(counters) as (keyof Counters)[])
      state.finished[k] += state.current[k];
  }
  state.current = counters;
  state.pass = plan.pass;
  const errors = new Map<string, number>();
  const started = Date.now();

  let total: number | undefined;
  if (opts.srcFolder && !opts.listSource) {
    // Counted in the background; the percentage shows "?" until it is known.
    countFolderKeys(opts.srcFolder, compareKeys).then(
      (n) => (total = n),
      () => undefined,
    );
  }
  const totalNow = (): number | undefined =>
    total === undefined || opts.first === undefined
      ? total
      : Math.min(total, counters.before + opts.first);

  // The dest folder holds our logs; an operator expects it made for them, like `mkdir -p`
  // (a dry run writes nothing and leaves it alone).
  if (writes || opts.verify) await mkdir(opts.destFolder, { recursive: true });
  const log: Log = writes
    ? await OrderedLog.open(plan.files.migrateLog, {
        append: plan.append,
        windowSize: Math.max(1024, opts.threads * 64),
      })
    : new NullLog();
  const failed = writes
    ? await FailedLog.open(plan.files.failedLog, { append: plan.append })
    : opts.verify
      ? await FailedLog.open(plan.files.verifyLog, { append: false })
      : undefined;

  const source =
    opts.listSource && copier.listSource
      ? copier.listSource(plan.startAfter)
      : await folderKeys(opts.srcFolder as string, { compare: compareKeys });
  // Verify compares every listed key, so the target's lists do not exempt any.
  const destKeys =
    opts.verify || !opts.destFolder
      ? undefined
      : await folderKeys(opts.destFolder, { compare: compareKeys, allowEmpty: true });
  const classified = classifyKeys(source, {
    compare: compareKeys,
    startAfter: plan.startAfter,
    first: opts.first,
    hashCount: opts.hashCount,
    hashValue: opts.hashValue,
    destKeys,
    onBefore: () => counters.before++,
  });

  const recordFailure = async (
    key: string,
    code: string,
    message: string,
    attempts: number,
  ): Promise<void> => {
    counters.fail++;
    errors.set(code, (errors.get(code) ?? 0) + 1);
    state.errors.set(code, (state.errors.get(code) ?? 0) + 1);
    await failed?.add({ key, code, message, attempts });
  };

  const handle = async (key: string, ticket: LogTicket): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await copier.copy(key, { signal: io.abort, counters, attempt });
        switch (outcome.kind) {
          case "copied":
            break;
          case "skipDn":
            counters.skipDn++;
            break;
          case "skipUp":
            counters.skipUp++;
            break;
          case "verified":
            break;
          case "mismatch":
            await recordFailure(key, "Mismatch", outcome.problem, attempt);
            break;
        }
        break;
      } catch (err) {
        // An abandoned key is neither failed nor done: the next run redoes it.
        if (io.abort.aborted) return;
        const info = copier.describeError(err);
        if (!info.retryable || attempt >= opts.retries) {
          await recordFailure(key, info.code, info.message, attempt);
          break;
        }
        try {
          await copier.backoff(attempt, info.slowDown, io.abort);
        } catch {
          return;
        }
      }
    }
    counters.done++;
    log.complete(ticket);
  };

  io.reporter.start(plan.pass, counters, totalNow);
  const running = new Set<Promise<void>>();
  // Waiting for a free worker: one resolver woken by whichever key finishes. (A
  // Promise.race over the running set would add a reaction to every running promise for
  // every key: threads × keys reactions, CPU and memory that grow with the run.)
  let freed: (() => void) | undefined;
  const workerFree = (): Promise<void> => new Promise<void>((resolve) => (freed = resolve));
  // A worker that failed outside the per-key handling (e.g. failed.log not writable) ends the pass.
  let crashed: { err: unknown } | undefined;
  try {
    for await (const { key, cls } of classified) {
      if (io.stop.aborted) break;
      counters.obj++;
      if (cls === "ign") {
        counters.ign++;
        counters.done++;
        continue;
      }
      const ticket = await log.admit(key);
      if (cls === "exist") {
        counters.exist++;
        counters.done++;
        log.complete(ticket);
        continue;
      }
      counters.work++;
      if (opts.dryRun) {
        counters.done++;
        log.complete(ticket);
        continue;
      }
      while (running.size >= opts.threads) await workerFree();
      if (crashed) throw crashed.err;
      if (io.stop.aborted) break;
      const p: Promise<void> = handle(key, ticket)
        .catch((err: unknown) => void (crashed ??= { err }))
        .finally(() => {
          running.delete(p);
          const wake = freed;
          freed = undefined;
          wake?.();
        });
      running.add(p);
    }
  } finally {
    await Promise.allSettled(running);
    io.reporter.finish();
    await log.close();
    await failed?.close();
  }
  if (crashed) throw crashed.err;
  const summary = summarize({
    pass: plan.pass,
    dryRun: opts.dryRun,
    verify: opts.verify,
    seconds: (Date.now() - started) / 1000,
    counters,
    errors,
  });
  io.reporter.summary(summary);
  return summary;
}
