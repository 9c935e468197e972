/**
 * s3migrate benchmark (docs/benchmarks.md): two MinIO servers of the test rig on loopback, one
 * source and one target, and in the same run every tool copies the same three source buckets:
 *
 * - `small`: many small objects (default 20,000 × 4 KiB) → objects/s;
 * - `large`: a few large multipart objects (default 8 × 256 MiB, 16 MiB parts) → MB/s;
 * - `huge`: one very large multipart object (default 2 GiB) → peak RSS with 64 threads.
 *
 * Tools: s3migrate (built JS, `--list-source`: the peers list the source too, and a user whose
 * source has no POSIX view would do the same), `rclone copy` (tuned), MinIO `mc mirror`, and
 * nidor1998/s3sync when bench/build-peers.sh could build it. s5cmd cannot copy between two
 * endpoints (one endpoint per invocation, s3→s3 is a server-side CopyObject) and is left out.
 * The target bucket is emptied between tools, and every copy is checked afterwards (same keys
 * and sizes as the source). Wall time and peak RSS come from /usr/bin/time -v.
 *
 * Usage: npm run bench:s3migrate -- [--small-count 20000] [--small-size 4096]
 *   [--large-count 8] [--large-size 256M] [--huge-size 2G] [--part-size 16M] [--threads 64]
 *   [--tools s3migrate,rclone,mc,s3sync] [--phases small,large,huge] [--node-args="--cpu-prof"]
 * Quick run: --small-count 2000 --large-count 2 --large-size 64M --huge-size 256M.
 * Sizes take K/M/G suffixes (powers of 1024). MB/s is 10^6 bytes a second.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "../../s3/client.js";
import { startServers, stopServers, type RunningServer } from "../../test/rig/servers.js";
import { createBucket, emptyBucket, listAll, seedLarge, seedSmall } from "./seed.js";

const REPO = join(import.meta.dirname, "..", "..");
const TOOLS_DIR = join(REPO, ".tools");

const { values } = parseArgs({
  options: {
    "small-count": { type: "string", default: "20000" },
    "small-size": { type: "string", default: "4K" },
    "large-count": { type: "string", default: "8" },
    "large-size": { type: "string", default: "256M" },
    "huge-size": { type: "string", default: "2G" },
    "part-size": { type: "string", default: "16M" },
    threads: { type: "string", default: "64" },
    tools: { type: "string", default: "s3migrate,rclone,mc,s3sync" },
    phases: { type: "string", default: "small,large,huge" },
    // Extra node flags for s3migrate, e.g. --node-args="--cpu-prof --cpu-prof-dir=DIR" to profile.
    "node-args": { type: "string", default: "" },
  },
});

/** Parses `4K`, `256M`, `2G` (powers of 1024) or a plain byte count. */
function parseSize(text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text.trim());
  if (!m) throw new Error(`bad size: ${text}`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? "").toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

const cfg = {
  smallCount: Number(values["small-count"]),
  smallSize: parseSize(values["small-size"] ?? "4K"),
  largeCount: Number(values["large-count"]),
  largeSize: parseSize(values["large-size"] ?? "256M"),
  hugeSize: parseSize(values["huge-size"] ?? "2G"),
  partSize: parseSize(values["part-size"] ?? "16M"),
  threads: Number(values.threads),
  tools: (values.tools ?? "").split(",").filter(Boolean),
  phases: (values.phases ?? "").split(",").filter(Boolean) as Phase[],
  nodeArgs: (values["node-args"] ?? "").split(" ").filter(Boolean),
};

type Phase = "small" | "large" | "huge";

interface Measure {
  seconds: number;
  maxRssMiB: number;
  exitCode: number;
}

interface Endpoints {
  readonly src: RunningServer;
  readonly dst: RunningServer;
}

