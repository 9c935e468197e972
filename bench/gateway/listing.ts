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
 * With `--memory-keys M` (e.g. 200000) it then proves memory flat at scale: M keys under one
 * prefix split 50/50, listed through the gateway in full, with the delimiter `/` (one
 * CommonPrefix, folded by the backends) and with `-` (one CommonPrefix the gateway rolls up
 * itself), the gateway's RSS sampled every 50 ms, reported at 10%, 50% and 100% of each listing.
 *
 * Usage: npx tsx bench/gateway/listing.ts [--keys 100000] [--page 1000] [--runs 3]
 *        [--memory-keys 200000]
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "../../s3/client.js";
import { createBucket, listObjectsV2Page, putObject } from "../../s3/client-operations.js";
import { startServer, stopServers } from "../../test/rig/servers.js";
import { attachInMigrate, clientOf, heap, memory, startGateway, USER } from "./lab.js";
const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "100000" },
    page: { type: "string", default: "1000" },
    runs: { type: "string", default: "3" },
    "memory-keys": { type: "string", default: "0" },
  },
});
const N = Number(values.keys);
const PAGE = Number(values.page);
const RUNS = Number(values.runs);
const MEMORY_KEYS = Number(values["memory-keys"]);
const work = mkdtempSync(join(tmpdir(), "s3gw-bench-listing-"));
const children: ChildProcess[] = [];

const key = (i: number): string => `dir${i % 97}/obj-${String(i).padStart(7, "0")}`;

async function fill(
  client: S3Client,
  bucket: string,
  indices: number[],
  keyOf: (i: number) => string = key,
): Promise<void> {
  let next = 0;
  const empty = Buffer.alloc(0);
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < indices.length) {
        const i = indices[next++] as number;
        await putObject(client, { bucket, key: keyOf(i), body: empty });
      }
    }),
  );
}

/** The gateway's RSS sampled every 50 ms while a listing runs. */
class RssSampler {
  readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(pid: number | undefined) {
    this.samples.push(memory(pid).rss);
    this.timer = setInterval(() => this.samples.push(memory(pid).rss), 50);
  }
  stop(): { max: number; at: (fraction: number) => number } {
    clearInterval(this.timer);
    const s = this.samples;
    return {
      max: Math.max(...s),
      at: (f) => s[Math.min(s.length - 1, Math.floor((s.length - 1) * f))] as number,
    };
  }
}

/** Lists a whole bucket (ListObjectsV2, `PAGE` keys a page); returns entries and seconds. */
async function listAll(
  client: S3Client,
  bucket: string,
  delimiter?: string,
): Promise<{ keys: number; s: number }> {
  const t0 = process.hrtime.bigint();
  let keys = 0;
  let token: string | undefined;
  for (;;) {
    const page = await listObjectsV2Page(client, {
      bucket,
      maxKeys: PAGE,
      ...(delimiter === undefined ? {} : { delimiter }),
      ...(token === undefined ? {} : { continuationToken: token }),
    });
    keys += page.contents.length + page.commonPrefixes.length;
    if (!page.isTruncated) break;
    token = page.nextContinuationToken;
  }
  return { keys, s: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** M keys under one prefix, split 50/50; the gateway's RSS through three listings of them. */
async function memoryAtScale(
  ca: S3Client,
  cb: S3Client,
  b: Parameters<typeof attachInMigrate>[2],
  gw: { url: string; admin: string; metrics: string; pid: number | undefined },
  viaGw: S3Client,
): Promise<void> {
  const memKey = (i: number): string => `one/k-${String(i).padStart(7, "0")}`;
  const all = Array.from({ length: MEMORY_KEYS }, (_, i) => i);
  const t0 = Date.now();
  await createBucket(ca, { bucket: "mem" });
  await createBucket(cb, { bucket: "mem" });
  await fill(
    ca,
    "mem",
    all.filter((i) => i % 2 === 0),
    memKey,
  );
  await fill(
    cb,
    "mem",
    all.filter((i) => i % 2 === 1),
    memKey,
  );
  attachInMigrate(gw.admin, "mem", b);
  console.log(
    `memory setup: ${MEMORY_KEYS} keys under one prefix in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  for (const [name, delimiter, expected] of [
    ["full listing", undefined, MEMORY_KEYS],
    ["delimiter '/' (one CommonPrefix, folded by the backends)", "/", 1],
    ["delimiter '-' (one CommonPrefix, rolled up by the gateway)", "-", 1],
  ] as const) {
    const sampler = new RssSampler(gw.pid);
    const r = await listAll(viaGw, "mem", delimiter);
    const rss = sampler.stop();
    const h = await heap(gw.metrics);
    if (r.keys !== expected) throw new Error(`${name}: ${r.keys} entries, expected ${expected}`);
    console.log(
      `memory, ${MEMORY_KEYS} keys, ${name}: ${r.s.toFixed(2)} s; gateway RSS at 10% ${rss.at(0.1).toFixed(0)} MiB, 50% ${rss.at(0.5).toFixed(0)} MiB, end ${rss.at(1).toFixed(0)} MiB, max ${rss.max.toFixed(0)} MiB; V8 heap after: ${h.used.toFixed(0)} MiB used of ${h.total.toFixed(0)} MiB reserved`,
    );
  }
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
      const sampler = new RssSampler(gw.pid);
      for (let r = 0; r < RUNS; r++) {
        const d = await listAll(ca, "direct");
        const m = await listAll(viaGw, bucket);
        if (d.keys !== N || m.keys !== N) throw new Error(`listed ${d.keys} / ${m.keys} of ${N}`);
        direct.push(d.s);
        merged.push(m.s);
      }
      const med = (xs: number[]): number =>
        [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
      const rss = sampler.stop();
      const h = await heap(gw.metrics);
      console.log(
        `${name}: direct ${med(direct).toFixed(2)} s, through s3gw ${med(merged).toFixed(2)} s → ${(med(merged) / med(direct)).toFixed(2)}× (goal ≤ 1.5×); runs ${direct.map((d, i) => `${d.toFixed(2)}/${(merged[i] as number).toFixed(2)}`).join(" ")}; gateway RSS ${before.rss.toFixed(0)} MiB before, max ${rss.max.toFixed(0)} MiB while listing, V8 heap ${h.used.toFixed(0)} MiB used of ${h.total.toFixed(0)} MiB reserved after`,
      );
    }
    if (MEMORY_KEYS > 0) await memoryAtScale(ca, cb, b, gw, viaGw);
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
