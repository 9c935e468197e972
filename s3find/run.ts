/**
 * s3find as a library: walk a directory, cut the keys into chunks, sort each chunk in a worker
 * thread and write it atomically as a list file (see list-file.ts and docs/s3find.md).
 * Reads no argv and never exits; cli/s3find.ts does that.
 */
import { mkdir, readdir, realpath, rm, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, relative, sep, isAbsolute } from "node:path";
import { ChunkWriter } from "./chunk-writer.js";
import { chooseDelegateDepth, walkParallel } from "./walk-pool.js";
import {
  newWalkStats,
  walkRuns,
  type WalkIssue,
  type WalkOptions,
  type WalkStats,
} from "./walk.js";

const MAX_WALKERS = 16;

/** Default number of keys per chunk file. */
export const DEFAULT_CHUNK_SIZE = 100_000;

/** What to walk, where to write, and how. */
export interface S3findOptions {
  /** The tree to walk; keys are paths relative to it. */
  directory: string;
  /** Where chunk files go; created if missing. */
  outputDir: string;
  /** Only files modified within this many days (fractions allowed). */
  laterThanDays?: number;
  /** Keys per chunk file (default 100,000). */
  chunkSize?: number;
  /** Parallel walkers and chunk writes (default: the number of cores). */
  jobs?: number;
  /**
   * Most entries of one directory sorted in memory at once; a larger directory is read in
   * sorted batches and each batch starts a new chunk (default: the chunk size, within
   * 1,024..262,144). Tests lower it to exercise that path.
   */
  dirBatchSize?: number;
  /** Accept a non-empty output directory, deleting an earlier run's chunk files from it. */
  force?: boolean;
  /**
   * Directories (relative to `directory`) not to walk: a server's own bookkeeping, e.g.
   * Versity Gateway's `.sgwtmp` (in-flight uploads) at a posix bucket's root.
   */
  skipDirs?: readonly string[];
  /** "Now" for the modification-time cutoff, epoch ms (tests pin it). */
  nowMs?: number;
  /** Interval between progress reports in ms (default 5000; 0 = never). */
  progressIntervalMs?: number;
  /** Receives progress reports during long walks. */
  onProgress?: (progress: S3findProgress) => void;
  /** Receives each skipped entry (unreadable, vanished, invalid UTF-8). */
  onIssue?: (issue: WalkIssue) => void;
}

/** A progress report: the walk counters so far plus chunks written and speed. */
export interface S3findProgress extends WalkStats {
  /** Chunk files written so far. */
  chunks: number;
  /** Milliseconds since the start. */
  elapsedMs: number;
  /** Directory entries scanned per second, over the whole run. */
  entriesPerSecond: number;
}

/** The result of a complete run (also printed as JSON by `--json`). */
export interface S3findSummary extends S3findProgress {
  /** The walked directory, as given. */
  directory: string;
  /** The output directory, as given. */
  outputDir: string;
  /** The modification-time filter, if any. */
  laterThanDays: number | null;
  /** Chunk size used. */
  chunkSize: number;
  /** Chunk files deleted from the output directory because of `force`. */
  removedOldChunks: number;
}

