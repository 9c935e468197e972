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
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "../../s3/client.js";
import { createBucket, listObjectsV2Page, putObject } from "../../s3/client-operations.js";
import { startServer, stopServers } from "../../test/rig/servers.js";
import { attachInMigrate, clientOf, memory, startGateway, USER } from "./lab.js";
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

async function main(): Promise<void> {
  console.log(`merged-listing bench: ${N} keys, pages of ${PAGE}, ${RUNS} runs each`);
  const a = await startServer("minio");
  const b = await startServer("minio");
  try {
    const ca = clientOf(a);
    const cb = clientOf(b);
    console.log("servers up; starting s3gw");
    const gw = await startGateway(work, a, children);
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
      attachInMigrate(gw.admin, bucket, b);
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
