/**
 * Migration-write benchmark (issue 13; docs/benchmarks.md): the copier's create-only PUT
 * (`If-None-Match: *`) of 4 KiB and 64 MiB objects through s3gw as the migrator — a claim on the
 * key in the state store (SQLite), the PUT, the release — side by side with the same PUT straight
 * to the target MinIO, in one run. Prints ops/s (4 KiB, 16 at a time) and MB/s (64 MiB, one at a
 * time) and the ratios gateway/direct.
 *
 * Two MinIOs (plain HTTP, loopback) from the rig's binaries; the gateway is `s3gw serve` in a
 * child process, plain HTTP too, so the ratio is the migration write's cost, not TLS's.
 *
 * Usage: npx tsx bench/gateway/migration-write.ts [--small 2000] [--large 4]
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import type { S3Client } from "../../s3/client.js";
import { createBucket } from "../../s3/client-operations.js";
import { startServer, stopServers } from "../../test/rig/servers.js";
import { attachInMigrate, clientOf, MIGRATOR, startGateway } from "./lab.js";

const { values } = parseArgs({
  options: { small: { type: "string", default: "2000" }, large: { type: "string", default: "4" } },
});
const SMALL = Number(values.small);
const LARGE = Number(values.large);
const MIB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), "s3gw-bench-mw-"));
const children: ChildProcess[] = [];

async function createOnly(
  client: S3Client,
  bucket: string,
  key: string,
  size: number,
): Promise<void> {
  const chunk = randomBytes(Math.min(size, MIB));
  const body =
    size <= MIB
      ? chunk.subarray(0, size)
      : Readable.from(
          (function* () {
            for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
          })(),
        );
  const res = await client.request({
    method: "PUT",
    bucket,
    key,
    headers: { "if-none-match": "*" },
    body,
    contentLength: size,
  });
  res.body.resume();
}

async function small(client: S3Client, bucket: string): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < SMALL) await createOnly(client, bucket, `small/${next++}`, 4096);
    }),
  );
  return SMALL / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function large(client: S3Client, bucket: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < LARGE; i++) await createOnly(client, bucket, `large/${i}`, 64 * MIB);
  return (LARGE * 64 * MIB) / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  console.log(`migration-write bench: ${SMALL} × 4 KiB (16 at a time), ${LARGE} × 64 MiB`);
  const a = await startServer("minio");
  const b = await startServer("minio");
  try {
    const direct = clientOf(a);
    const source = clientOf(b);
    const gw = await startGateway(work, a, children);
    const viaGw = clientOf({ endpoint: gw.url, ...MIGRATOR });
    for (const bucket of ["direct", "migrating"]) await createBucket(direct, { bucket });
    await createBucket(source, { bucket: "migrating" });
    attachInMigrate(gw.admin, "migrating", b);
    const d4 = await small(direct, "direct");
    const g4 = await small(viaGw, "migrating");
    console.log(
      `4 KiB create-only PUT: direct ${d4.toFixed(0)} ops/s, through s3gw (migration write) ${g4.toFixed(0)} ops/s → ${(g4 / d4).toFixed(2)}×`,
    );
    const d64 = await large(direct, "direct");
    const g64 = await large(viaGw, "migrating");
    console.log(
      `64 MiB create-only PUT: direct ${d64.toFixed(1)} MB/s, through s3gw (migration write) ${g64.toFixed(1)} MB/s → ${(g64 / d64).toFixed(2)}×`,
    );
    for (const c of [direct, source, viaGw]) await c.close();
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await stopServers([a, b]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
