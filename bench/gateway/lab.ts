/**
 * Shared pieces of the gateway benchmarks that run `s3gw serve` in a child process in front of
 * rig MinIOs over plain HTTP (bench/gateway/listing.ts, migration-write.ts): the credentials,
 * the gateway's start, its admin CLI, and its memory from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { S3Client } from "../../s3/client.js";
import type { RigServer } from "../../test/rig/types.js";

const REPO = join(import.meta.dirname, "..", "..");

export const USER = { accessKeyId: "bench-user", secretAccessKey: randomBytes(16).toString("hex") };
export const MIGRATOR = {
  accessKeyId: "bench-migrator",
  secretAccessKey: randomBytes(16).toString("hex"),
};
export const ADMIN = {
  accessKeyId: "bench-admin",
  secretAccessKey: randomBytes(16).toString("hex"),
};

export function clientOf(e: {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}): S3Client {
  return new S3Client({
    endpoint: e.endpoint,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    region: "us-east-1",
    connections: 64,
  });
}

/** The gateway's V8 heap (MiB) from its Prometheus metrics: in use and reserved. */
export async function heap(metricsUrl: string): Promise<{ used: number; total: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (name: string): number =>
    Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1]) / 1024 / 1024;
  return {
    used: value("s3gw_nodejs_heap_size_used_bytes"),
    total: value("s3gw_nodejs_heap_size_total_bytes"),
  };
}

export function memory(pid: number | undefined): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1]);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

export async function startGateway(
  work: string,
  target: RigServer,
  children: ChildProcess[],
): Promise<{ url: string; admin: string; metrics: string; pid: number | undefined }> {
  const config = join(work, "gateway.yaml");
  writeFileSync(
    config,
    [
      "listen: 127.0.0.1:0",
      "admin: { listen: 127.0.0.1:0 }",
      "metrics: { listen: 127.0.0.1:0 }",
      "region: us-east-1",
      `target: { endpoint: "${target.endpoint}", accessKey: ${target.accessKeyId}, secretKey: "${target.secretAccessKey}" }`,
      "credentials:",
      `  - { accessKey: ${USER.accessKeyId}, secretKey: "${USER.secretAccessKey}" }`,
      `  - { accessKey: ${MIGRATOR.accessKeyId}, secretKey: "${MIGRATOR.secretAccessKey}", role: migrator }`,
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
  const urls = await new Promise<{ url: string; admin: string; metrics: string }>((done, fail) => {
    const found: { url?: string; admin?: string; metrics?: string } = {};
    child.stdout?.on("data", (d: Buffer) => {
      // Keep draining the access log once both addresses are known, without keeping it.
      if (found.url !== undefined && found.admin !== undefined && found.metrics !== undefined)
        return;
      head += d.toString();
      for (const line of head.split("\n")) {
        if (line.includes("S3 endpoint listening"))
          found.url = (JSON.parse(line) as { url: string }).url;
        if (line.includes("admin API listening"))
          found.admin = (JSON.parse(line) as { url: string }).url;
        if (line.includes("metrics listening"))
          found.metrics = (JSON.parse(line) as { url: string }).url;
      }
      if (found.url !== undefined && found.admin !== undefined && found.metrics !== undefined)
        done({ url: found.url, admin: found.admin, metrics: found.metrics });
    });
    child.once("exit", (code) => fail(new Error(`s3gw exited ${code}`)));
  });
  return { ...urls, pid: child.pid };
}

export function adminCli(adminUrl: string, args: string[]): void {
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

/** Attaches `bucket` to the same bucket on `source` and switches it to migrate mode. */
export function attachInMigrate(adminUrl: string, bucket: string, source: RigServer): void {
  adminCli(adminUrl, [
    "attach",
    bucket,
    source.endpoint,
    "system",
    "--s3-key",
    source.accessKeyId,
    "--s3-secret",
    source.secretAccessKey,
  ]);
  adminCli(adminUrl, ["update", "--bucket", bucket, "--mode", "forward"]);
  adminCli(adminUrl, ["update", "--bucket", bucket, "--mode", "migrate", "--yes"]);
}
