#!/usr/bin/env node
/**
 * s3find command line: parses arguments with commander and calls s3find/run.ts.
 * Exit codes: 0 done, nothing skipped; 1 done, some entries skipped (reported on stderr, like
 * find(1)); 2 bad usage; 3 failed before finishing (chunks written so far are complete files,
 * but the set is not). See docs/s3find.md.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { availableParallelism } from "node:os";
import { packageVersion } from "./version.js";
import {
  DEFAULT_CHUNK_SIZE,
  S3findUsageError,
  formatProgress,
  formatSummary,
  runS3find,
} from "../s3find/run.js";

function positiveInt(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer.`);
    }
    return Number(value);
  };
}

function days(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw new InvalidArgumentError("must be a non-negative number of days.");
  }
  return Number(value);
}

// The historical spelling is `-later-than N` (one dash), which commander cannot declare:
// rewrite it to the long form before parsing.
function normaliseArgv(argv: string[]): string[] {
  return argv.map((a) => (a === "-later-than" || a.startsWith("-later-than=") ? `-${a}` : a));
}

const program = new Command("s3find")
  .description(
    "Walks <directory> (a POSIX view of a bucket) and writes its files' keys, sorted in UTF-8 " +
      "byte order, into <output_dir> as list files of --chunk-size keys (keys-000001.txt, ...).",
  )
  .argument("<directory>", "tree to walk; keys are paths relative to it")
  .argument("<output_dir>", "where the chunk files are written (created if missing)")
  .addOption(
    new Option(
      "--later-than <N_days>",
      "only files modified within the last N days (also -later-than)",
    ).argParser(days),
  )
  .addOption(
    new Option("--chunk-size <n>", "keys per chunk file")
      .default(DEFAULT_CHUNK_SIZE)
      .argParser(positiveInt("--chunk-size")),
  )
  .addOption(
    new Option("--jobs <n>", "parallel sort/write workers")
      .default(availableParallelism(), "the number of cores")
      .argParser(positiveInt("--jobs")),
  )
  .option(
    "--skip-dir <path>",
    "a directory (relative to <directory>) not to walk, e.g. .sgwtmp at a Versity Gateway posix bucket; repeatable",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option("--force", "accept a non-empty output_dir; deletes an earlier run's chunk files")
  .option("--json", "print the final summary as JSON on stdout")
  .option("--progress-interval <seconds>", "seconds between progress lines (0: none)", "5")
  .version(packageVersion())
  .exitOverride()
  .configureOutput({
    // Commander's errors already read "error: ..."; keep them to one line on stderr.
    outputError: (str, write) => write(`s3find: ${str.trim().replace(/^error: /, "")}\n`),
  })
  .action(async (directory: string, outputDir: string, opts: CliOptions) => {
    const interval = Number(opts.progressInterval);
    if (!Number.isFinite(interval) || interval < 0) {
      throw new InvalidArgumentError("--progress-interval must be a non-negative number.");
    }
    const tty = process.stderr.isTTY === true;
    let progressShown = false;
    const summary = await runS3find({
      directory,
      outputDir,
      laterThanDays: opts.laterThan,
      chunkSize: opts.chunkSize,
      jobs: opts.jobs,
      force: opts.force === true,
      skipDirs: opts.skipDir,
      progressIntervalMs: interval * 1000,
      onProgress: (p) => {
        // On a terminal one line is redrawn; in a log every report is its own line.
        process.stderr.write(tty ? `\r\x1b[K${formatProgress(p)}` : `${formatProgress(p)}\n`);
        progressShown = true;
      },
      onIssue: (issue) => {
        if (tty && progressShown) process.stderr.write("\r\x1b[K");
        // JSON string quoting keeps names with newlines or control characters on one line.
        process.stderr.write(
          `s3find: ${issue.kind}: ${JSON.stringify(issue.path)}: ${issue.reason}\n`,
        );
      },
    });
    if (tty && progressShown) process.stderr.write("\r\x1b[K");
    process.stderr.write(`${formatSummary(summary)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exitCode = summary.errors > 0 ? 1 : 0;
  });

interface CliOptions {
  laterThan?: number;
  chunkSize: number;
  jobs: number;
  force?: boolean;
  skipDir: string[];
  json?: boolean;
  progressInterval: string;
}

program.parseAsync(normaliseArgv(process.argv)).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version end with exit code 0; usage errors were already printed.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  console.error(`s3find: ${message}`);
  process.exitCode = err instanceof S3findUsageError || err instanceof InvalidArgumentError ? 2 : 3;
});
