/**
 * s3gw benchmark (docs/benchmarks.md, "gateway"): the same load generator, in one run, against
 * a MinIO directly and through the gateway, TLS on both sides:
 *
 * - `target`: MinIO A directly  vs  s3gw (bucket not attached → target MinIO A);
 * - `source`: MinIO B directly  vs  s3gw (bucket attached in `forward` mode → source MinIO B).
 *
 * Phases, each on all four endpoints in turn: 4 KiB PUT and GET at 32 concurrent for a fixed
 * time (ops/s, p50/p99 latency), then 256 MiB PUT and GET, one stream at a time (MB/s).
 * Ratios gateway/direct are printed against the goals of issue 3: ≥ 0.8× for small ops,
 * ≥ 0.95× for large, forward-mode p50 ≤ 1.2× direct.
 *
 * Phase `migrate` (issue 8; not in the default set): a bucket in migrate mode whose objects are
 * only on the source (MinIO B). GET of a not-yet-copied object through the gateway (a target
 * miss, then the source) vs the same GET directly from the source, 4 KiB at
 * `--migrate-concurrency` for `--seconds` and 64 MiB one stream at a time (goal: p50 ≤ 1.3×);
 * the target miss itself (a GET that the target answers 404) measured alone; and a
 * cross-cluster CopyObject of `--copy-size` (default 256 MiB) through the gateway vs a streamed
 * GET from the source + PUT to the target with our SDK.
 *
 * The load generator is our own (s3/client.ts: undici keep-alive pool and our SigV4 signer),
 * in this process; MinIO's `warp` was not available from the module proxy here. The gateway runs
 * as `s3gw serve` in a child process with its normal access log (to a file). Both MinIOs serve
 * TLS from `--certs-dir` (public.crt / private.key) with a CA made by certs/make-local-certs.sh.
 * Everything shares the machine's cores: note them with the figures.
 *
 * Usage: npm run bench:gateway -- [--seconds 10] [--concurrency 32] [--large-size 256M]
 *   [--large-count 2] [--phases small,large] [--gateway-node-args="--cpu-prof --cpu-prof-dir=DIR"]
 *   [--log-level info]
 * MB/s is 10^6 bytes a second.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  openSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { S3Client } from "../../s3/client.js";
import { freePort } from "../../test/rig/servers.js";

const REPO = join(import.meta.dirname, "..", "..");

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "32" },
    "large-size": { type: "string", default: "256M" },
    "large-count": { type: "string", default: "2" },
    phases: { type: "string", default: "small,large" },
    "migrate-concurrency": { type: "string", default: "4" },
    "copy-size": { type: "string", default: "256M" },
    "gateway-node-args": { type: "string", default: "" },
    "log-level": { type: "string", default: "info" },
  },
});

function size(text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text);
  if (m === null) throw new Error(`bad size ${text}`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? "").toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const LARGE_SIZE = size(values["large-size"]);
const LARGE_COUNT = Number(values["large-count"]);
const PHASES = new Set(values.phases.split(","));
const SMALL_SIZE = 4096;
const MIGRATE_CONCURRENCY = Number(values["migrate-concurrency"]);
const COPY_SIZE = size(values["copy-size"]);
const MIGRATE_LARGE_SIZE = 64 * 1024 ** 2;

const work = mkdtempSync(join(tmpdir(), "s3gw-bench-"));
const children: ChildProcess[] = [];

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
}
process.on("exit", cleanup);
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

/** Waits until `probe` resolves true; throws after `ms`. */
async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---- TLS material -------------------------------------------------------------------------
const certsDir = join(work, "certs");
spawnSync(join(REPO, "certs", "make-local-certs.sh"), ["--out", certsDir, "--days", "2"], {
  stdio: "inherit",
});
const CA = readFileSync(join(certsDir, "ca.pem"), "utf8");
const tlsAgent = new Agent({ connect: { ca: CA } });

// ---- MinIO with TLS ------------------------------------------------------------------------
interface Server {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly pid: number | undefined;
}

