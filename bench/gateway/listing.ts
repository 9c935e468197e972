/**
 * Merged-listing benchmark (issue 10; docs/benchmarks.md, "merged listings"): a full
 * ListObjectsV2 of N keys (default 100,000) through s3gw in migrate mode, with the keys split
 * between the target and the source (50/50, then 99/1, the end of a migration), side by side
 * with a direct listing of N keys on one backend, in the same run. Prints each time, the ratio
 * gateway/direct (goal ≤ 1.5×), and the gateway's resident memory before and after (VmRSS and
 * its peak VmHWM from /proc), which must stay flat whatever N.
 *
 * Two MinIOs (plain HTTP, loopback) from the rig's binaries; the gateway is `s3gw serve` in a
 * child process (plain HTTP too, so the ratio is the merge's cost, not TLS's). The keys are
 * zero-byte objects written with 64 concurrent PUTs; on a two-core machine the setup takes
 * minutes for 100,000 keys a bucket.
 *
 * Usage: npx tsx bench/gateway/listing.ts [--keys 100000] [--page 1000] [--runs 3]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "../../s3/client.js";
import { createBucket, listObjectsV2Page, putObject } from "../../s3/client-operations.js";
import { startServer, stopServers } from "../../test/rig/servers.js";
import type { RigServer } from "../../test/rig/types.js";

const REPO = join(import.meta.dirname, "..", "..");
const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "100000" },
    page: { type: "string", default: "1000" },
    runs: { type: "string", default: "3" },
  },
});
const N = Number(values.keys);
const PAGE = Number(values.page);
const RUNS = Number(values.runs);
const work = mkdtempSync(join(tmpdir(), "s3gw-bench-listing-"));
const children: ChildProcess[] = [];

const USER = { accessKeyId: "bench-user", secretAccessKey: randomBytes(16).toString("hex") };
const ADMIN = { accessKeyId: "bench-admin", secretAccessKey: randomBytes(16).toString("hex") };

function clientOf(e: { endpoint: string; accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: e.endpoint,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    region: "us-east-1",
    connections: 64,
  });
}

const key = (i: number): string => `dir${i % 97}/obj-${String(i).padStart(7, "0")}`;

async function fill(client: S3Client, bucket: string, indices: number[]): Promise<void> {
  let next = 0;
  const empty = Buffer.alloc(0);
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < indices.length) {
        const i = indices[next++] as number;
        await putObject(client, { bucket, key: key(i), body: empty });
      }
    }),
  );
}

/** Lists a whole bucket (ListObjectsV2, `PAGE` keys a page); returns keys and seconds. */
async function listAll(client: S3Client, bucket: string): Promise<{ keys: number; s: number }> {
  const t0 = process.hrtime.bigint();
  let keys = 0;
  let token: string | undefined;
  for (;;) {
    const page = await listObjectsV2Page(client, {
      bucket,
      maxKeys: PAGE,
      ...(token === undefined ? {} : { continuationToken: token }),
    });
    keys += page.contents.length;
    if (!page.isTruncated) break;
    token = page.nextContinuationToken;
  }
  return { keys, s: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function memory(pid: number | undefined): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1]);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