/** How to run one tool for one bucket. */
interface Tool {
  readonly name: string;
  /** Why it cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  version(): string;
  command(
    bucket: string,
    ep: Endpoints,
    work: string,
  ): { file: string; args: string[]; env: Record<string, string> };
}

/** Runs a command under /usr/bin/time -v; output goes to `logFile`. */
async function timed(
  file: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
): Promise<Measure> {
  const timeFile = `${logFile}.time`;
  // The servers are plain HTTP on loopback: a CA bundle from the environment is not needed,
  // and rclone 1.60 refuses to start with AWS_CA_BUNDLE set (LoadCustomCABundleError).
  const { AWS_CA_BUNDLE: _unused, ...inherited } = process.env;
  const child = spawn("/usr/bin/time", ["-v", "-o", timeFile, file, ...args], {
    env: { ...inherited, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  let kept = 0;
  const keep = (c: Buffer): void => {
    // Keep the start and nothing more: progress output of a long run is not needed.
    if (kept < 256 * 1024) chunks.push(c);
    kept += c.length;
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exitCode = await new Promise<number>((resolve) =>
    child.on("close", (code) => resolve(code ?? -1)),
  );
  writeFileSync(logFile, Buffer.concat(chunks));
  const text = spawnSync("cat", [timeFile], { encoding: "utf8" }).stdout;
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    text,
  );
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  if (!wall || !rss) throw new Error(`no /usr/bin/time figures for ${file}:\n${text}`);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return { seconds, maxRssMiB: Number(rss[1]) / 1024, exitCode };
}

function firstLine(file: string, args: string[]): string {
  const res = spawnSync(file, args, { encoding: "utf8" });
  return (res.stdout || res.stderr || "").split("\n")[0]?.trim() ?? "";
}

/** Compiles s3migrate into the bench's work dir, so a half-built dist/ does not matter. */
function buildS3migrate(work: string): string {
  const out = join(work, "build");
  spawnSync("npx", ["tsc", "-p", "tsconfig.build.json", "--outDir", out], { cwd: REPO });
  const cli = join(out, "cli", "s3migrate.js");
  if (!existsSync(cli)) throw new Error("build of cli/s3migrate.ts failed");
  copyFileSync(join(REPO, "package.json"), join(out, "package.json"));
  spawnSync("ln", ["-sfn", join(REPO, "node_modules"), join(out, "node_modules")]);
  return cli;
}

function makeTools(work: string): Tool[] {
  const s3migrateCli = cfg.tools.includes("s3migrate") ? buildS3migrate(work) : "";
  const mc = join(TOOLS_DIR, "bin", "mc");
  const s3sync = join(TOOLS_DIR, "cargo", "bin", "s3sync");
  const rcloneConf = join(work, "rclone.conf");
  writeFileSync(rcloneConf, "");
  const rcloneRemote = (name: string, s: RunningServer): Record<string, string> => {
    const p = `RCLONE_CONFIG_${name}_`;
    return {
      [`${p}TYPE`]: "s3",
      [`${p}PROVIDER`]: "Minio",
      [`${p}ACCESS_KEY_ID`]: s.accessKeyId,
      [`${p}SECRET_ACCESS_KEY`]: s.secretAccessKey,
      [`${p}ENDPOINT`]: s.endpoint,
      [`${p}REGION`]: s.region,
    };
  };
  const mcHost = (s: RunningServer): string =>
    s.endpoint.replace("://", `://${s.accessKeyId}:${s.secretAccessKey}@`);
  const onPath = (cmd: string): boolean =>
    spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).status === 0;
  const all: Tool[] = [
    {
      name: "s3migrate",
      unavailable: () => undefined,
      version: () => `node ${process.version}`,
      command: (bucket, ep, w) => {
        const dest = mkdtempSync(join(w, `s3migrate-${bucket}-`));
        return {
          file: process.execPath,
          args: [
            ...cfg.nodeArgs,
            s3migrateCli,
            "--list-source",
            "--src-url",
            ep.src.endpoint,
            "--src-bucket",
            bucket,
            "--dest-url",
            ep.dst.endpoint,
            "--dest-bucket",
            bucket,
            "--dest-folder",
            dest,
            "--threads",
            String(cfg.threads),
            "--progress-interval",
            "10",
          ],
          env: {
            S3MIGRATE_SRC_KEY: ep.src.accessKeyId,
            S3MIGRATE_SRC_SECRET: ep.src.secretAccessKey,
            S3MIGRATE_DEST_KEY: ep.dst.accessKeyId,
            S3MIGRATE_DEST_SECRET: ep.dst.secretAccessKey,
          },
        };
      },
    },
    {
      name: "rclone",
      unavailable: () => (onPath("rclone") ? undefined : "not installed (apt-get install rclone)"),
      version: () => firstLine("rclone", ["version"]),
      command: (bucket, ep) => ({
        file: "rclone",
        // Tuned: as many transfers and checkers as s3migrate has threads; large objects go
        // multipart with the source's 16 MiB part size, 8 parts of one object at a time.
        // No server-side copy: the two remotes are different endpoints.
        args: [
          "copy",
          `src:${bucket}`,
          `dst:${bucket}`,
          "--config",
          rcloneConf,
          "--transfers",
          String(cfg.threads),
          "--checkers",
          String(cfg.threads),
          "--s3-upload-concurrency",
          "8",
          // rclone reads a bare number as KiB.
          "--s3-chunk-size",
          `${Math.ceil(cfg.partSize / 1024)}k`,
          "--s3-upload-cutoff",
          `${Math.ceil((cfg.partSize * 4) / 1024)}k`,
          "--s3-no-check-bucket",
          "--stats",
          "0",
        ],
        env: { ...rcloneRemote("SRC", ep.src), ...rcloneRemote("DST", ep.dst) },
      }),
    },
    {
      name: "mc",
      unavailable: () => (existsSync(mc) ? undefined : "not built (bash bench/build-peers.sh)"),
      version: () => firstLine(mc, ["--version"]),
      command: (bucket, ep, w) => ({
        file: mc,
        // mc mirror sizes its worker pool by itself (it adds workers while bandwidth grows).
        args: [
          "mirror",
          "--quiet",
          "--config-dir",
          join(w, "mc-config"),
          `src/${bucket}`,
          `dst/${bucket}`,
        ],
        env: { MC_HOST_src: mcHost(ep.src), MC_HOST_dst: mcHost(ep.dst) },
      }),
    },
    {
      name: "s3sync",
      unavailable: () =>
        existsSync(s3sync) ? undefined : "not built (bench/build-peers.sh; see its log)",
      version: () => firstLine(s3sync, ["--version"]),
      command: (bucket, ep) => ({
        file: s3sync,
        args: [
          "--source-endpoint-url",
          ep.src.endpoint,
          "--source-force-path-style",
          "--source-region",
          ep.src.region,
          "--target-endpoint-url",
          ep.dst.endpoint,
          "--target-force-path-style",
          "--target-region",
          ep.dst.region,
          "--worker-size",
          String(cfg.threads),
          "--multipart-threshold",
          String(cfg.partSize * 4),
          "--multipart-chunksize",
          String(cfg.partSize),
          `s3://${bucket}`,
          `s3://${bucket}`,
        ],
        env: {
          SOURCE_ACCESS_KEY: ep.src.accessKeyId,
          SOURCE_SECRET_ACCESS_KEY: ep.src.secretAccessKey,
          TARGET_ACCESS_KEY: ep.dst.accessKeyId,
          TARGET_SECRET_ACCESS_KEY: ep.dst.secretAccessKey,
        },
      }),
    },
  ];
  return all.filter((t) => cfg.tools.includes(t.name));
}

interface Row {
  tool: string;
  phase: Phase;
  measure: Measure;
  objects: number;
  bytes: number;
  ok: boolean;
  note: string;
}

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : "-");

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "s3migrate-bench-"));
  mkdirSync(work, { recursive: true });
  const servers = await startServers(["minio", "minio"]);
  const [src, dst] = servers as [RunningServer, RunningServer];
  const client = (s: RunningServer): S3Client =>
    new S3Client({
      endpoint: s.endpoint,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      region: s.region,
      connections: 32,
    });
  const srcClient = client(src);
  const dstClient = client(dst);
  const rows: Row[] = [];
  try {
    const tools = makeTools(work);
    console.log(
      `cores=${availableParallelism()} threads=${cfg.threads} small=${cfg.smallCount}x${cfg.smallSize}B ` +
        `large=${cfg.largeCount}x${cfg.largeSize}B huge=1x${cfg.hugeSize}B parts=${cfg.partSize}B`,
    );
    const t0 = performance.now();
    for (const phase of cfg.phases) {
      await createBucket(srcClient, phase);
      await createBucket(dstClient, phase);
    }
    if (cfg.phases.includes("small"))
      await seedSmall(srcClient, "small", { count: cfg.smallCount, size: cfg.smallSize });
    if (cfg.phases.includes("large"))
      await seedLarge(srcClient, "large", {
        prefix: "large/",
        count: cfg.largeCount,
        size: cfg.largeSize,
        partSize: cfg.partSize,
      });
    if (cfg.phases.includes("huge"))
      await seedLarge(srcClient, "huge", {
        prefix: "huge/",
        count: 1,
        size: cfg.hugeSize,
        partSize: cfg.partSize,
      });
    console.log(`(seeded the source in ${fmt((performance.now() - t0) / 1000)}s)`);
    const expected = new Map<Phase, { objects: number; bytes: number; etags: Set<string> }>();
    for (const phase of cfg.phases) {
      const listed = await listAll(srcClient, phase);
      expected.set(phase, {
        objects: listed.length,
        bytes: listed.reduce((a, o) => a + o.size, 0),
        etags: new Set(listed.map((o) => `${o.key} ${o.etag}`)),
      });
    }
    for (const tool of tools) {
      const why = tool.unavailable();
      if (why) {
        console.log(`${tool.name}: skipped, ${why}`);
        continue;
      }
      console.log(`${tool.name}: ${tool.version()}`);
      for (const phase of cfg.phases) {
        await emptyBucket(dstClient, phase);
        const { file, args, env } = tool.command(phase, { src, dst }, work);
        const log = join(work, `${tool.name}-${phase}.log`);
        // Write back what seeding or the previous tool left dirty, so that no tool pays for
        // another's disk writes.
        spawnSync("sync");
        const measure = await timed(file, args, env, log);
        const exp = expected.get(phase) as { objects: number; bytes: number; etags: Set<string> };
        const got = await listAll(dstClient, phase);
        const bytes = got.reduce((a, o) => a + o.size, 0);
        const sameEtags = got.filter((o) => exp.etags.has(`${o.key} ${o.etag}`)).length;
        const ok = measure.exitCode === 0 && got.length === exp.objects && bytes === exp.bytes;
        const row: Row = {
          tool: tool.name,
          phase,
          measure,
          objects: got.length,
          bytes,
          ok,
          note: `${sameEtags}/${exp.objects} ETags kept${ok ? "" : `; exit ${measure.exitCode}, ${got.length}/${exp.objects} objects, log ${log}`}`,
        };
        rows.push(row);
        console.log(
          `  ${phase.padEnd(5)} ${fmt(measure.seconds, 2).padStart(8)}s ` +
            `${fmt(got.length / measure.seconds).padStart(9)} obj/s ` +
            `${fmt(bytes / 1e6 / measure.seconds).padStart(8)} MB/s ` +
            `${fmt(measure.maxRssMiB, 0).padStart(6)} MiB RSS  ${ok ? "ok" : "INCOMPLETE"} (${row.note})`,
        );
      }
      for (const phase of cfg.phases) await emptyBucket(dstClient, phase);
    }
  } finally {
    await Promise.allSettled([srcClient.close(), dstClient.close()]);
    await stopServers(servers);
    // Keep the tools' logs when a copy came out incomplete.
    if (rows.every((r) => r.ok)) rmSync(work, { recursive: true, force: true });
    else console.log(`(logs kept in ${work})`);
  }
  report(rows);
}

