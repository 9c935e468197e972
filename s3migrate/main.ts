/**
 * Wires one s3migrate invocation together from resolved options: clients, endpoint checks, the
 * start-up probe, metrics, the copier and the passes. The CLI calls {@link runMigrate} and maps
 * errors to exit codes with {@link exitCodeOf}.
 */
import { readFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { Writable } from "node:stream";
import { S3Client, S3ClientError, S3ConnectionError } from "../s3/client.js";
import { headBucket } from "../s3/client-operations.js";
import { compareKeys } from "../s3/key-order.js";
import { ListFileError } from "../s3find/list-file.js";
import { BandwidthLimiter, S3Copier } from "./copier.js";
import { failedToFolder } from "./failed-log.js";
import { KeySourceError } from "./key-source.js";
import { createMetricsRegistry, serveMetrics } from "./metrics.js";
import { UsageError, type MigrateOptions } from "./options.js";
import { ProgressReporter } from "./reporter.js";
import { newRunState, runFiles, runPasses, runTotals, type RunResult } from "./run.js";

/** Most parts of one multipart copy in flight at once. */
const PART_LANES = 8;

/** An endpoint could not be reached or refused our credentials at start-up (exit 3). */
export class EndpointError extends Error {
  /** Stable code. */
  readonly code = "EndpointError";

  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "EndpointError";
  }
}

/** The exit code for an error that ended a run: 2 usage/configuration, 3 endpoint, 1 otherwise. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof KeySourceError || err instanceof ListFileError)
    return 2;
  if (err instanceof EndpointError) return 3;
  return 1;
}

/** Streams and signals of a run, provided by the CLI. */
export interface MigrateIo {
  /** First Ctrl-C: stop taking keys. */
  readonly stop: AbortSignal;
  /** Second Ctrl-C: abandon in-flight keys. */
  readonly abort: AbortSignal;
  /** Progress lines and messages. */
  readonly out: Writable;
  /** Summaries (stdout with `--json`). */
  readonly summaryOut: Writable;
  /** Redraw the progress line in place. */
  readonly tty: boolean;
}

async function readCa(path: string | undefined, flag: string): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch {
    throw new UsageError(`${flag}: cannot read ${path}`);
  }
}

/** Checks that a bucket answers (HeadBucket); maps failures to exit 3 (unreachable) or 2 (config). */
async function checkBucket(client: S3Client, bucket: string, role: string): Promise<void> {
  try {
    await headBucket(client, { bucket, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    if (err instanceof S3ConnectionError)
      throw new EndpointError(`${role} ${client.origin}: ${err.message}`);
    if (err instanceof S3ClientError) {
      if (err.status === 404)
        throw new UsageError(`${role} bucket ${bucket} does not exist on ${client.origin}`);
      if (err.status === 403)
        throw new EndpointError(`${role} ${client.origin}: access denied to bucket ${bucket}`);
      throw new EndpointError(`${role} ${client.origin}: ${err.code} (HTTP ${err.status})`);
    }
    throw err;
  }
}

/** Runs s3migrate with resolved options. */
export async function runMigrate(opts: MigrateOptions, io: MigrateIo): Promise<RunResult> {
  if (opts.failedToFolder !== undefined) {
    const files = runFiles(opts);
    let n: number;
    try {
      n = await failedToFolder(files.failedLog, opts.failedToFolder, { compare: compareKeys });
    } catch (err) {
      throw new UsageError(
        `cannot turn ${files.failedLog} into a list folder: ${(err as Error).message}`,
      );
    }
    io.summaryOut.write(
      opts.json
        ? JSON.stringify({ type: "failed-to-folder", keys: n, folder: opts.failedToFolder }) + "\n"
        : `wrote ${n} failed keys to ${opts.failedToFolder}; copy them with --src-folder ${opts.failedToFolder}\n`,
    );
    return { exitCode: 0, passes: [] };
  }
  const timeouts = {
    connectMs: 10_000,
    headersMs: opts.timeout * 1000,
    bodyIdleMs: opts.timeout * 1000,
  };
  const source = new S3Client({
    endpoint: opts.srcUrl,
    credentials: { accessKeyId: opts.srcKey, secretAccessKey: opts.srcSecret },
    region: opts.region,
    ca: await readCa(opts.srcCa, "--src-ca"),
    connections: opts.threads * 2 + 4,
    timeouts,
    retry: { attempts: 2 },
  });
  const target = new S3Client({
    endpoint: opts.destUrl,
    credentials: { accessKeyId: opts.destKey, secretAccessKey: opts.destSecret },
    region: opts.region,
    ca: await readCa(opts.destCa, "--dest-ca"),
    connections: opts.threads * 2 + 4,
    timeouts,
    retry: { attempts: 2 },
  });
  let metricsServer: Server | undefined;
  try {
    await checkBucket(source, opts.srcBucket, "source");
    await checkBucket(target, opts.destBucket, "target");
    const copier = new S3Copier({
      source,
      target,
      srcBucket: opts.srcBucket,
      destBucket: opts.destBucket,
      multipartThreshold: opts.multipartThreshold,
      partSize: opts.partSize,
      limiter: opts.maxBps ? new BandwidthLimiter(opts.maxBps) : undefined,
      verify: opts.verify,
      // Parts of one large object move in parallel (a lone 2 GiB object would otherwise be
      // one stream), bounded per object and, through the shared spare lanes, to at most
      // twice --threads streams in all.
      partLanes: Math.min(PART_LANES, opts.threads),
      spareLanes: opts.threads,
    });
    if (!opts.dryRun && !opts.verify) {
      const refuses = await copier.probeConditional().catch((err: unknown) => {
        throw new EndpointError(
          `target ${target.origin}: start-up probe failed: ${(err as Error).message}`,
        );
      });
      if (!refuses) {
        if (!opts.allowUnconditional) {
          throw new UsageError(
            `target ${target.origin} ignores If-None-Match: * (a second conditional PUT was not refused); ` +
              `copying could overwrite newer objects. Use --allow-unconditional to run anyway`,
          );
        }
        io.out.write(
          "s3migrate: warning: the target ignores If-None-Match: *; newer objects may be overwritten\n",
        );
      }
    }
    const reporter = new ProgressReporter({
      out: opts.json ? io.summaryOut : io.out,
      tty: io.tty,
      json: opts.json,
      intervalSeconds: opts.progressInterval,
    });
    const summaryReporter = reporter;
    const state = newRunState();
    if (opts.metricsAddr) {
      const registry = createMetricsRegistry({
        runTotals: () => runTotals(state),
        snapshot: () => reporter.snapshot(),
        pass: () => state.pass,
        errors: () => state.errors,
      });
      try {
        metricsServer = await serveMetrics(registry, opts.metricsAddr);
      } catch (err) {
        throw new UsageError(`--metrics-addr ${opts.metricsAddr}: ${(err as Error).message}`);
      }
    }
    return await runPasses(
      opts,
      copier,
      { reporter: summaryReporter, stop: io.stop, abort: io.abort, err: io.out },
      state,
    );
  } finally {
    metricsServer?.close();
    await Promise.allSettled([source.close(), target.close()]);
  }
}