async function startGateway(
  target: RigServer,
): Promise<{ url: string; admin: string; pid: number | undefined }> {
  const config = join(work, "gateway.yaml");
  writeFileSync(
    config,
    [
      "listen: 127.0.0.1:0",
      "admin: { listen: 127.0.0.1:0 }",
      "region: us-east-1",
      `target: { endpoint: "${target.endpoint}", accessKey: ${target.accessKeyId}, secretKey: "${target.secretAccessKey}" }`,
      "credentials:",
      `  - { accessKey: ${USER.accessKeyId}, secretKey: "${USER.secretAccessKey}" }`,
      `  - { accessKey: ${ADMIN.accessKeyId}, secretKey: "${ADMIN.secretAccessKey}", role: admin }`,
      `state: { path: "${join(work, "state.db")}" }`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(REPO, "cli", "s3gw.ts"),
      "serve",
      "--config",
      config,
      "--log-level",
      "info",
    ],
    { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  let head = "";
  const urls = await new Promise<{ url: string; admin: string }>((done, fail) => {
    const found: { url?: string; admin?: string } = {};
    child.stdout?.on("data", (d: Buffer) => {
      // Keep draining the access log once both addresses are known, without keeping it.
      if (found.url !== undefined && found.admin !== undefined) return;
      head += d.toString();
      for (const line of head.split("\n")) {
        if (line.includes("S3 endpoint listening"))
          found.url = (JSON.parse(line) as { url: string }).url;
        if (line.includes("admin API listening"))
          found.admin = (JSON.parse(line) as { url: string }).url;
      }
      if (found.url !== undefined && found.admin !== undefined)
        done({ url: found.url, admin: found.admin });
    });
    child.once("exit", (code) => fail(new Error(`s3gw exited ${code}`)));
  });
  return { ...urls, pid: child.pid };
}

function adminCli(adminUrl: string, args: string[]): void {
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
      },
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`s3gw bucket migrate ${args[0]} failed: ${r.stderr}`);
}

async function main(): Promise<void> {
  console.log(`merged-listing bench: ${N} keys, pages of ${PAGE}, ${RUNS} runs each`);
  const a = await startServer("minio");
  const b = await startServer("minio");
  try {
    const ca = clientOf(a);
    const cb = clientOf(b);
    console.log("servers up; starting s3gw");
    const gw = await startGateway(a);
    console.log(`s3gw at ${gw.url}; writing keys`);
    const viaGw = clientOf({ endpoint: gw.url, ...USER });
    const all = Array.from({ length: N }, (_, i) => i);
    const t0 = Date.now();
    await createBucket(ca, { bucket: "direct" });
    await fill(ca, "direct", all);
    const splits: [string, (i: number) => boolean][] = [
      ["50/50", (i) => i % 2 === 0],
      ["99/1", (i) => i % 100 !== 0],
    ];
    for (const [name, onTarget] of splits) {
      const bucket = `split-${name.replace("/", "-")}`;
      await createBucket(ca, { bucket });
      await createBucket(cb, { bucket });
      await fill(ca, bucket, all.filter(onTarget));
      await fill(
        cb,
        bucket,
        all.filter((i) => !onTarget(i)),
      );
      adminCli(gw.admin, [
        "attach",
        bucket,
        b.endpoint,
        "system",
        "--s3-key",
        b.accessKeyId,
        "--s3-secret",
        b.secretAccessKey,
      ]);
      adminCli(gw.admin, ["update", "--bucket", bucket, "--mode", "forward"]);
      adminCli(gw.admin, ["update", "--bucket", bucket, "--mode", "migrate", "--yes"]);
    }
    console.log(`setup: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const before = memory(gw.pid);
    for (const [name] of splits) {
      const bucket = `split-${name.replace("/", "-")}`;
      const direct: number[] = [];
      const merged: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const d = await listAll(ca, "direct");
        const m = await listAll(viaGw, bucket);
        if (d.keys !== N || m.keys !== N) throw new Error(`listed ${d.keys} / ${m.keys} of ${N}`);
        direct.push(d.s);
        merged.push(m.s);
      }
      const med = (xs: number[]): number =>
        [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
      const after = memory(gw.pid);
      console.log(
        `${name}: direct ${med(direct).toFixed(2)} s, through s3gw ${med(merged).toFixed(2)} s → ${(med(merged) / med(direct)).toFixed(2)}× (goal ≤ 1.5×); gateway RSS ${before.rss.toFixed(0)} → ${after.rss.toFixed(0)} MiB, peak ${after.hwm.toFixed(0)} MiB`,
      );
    }
    await viaGw.close();
    await ca.close();
    await cb.close();
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await stopServers([a, b]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