/** Prints the table and the ratios of s3migrate to the best peer. */
function report(rows: Row[]): void {
  const get = (tool: string, phase: Phase): Row | undefined =>
    rows.find((r) => r.tool === tool && r.phase === phase && r.ok);
  const names = [...new Set(rows.map((r) => r.tool))];
  const objPerS = (r?: Row): number => (r ? r.objects / r.measure.seconds : NaN);
  const mbPerS = (r?: Row): number => (r ? r.bytes / 1e6 / r.measure.seconds : NaN);
  const rss = (r?: Row): number => (r ? r.measure.maxRssMiB : NaN);
  console.log("");
  console.log(
    "| tool | small obj/s | small RSS MiB | large MB/s | large RSS MiB | huge MB/s | huge RSS MiB |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const t of names) {
    const s = get(t, "small");
    const l = get(t, "large");
    const h = get(t, "huge");
    console.log(
      `| ${t} | ${fmt(objPerS(s))} | ${fmt(rss(s), 0)} | ${fmt(mbPerS(l))} | ${fmt(rss(l), 0)} | ${fmt(mbPerS(h))} | ${fmt(rss(h), 0)} |`,
    );
  }
  const peers = names.filter((n) => n !== "s3migrate");
  const best = (f: (r?: Row) => number, phase: Phase): { value: number; tool: string } => {
    let out = { value: NaN, tool: "-" };
    for (const p of peers) {
      const v = f(get(p, phase));
      if (Number.isFinite(v) && !(v <= out.value)) out = { value: v, tool: p };
    }
    return out;
  };
  const ratio = (label: string, f: (r?: Row) => number, phase: Phase, goal: string): void => {
    const b = best(f, phase);
    const mine = f(get("s3migrate", phase));
    console.log(
      `${label}: s3migrate ${fmt(mine)} vs best peer ${b.tool} ${fmt(b.value)} → ${fmt(mine / b.value, 2)}× (goal ${goal})`,
    );
  };
  console.log("");
  ratio("objects/s (small)", objPerS, "small", "≥ 1.0×");
  ratio("MB/s (large)", mbPerS, "large", "≥ 0.95×");
  ratio("MB/s (huge)", mbPerS, "huge", "-");
  const hugeRss = rss(get("s3migrate", "huge"));
  console.log(
    `peak RSS, s3migrate --threads ${cfg.threads} with the ${cfg.hugeSize}-byte object: ${fmt(hugeRss, 0)} MiB (goal ≤ 256 MiB)`,
  );
  const failed = rows.filter((r) => !r.ok);
  for (const r of failed) console.log(`INCOMPLETE: ${r.tool} ${r.phase}: ${r.note}`);
}

await main();
