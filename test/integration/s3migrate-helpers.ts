// Shared helpers of the s3migrate integration tests: SDK clients for the rig's real servers,
// bucket setup, running the real CLI as a child process, waiting on conditions, and a
// fault-injecting pass-through proxy (real S3 behind it; it only refuses chosen requests).

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type Server } from "node:http";
import { mkdtemp } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from "@aws-sdk/client-s3";
import { repoRoot } from "../rig/servers.js";
import type { RigServer } from "../rig/types.js";

/** An SDK client for a rig server (path-style). */
export function sdk(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

/** A fresh bucket name. */
export function bucketName(prefix = "s3m"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** Fresh source and target buckets on two rig servers, created, with an SDK client for each. */
export async function bucketPair(
  source: RigServer,
  target: RigServer,
): Promise<{ src: S3Client; dst: S3Client; srcBucket: string; destBucket: string }> {
  const src = sdk(source);
  const dst = sdk(target);
  const srcBucket = bucketName("s3m-src");
  const destBucket = bucketName("s3m-dst");
  await createBucket(src, srcBucket);
  await createBucket(dst, destBucket);
  return { src, dst, srcBucket, destBucket };
}

/** Creates a bucket. */
export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** PUTs an object (Buffer body, so the SDK sends a plain Content-Length). */
export async function put(client: S3Client, input: PutObjectCommandInput): Promise<void> {
  await client.send(new PutObjectCommand(input));
}

/** Every key of a bucket, in listing order. */
export async function listAll(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) keys.push(o.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** A temp dir. */
export function tempDir(prefix = "s3m-it-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** The basic flags for a run from `src` to `dest`. */
export function baseArgs(o: {
  src: RigServer;
  srcBucket: string;
  dest: RigServer | { endpoint: string; accessKeyId: string; secretAccessKey: string };
  destBucket: string;
  srcFolder?: string;
  destFolder: string;
}): string[] {
  return [
    "--src-url",
    o.src.endpoint,
    "--src-bucket",
    o.srcBucket,
    "--src-key",
    o.src.accessKeyId,
    ...(o.srcFolder ? ["--src-folder", o.srcFolder] : ["--list-source"]),
    "--dest-url",
    o.dest.endpoint,
    "--dest-bucket",
    o.destBucket,
    "--dest-key",
    o.dest.accessKeyId,
    "--dest-folder",
    o.destFolder,
  ];
}

/** Environment carrying the secrets (they never go on the command line). */
export function secretEnv(src: RigServer, dest: { secretAccessKey: string }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    S3MIGRATE_SRC_SECRET: src.secretAccessKey,
    S3MIGRATE_DEST_SECRET: dest.secretAccessKey,
  };
}

/** A running CLI child. */
export interface CliRun {
  readonly child: ChildProcess;
  /** Everything written so far. */
  readonly output: { stdout: string; stderr: string };
  /** Resolves with the exit code (or 128+signal). */
  readonly done: Promise<number>;
}

/** Starts `s3migrate` (from source, through tsx) as a child process. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv): CliRun {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "cli/s3migrate.ts"), ...args],
    {
      env,
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const output = { stdout: "", stderr: "" };
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (output.stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (output.stderr += d));
  const done = new Promise<number>((resolve) => {
    child.on("close", (code, signal) => {
      resolve(code ?? (signal === "SIGKILL" ? 137 : signal === "SIGINT" ? 130 : 128));
    });
  });
  return { child, output, done };
}

/** Runs `s3migrate` to completion. */
export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = startCli(args, env);
  const code = await run.done;
  return { code, ...run.output };
}

/** The JSON summaries a `--json` run printed on stdout. */
export function summaries(stdout: string): Array<{
  type: string;
  counters: Record<string, number>;
  errors: Record<string, number>;
}> {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map(
      (l) =>
        JSON.parse(l) as {
          type: string;
          counters: Record<string, number>;
          errors: Record<string, number>;
        },
    )
    .filter((j) => j.type === "summary");
}

/** Polls `check` every 50 ms until true; fails after `timeoutMs`. */
export async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A pass-through HTTP proxy to a real S3 server that answers `500 InternalError` to the
 * requests `refuse` picks. The Host header is forwarded unchanged, so SigV4 still verifies
 * on the server behind it.
 */
export async function faultProxy(
  upstream: string,
  refuse: (method: string, path: string) => boolean,
): Promise<{ endpoint: string; server: Server; refused: string[] }> {
  const up = new URL(upstream);
  const refused: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (refuse(req.method ?? "", path)) {
      refused.push(path);
      req.resume();
      req.on("end", () => {
        res.writeHead(500, { "content-type": "application/xml" });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
        );
      });
      return;
    }
    const fwd = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    fwd.on("error", () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { endpoint: `http://127.0.0.1:${port}`, server, refused };
}