async function startMinio(name: string): Promise<Server> {
  const root = join(work, name);
  const certs = join(root, "certs");
  mkdirSync(certs, { recursive: true });
  // MinIO reads public.crt / private.key from --certs-dir and then serves TLS only.
  writeFileSync(join(certs, "public.crt"), readFileSync(join(certsDir, "server.pem")));
  writeFileSync(join(certs, "private.key"), readFileSync(join(certsDir, "server-key.pem")));
  const port = await freePort();
  const consolePort = await freePort();
  const accessKeyId = `BENCH${randomBytes(8).toString("hex").toUpperCase()}`.slice(0, 20);
  const secretAccessKey = randomBytes(20).toString("hex");
  const child = spawn(
    join(REPO, ".tools", "bin", "minio"),
    [
      "server",
      join(root, "data"),
      "--address",
      `127.0.0.1:${port}`,
      "--console-address",
      `127.0.0.1:${consolePort}`,
      "--certs-dir",
      certs,
      "--quiet",
    ],
    {
      env: { ...process.env, MINIO_ROOT_USER: accessKeyId, MINIO_ROOT_PASSWORD: secretAccessKey },
      stdio: ["ignore", openSync(join(root, "minio.log"), "w"), "inherit"],
    },
  );
  children.push(child);
  const endpoint = `https://127.0.0.1:${port}`;
  await until(
    async () => {
      const res = await request(`${endpoint}/minio/health/live`, { dispatcher: tlsAgent });
      await drain(res.body);
      return res.statusCode === 200;
    },
    60_000,
    `MinIO ${name}`,
  );
  return { endpoint, accessKeyId, secretAccessKey, pid: child.pid };
}

// ---- the gateway -----------------------------------------------------------------------------
const USER = { accessKeyId: "bench-user", secretAccessKey: randomBytes(16).toString("hex") };
const ADMIN = { accessKeyId: "bench-admin", secretAccessKey: randomBytes(16).toString("hex") };

async function startGateway(
  target: Server,
): Promise<{ endpoint: string; adminUrl: string; child: ChildProcess }> {
  const config = join(work, "gateway.yaml");
  writeFileSync(
    config,
    [
      "listen: 127.0.0.1:0",
      `tls: { cert: "${join(certsDir, "server.pem")}", key: "${join(certsDir, "server-key.pem")}" }`,
      "admin: { listen: 127.0.0.1:0 }",
      "region: us-east-1",
      `target: { endpoint: "${target.endpoint}", accessKey: ${target.accessKeyId}, secretKey: "${target.secretAccessKey}", ca: "${join(certsDir, "ca.pem")}" }`,
      "credentials:",
      `  - { accessKey: ${USER.accessKeyId}, secretKey: "${USER.secretAccessKey}" }`,
      `  - { accessKey: ${ADMIN.accessKeyId}, secretKey: "${ADMIN.secretAccessKey}", role: admin }`,
      `state: { path: "${join(work, "state.json")}" }`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const nodeArgs = values["gateway-node-args"].split(" ").filter((a) => a !== "");
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      "--import",
      "tsx",
      join(REPO, "cli", "s3gw.ts"),
      "serve",
      "--config",
      config,
      "--log-level",
      values["log-level"],
    ],
    { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  const log = createWriteStream(join(work, "gateway.log"));
  let head = "";
  const urls = await new Promise<{ endpoint: string; adminUrl: string }>((done, fail) => {
    const found: { endpoint?: string; adminUrl?: string } = {};
    child.stdout?.on("data", (d: Buffer) => {
      log.write(d);
      if (found.endpoint !== undefined && found.adminUrl !== undefined) return;
      head += d.toString();
      for (const line of head.split("\n")) {
        if (line.includes("S3 endpoint listening"))
          found.endpoint = (JSON.parse(line) as { url: string }).url;
        if (line.includes("admin API listening"))
          found.adminUrl = (JSON.parse(line) as { url: string }).url;
      }
      if (found.endpoint !== undefined && found.adminUrl !== undefined) {
        done({ endpoint: found.endpoint, adminUrl: found.adminUrl });
      }
    });
    child.once("exit", (code) => fail(new Error(`s3gw exited ${code}`)));
  });
  return { ...urls, child };
}

function admin(adminUrl: string, args: string[], env: Record<string, string> = {}): void {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", join(REPO, "cli", "s3gw.ts"), "bucket", "migrate", ...args],
    {
      cwd: REPO,
      env: {
        ...process.env,
        S3GW_ADMIN_URL: adminUrl,
        S3GW_ACCESS_KEY: ADMIN.accessKeyId,
        S3GW_SECRET_KEY: ADMIN.secretAccessKey,
        ...env,
      },
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`s3gw bucket migrate ${args[0]} failed: ${r.stderr}`);
}

// ---- the load generator ----------------------------------------------------------------------
function clientFor(
  endpoint: string,
  creds: { accessKeyId: string; secretAccessKey: string },
): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    credentials: creds,
    ca: CA,
    connections: CONCURRENCY * 2,
    retry: { attempts: 1 },
  });
}