/** A problem with what the caller asked for (bad directory, non-empty output): exit code 2. */
export class S3findUsageError extends Error {
  /** Stable error code. */
  readonly code = "S3findUsageError";
  /** Builds the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "S3findUsageError";
  }
}

// Our chunk files and their hidden temp files: what `force` removes, and nothing else (the
// folder may also be an s3migrate --dest-folder holding migrate.log and failed.log).
const OWN_FILE = /^(?:keys-\d{6}\.txt|\.keys-\d{6}\.txt\.tmp-.*)$/;

/** Runs one s3find: validates, walks, writes every chunk, and returns the summary. */
export async function runS3find(options: S3findOptions): Promise<S3findSummary> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const jobs = options.jobs ?? availableParallelism();
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new S3findUsageError(`chunk size must be a positive integer: ${chunkSize}`);
  }
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new S3findUsageError(`jobs must be a positive integer: ${jobs}`);
  }
  const days = options.laterThanDays;
  if (days !== undefined && !(Number.isFinite(days) && days >= 0)) {
    throw new S3findUsageError(`later-than must be a non-negative number of days: ${days}`);
  }
  const started = performance.now();
  const nowMs = options.nowMs ?? Date.now();

  const root = await checkRoot(options.directory);
  const removedOldChunks = await prepareOutput(options.outputDir, options.force ?? false);
  const outputDir = await outputInsideRoot(root, options.outputDir);
  const excludeDirs = [...(options.skipDirs ?? []).map(normalizeSkipDir)];
  if (outputDir !== undefined) excludeDirs.push(outputDir);

  const stats = newWalkStats();
  const interval = options.progressIntervalMs ?? 5000;
  let lastReport = started;
  const writer = new ChunkWriter({ outputDir: options.outputDir, chunkSize, maxWrites: jobs });
  const progress = (): S3findProgress => {
    const elapsedMs = performance.now() - started;
    return {
      ...stats,
      chunks: writer.written,
      elapsedMs,
      entriesPerSecond: elapsedMs > 0 ? (stats.scanned * 1000) / elapsedMs : 0,
    };
  };
  const tick = (): void => {
    if (interval <= 0 || !options.onProgress) return;
    const now = performance.now();
    if (now - lastReport >= interval) {
      lastReport = now;
      options.onProgress(progress());
    }
  };

  const walk: WalkOptions = {
    modifiedSinceMs: days === undefined ? undefined : nowMs - days * 86_400_000,
    excludeDirs,
    batchEntries: options.dirBatchSize ?? Math.min(Math.max(chunkSize, 1024), 262_144),
    onIssue: options.onIssue,
    onTick: tick,
  };
  // Worker threads pay off only on a tree wide enough to share out (walk-pool.ts); past 16,
  // more walkers mostly add memory (an isolate and a few MiB of blocks each).
  const walkers = Math.min(jobs, MAX_WALKERS);
  const delegateDepth = walkers > 1 ? chooseDelegateDepth(root, walkers) : undefined;
  try {
    if (delegateDepth !== undefined) {
      await walkParallel({ root, stats, walk, writer, jobs: walkers, delegateDepth });
    } else {
      // The walk yields keys already in byte order (walk.ts), so a chunk is just the next
      // chunkSize keys of the walk, written as one text; nothing is sorted afterwards.
      for (const item of walkRuns(root, stats, walk)) {
        if ("subtree" in item) continue; // no delegation without delegateDepth
        const waiting = writer.appendRun(item);
        if (waiting) await waiting;
      }
    }
    await writer.finish();
  } finally {
    // Always wait for the writes in flight; a write failure surfaces here.
    await writer.settle();
  }
  return {
    ...progress(),
    directory: options.directory,
    outputDir: options.outputDir,
    laterThanDays: days ?? null,
    chunkSize,
    removedOldChunks,
  };
}

async function checkRoot(directory: string): Promise<string> {
  // The root may be a symlink (a mount point alias); entries below it are never followed.
  const st = await stat(directory).catch((err: NodeJS.ErrnoException) => {
    throw new S3findUsageError(`cannot read directory ${directory}: ${err.code ?? err.message}`);
  });
  if (!st.isDirectory()) throw new S3findUsageError(`not a directory: ${directory}`);
  return directory;
}

async function prepareOutput(outputDir: string, force: boolean): Promise<number> {
  try {
    await mkdir(outputDir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new S3findUsageError(`cannot create output directory ${outputDir}: ${code}`);
  }
  const entries = await readdir(outputDir);
  if (entries.length === 0) return 0;
  if (!force) {
    throw new S3findUsageError(
      `output directory ${outputDir} is not empty (${entries.length} entries); ` +
        "use --force to replace an earlier run's chunk files",
    );
  }
  let removed = 0;
  for (const name of entries) {
    if (!OWN_FILE.test(name)) continue;
    await rm(join(outputDir, name), { force: true });
    if (!name.startsWith(".")) removed++;
  }
  return removed;
}

/** A `--skip-dir` as the walk compares it: "/" separated, no leading "./" or trailing "/". */
function normalizeSkipDir(dir: string): string {
  const parts = dir.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) {
    throw new S3findUsageError(`skip-dir must be a directory inside the tree: ${dir}`);
  }
  return parts.join("/");
}

/** If the output directory is inside the walked tree, its relative key path, so the walk skips it. */
async function outputInsideRoot(root: string, outputDir: string): Promise<string | undefined> {
  const rel = relative(await realpath(root), await realpath(outputDir));
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return undefined;
  return rel.split(sep).join("/");
}

function human(n: number): string {
  // Not toLocaleString: its first call loads ICU data, ~20-30 ms at the end of every run.
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** One progress line: entries scanned, rate, files, directories, chunks written, errors. */
export function formatProgress(p: S3findProgress): string {
  return (
    `s3find: scanned=${human(p.scanned)} (${human(p.entriesPerSecond)}/s) ` +
    `files=${human(p.files)} dirs=${human(p.directories)} chunks=${p.chunks} ` +
    `errors=${p.errors} elapsed=${(p.elapsedMs / 1000).toFixed(1)}s`
  );
}

/** The final human summary: files, directories, errors, chunks, time. */
export function formatSummary(s: S3findSummary): string {
  const parts = [
    `files=${human(s.files)}`,
    `dirs=${human(s.directories)}`,
    `errors=${s.errors}`,
    `chunks=${s.chunks}`,
    `symlinks=${human(s.symlinks)}`,
  ];
  if (s.others > 0) parts.push(`others=${human(s.others)}`);
  if (s.laterThanDays !== null) parts.push(`older=${human(s.olderThanCutoff)}`);
  parts.push(
    `time=${(s.elapsedMs / 1000).toFixed(2)}s`,
    `(${human(s.entriesPerSecond)} entries/s)`,
  );
  return `s3find: done: ${parts.join(" ")} -> ${s.outputDir}`;
}