interface Result {
  ops: number;
  seconds: number;
  bytes: number;
  latencies: number[];
  errors: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Runs `op(i)` from `workers` loops until `seconds` pass (or `count` ops when given). */
async function drive(
  op: (i: number) => Promise<number>,
  options: { readonly workers: number; readonly seconds?: number; readonly count?: number },
): Promise<Result> {
  const result: Result = { ops: 0, seconds: 0, bytes: 0, latencies: [], errors: 0 };
  const started = performance.now();
  const deadline = options.seconds === undefined ? Infinity : started + options.seconds * 1000;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (options.count !== undefined && i >= options.count) return;
      if (performance.now() >= deadline) return;
      const t0 = performance.now();
      try {
        // Not `result.bytes += await op(i)`: that reads `bytes` before the await, so concurrent
        // workers overwrite each other's additions and the small-op ratios came out wrong.
        const bytes = await op(i);
        result.bytes += bytes;
        result.ops++;
        result.latencies.push(performance.now() - t0);
      } catch (err) {
        result.errors++;
        if (result.errors <= 3) console.error(`  error: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  result.seconds = (performance.now() - started) / 1000;
  result.latencies.sort((a, b) => a - b);
  return result;
}

const SMALL = randomBytes(SMALL_SIZE);
const LARGE_BLOCK = randomBytes(4 * 1024 * 1024);

function largeBody(total = LARGE_SIZE): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += LARGE_BLOCK.length) {
        yield LARGE_BLOCK.subarray(0, Math.min(LARGE_BLOCK.length, total - sent));
      }
    })(),
  );
}

async function drain(body: Readable): Promise<number> {
  let n = 0;
  for await (const c of body) n += (c as Buffer).length;
  return n;
}

interface Endpoint {
  readonly name: string;
  readonly client: S3Client;
  readonly bucket: string;
}

async function smallPut(e: Endpoint): Promise<Result> {
  return drive(
    async (i) => {
      const res = await e.client.request({
        method: "PUT",
        bucket: e.bucket,
        key: `small/${i}`,
        body: SMALL,
      });
      await drain(res.body);
      return SMALL_SIZE;
    },
    { workers: CONCURRENCY, seconds: SECONDS },
  );
}

async function smallGet(e: Endpoint, keys: number): Promise<Result> {
  return drive(
    async (i) => {
      const res = await e.client.request({
        method: "GET",
        bucket: e.bucket,
        key: `small/${i % keys}`,
      });
      return drain(res.body);
    },
    { workers: CONCURRENCY, seconds: SECONDS },
  );
}

async function largePut(e: Endpoint): Promise<Result> {
  return drive(
    async (i) => {
      const res = await e.client.request({
        method: "PUT",
        bucket: e.bucket,
        key: `large/${i}`,
        body: largeBody(),
        contentLength: LARGE_SIZE,
      });
      await drain(res.body);
      return LARGE_SIZE;
    },
    { workers: 1, count: LARGE_COUNT },
  );
}

async function largeGet(e: Endpoint): Promise<Result> {
  return drive(
    async (i) => {
      const res = await e.client.request({
        method: "GET",
        bucket: e.bucket,
        key: `large/${i % LARGE_COUNT}`,
      });
      return drain(res.body);
    },
    { workers: 1, count: LARGE_COUNT },
  );
}

// ---- migrate mode (issue 8) -------------------------------------------------------------------
/** Where the migrate phase reads and writes. */
interface MigrateSetup {
  readonly gateway: S3Client;
  readonly directSource: S3Client;
  readonly directTarget: S3Client;
  /** The client-facing bucket (on the target, in migrate mode). */
  readonly bucket: string;
  /** Its source bucket on MinIO B. */
  readonly sourceBucket: string;
}

/** GETs `key(i)` from `bucket` with `workers` loops; a 404 counts as an answer when `miss`. */
function getLoop(
  client: S3Client,
  bucket: string,
  key: (i: number) => string,
  options: { readonly workers: number; readonly seconds?: number; readonly count?: number },
  miss = false,
): Promise<Result> {
  return drive(async (i) => {
    const res = await client.request({
      method: "GET",
      bucket,
      key: key(i),
      ...(miss ? { okStatuses: [404] } : {}),
    });
    return drain(res.body);
  }, options);
}

/** The migrate phase's measurements, recorded under their phase names. */
async function migratePhase(
  m: MigrateSetup,
  record: (phase: string, name: string, r: Result) => void,
): Promise<void> {
  const smallKeys = 256;
  console.log(
    `  (migrate: ${smallKeys} × 4 KiB, 2 × 64 MiB and 1 × ${COPY_SIZE / 1024 ** 2} MiB on the source only)`,
  );
  await drive(
    async (i) => {
      const r = await m.directSource.request({
        method: "PUT",
        bucket: m.sourceBucket,
        key: `small/${i}`,
        body: SMALL,
      });
      return drain(r.body);
    },
    { workers: 16, count: smallKeys },
  );
  for (const [key, bytes] of [
    ["large/0", MIGRATE_LARGE_SIZE],
    ["large/1", MIGRATE_LARGE_SIZE],
    ["copy-me", COPY_SIZE],
  ] as const) {
    const r = await m.directSource.request({
      method: "PUT",
      bucket: m.sourceBucket,
      key,
      body: largeBody(bytes),
      contentLength: bytes,
    });
    await drain(r.body);
  }
  const small = (i: number): string => `small/${i % smallKeys}`;
  const timed = { workers: MIGRATE_CONCURRENCY, seconds: SECONDS };
  // Warm both paths' connections first (TLS handshakes are not what is measured).
  await getLoop(m.gateway, m.bucket, small, { workers: MIGRATE_CONCURRENCY, count: 32 });
  await getLoop(m.directSource, m.sourceBucket, small, { workers: MIGRATE_CONCURRENCY, count: 32 });
  record(
    "mig get 4KiB",
    "direct source",
    await getLoop(m.directSource, m.sourceBucket, small, timed),
  );
  record("mig get 4KiB", "gateway migrate", await getLoop(m.gateway, m.bucket, small, timed));
  record(
    "target miss",
    "direct target 404",
    await getLoop(m.directTarget, m.bucket, small, timed, true),
  );
  const large = (i: number): string => `large/${i % 2}`;
  const streams = { workers: 1, count: 4 };
  record(
    "mig get 64MiB",
    "direct source",
    await getLoop(m.directSource, m.sourceBucket, large, streams),
  );
  record("mig get 64MiB", "gateway migrate", await getLoop(m.gateway, m.bucket, large, streams));

  const copies = { workers: 1, count: 2 };
  record(
    "copy large",
    "gateway CopyObject",
    await drive(async (i) => {
      const r = await m.gateway.request({
        method: "PUT",
        bucket: m.bucket,
        key: `copied/${i}`,
        headers: { "x-amz-copy-source": `/${m.bucket}/copy-me` },
      });
      await drain(r.body);
      return COPY_SIZE;
    }, copies),
  );
  record(
    "copy large",
    "SDK GET+PUT",
    await drive(async (i) => {
      const got = await m.directSource.request({
        method: "GET",
        bucket: m.sourceBucket,
        key: "copy-me",
      });
      const put = await m.directTarget.request({
        method: "PUT",
        bucket: m.bucket,
        key: `sdk-copied/${i}`,
        body: got.body,
        contentLength: Number(got.headers["content-length"]),
      });
      await drain(put.body);
      return COPY_SIZE;
    }, copies),
  );
}

// ---- CPU accounting ----------------------------------------------------------------------------
/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of proc(5) (utime, stime), counted from the state field (3).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds used by each process of the bench, now. */
function cpuNow(pids: Readonly<Record<string, number | undefined>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = cpuSeconds(pid);
  const own = process.cpuUsage();
  out["generator"] = (own.user + own.system) / 1e6;
  return out;
}

// ---- the run -----------------------------------------------------------------------------
async function main(): Promise<void> {
  const cpuModel = cpus()[0]?.model ?? "?";
  console.log(`s3gw bench: ${availableParallelism()} cores (${cpuModel}), node ${process.version}`);
  console.log(
    `small: ${SMALL_SIZE} B × ${CONCURRENCY} concurrent × ${SECONDS} s; large: ${LARGE_COUNT} × ${LARGE_SIZE / 1024 ** 2} MiB, one stream`,
  );
  const [minioA, minioB] = await Promise.all([
    startMinio("minio-target"),
    startMinio("minio-source"),
  ]);
  if (minioA === undefined || minioB === undefined) throw new Error("MinIO did not start");
  const gw = await startGateway(minioA);
  const bucket = "bench";
  const directA = clientFor(minioA.endpoint, minioA);
  const directB = clientFor(minioB.endpoint, minioB);
  for (const c of [directA, directB]) (await c.request({ method: "PUT", bucket })).body.resume();
  // A second target bucket for the gateway's ready path, so the two sides never share keys.
  (await directA.request({ method: "PUT", bucket: "bench-gw" })).body.resume();
  (await directB.request({ method: "PUT", bucket: "bench-src" })).body.resume();
  (await directA.request({ method: "PUT", bucket: "bench-fwd" })).body.resume();
  admin(
    gw.adminUrl,
    ["attach", "bench-fwd", minioB.endpoint, join(certsDir, "ca.pem"), "--source", "bench-src"],
    {
      S3GW_SOURCE_ACCESS_KEY: minioB.accessKeyId,
      S3GW_SOURCE_SECRET_KEY: minioB.secretAccessKey,
    },
  );
  admin(gw.adminUrl, ["update", "--mode", "forward", "--bucket", "bench-fwd"]);
  const gateway = clientFor(gw.endpoint, USER);
  if (PHASES.has("migrate")) {
    (await directA.request({ method: "PUT", bucket: "bench-mig" })).body.resume();
    (await directB.request({ method: "PUT", bucket: "bench-mig-src" })).body.resume();
    admin(
      gw.adminUrl,
      [
        "attach",
        "bench-mig",
        minioB.endpoint,
        join(certsDir, "ca.pem"),
        "--source",
        "bench-mig-src",
      ],
      {
        S3GW_SOURCE_ACCESS_KEY: minioB.accessKeyId,
        S3GW_SOURCE_SECRET_KEY: minioB.secretAccessKey,
      },
    );
    admin(gw.adminUrl, ["update", "--mode", "forward", "--bucket", "bench-mig"]);
    admin(gw.adminUrl, ["update", "--mode", "migrate", "--bucket", "bench-mig", "--yes"]);
  }

  const endpoints: Endpoint[] = [
    { name: "direct target", client: directA, bucket },
    { name: "gateway ready", client: gateway, bucket: "bench-gw" },
    { name: "direct source", client: directB, bucket },
    { name: "gateway forward", client: gateway, bucket: "bench-fwd" },
  ];
  const table: Record<string, Record<string, Result>> = {};
  const pids = {
    gateway: gw.child.pid,
    "minio-target": minioA.pid,
    "minio-source": minioB.pid,
  };
  /** Runs one measurement and prints the CPU each process spent on it, per operation. */
  const measured = async (run: () => Promise<Result>): Promise<Result & { cpu: string }> => {
    const before = cpuNow(pids);
    const r = await run();
    const after = cpuNow(pids);
    const cpu = Object.keys(after)
      .map((name) => {
        const used = (after[name] ?? NaN) - (before[name] ?? NaN);
        return used > 0.05 ? `${name} ${((used / Math.max(1, r.ops)) * 1e6).toFixed(0)} µs` : "";
      })
      .filter((t) => t !== "")
      .join(", ");
    return { ...r, cpu };
  };
  const record = (phase: string, e: Endpoint, r: Result & { cpu?: string }): void => {
    (table[phase] ??= {})[e.name] = r;
    const rate =
      phase.includes("large") || phase.includes("MiB")
        ? `${(r.bytes / r.seconds / 1e6).toFixed(1)} MB/s`
        : `${(r.ops / r.seconds).toFixed(0)} ops/s`;
    console.log(
      `  ${phase.padEnd(10)} ${e.name.padEnd(16)} ${rate.padStart(12)}  p50 ${percentile(r.latencies, 50).toFixed(1)} ms  p99 ${percentile(r.latencies, 99).toFixed(1)} ms${r.errors > 0 ? `  errors ${r.errors}` : ""}${r.cpu === undefined || r.cpu === "" ? "" : `\n      cpu/op: ${r.cpu}`}`,
    );
  };

  const written = new Map<string, number>();
  if (PHASES.has("small")) {
    for (const e of endpoints) {
      const r = await measured(() => smallPut(e));
      written.set(e.name, r.ops);
      record("put 4KiB", e, r);
    }
    for (const e of endpoints) {
      const keys = Math.max(1, written.get(e.name) ?? 1);
      record("get 4KiB", e, await measured(() => smallGet(e, keys)));
    }
  }
  if (PHASES.has("large")) {
    for (const e of endpoints) record("put large", e, await measured(() => largePut(e)));
    for (const e of endpoints) record("get large", e, await measured(() => largeGet(e)));
  }

  if (PHASES.has("migrate")) {
    await migratePhase(
      {
        gateway,
        directSource: directB,
        directTarget: directA,
        bucket: "bench-mig",
        sourceBucket: "bench-mig-src",
      },
      (phase, name, r) => record(phase, { name, client: gateway, bucket: "" }, r),
    );
  }

  console.log("\nratios (gateway / direct; goal in brackets)");
  const ratio = (
    phase: string,
    gwName: string,
    directName: string,
    goal: string,
    kind: "rate" | "p50",
  ): void => {
    const g = table[phase]?.[gwName];
    const d = table[phase]?.[directName];
    if (g === undefined || d === undefined) return;
    const value =
      kind === "rate"
        ? g.bytes / g.seconds / (d.bytes / d.seconds)
        : percentile(g.latencies, 50) / percentile(d.latencies, 50);
    console.log(
      `  ${phase.padEnd(10)} ${gwName.padEnd(16)} ${kind === "rate" ? "throughput" : "p50 latency"} ${value.toFixed(2)}× [${goal}]`,
    );
  };
  for (const [gwName, directName] of [
    ["gateway ready", "direct target"],
    ["gateway forward", "direct source"],
  ] as const) {
    ratio("put 4KiB", gwName, directName, "≥ 0.8", "rate");
    ratio("get 4KiB", gwName, directName, "≥ 0.8", "rate");
    ratio("put large", gwName, directName, "≥ 0.95", "rate");
    ratio("get large", gwName, directName, "≥ 0.95", "rate");
  }
  for (const phase of ["put 4KiB", "get 4KiB"])
    ratio(phase, "gateway forward", "direct source", "≤ 1.2", "p50");
  ratio("mig get 4KiB", "gateway migrate", "direct source", "≤ 1.3", "p50");
  ratio("mig get 64MiB", "gateway migrate", "direct source", "≤ 1.3", "p50");
  ratio("mig get 64MiB", "gateway migrate", "direct source", "—", "rate");
  ratio("copy large", "gateway CopyObject", "SDK GET+PUT", "—", "rate");
  const miss = table["target miss"]?.["direct target 404"];
  if (miss !== undefined) {
    console.log(
      `  target miss (a 404 GET on the target, paid first by every fallback read): p50 ${percentile(miss.latencies, 50).toFixed(2)} ms`,
    );
  }

  await Promise.all([directA.close(), directB.close(), gateway.close(), tlsAgent.close()]);
  // SIGTERM lets the gateway write its CPU profile when --cpu-prof was given.
  const exited = new Promise((done) => gw.child.once("exit", done));
  gw.child.kill("SIGTERM");
  await exited;
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        const done = new Promise((resolve) => c.once("exit", resolve));
        c.kill("SIGTERM");
        return done;
      }),
  );
  for (const name of ["minio-target", "minio-source"]) {
    rmSync(join(work, name, "data"), { recursive: true, force: true });
  }
  console.log(`\nwork dir (gateway.log, MinIO logs): ${work}`);
}

main().catch((err: unknown) => {
  console.error(err);
  cleanup();
  process.exit(1);
});
