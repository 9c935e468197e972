// Real clients over a large migrate-mode bucket (issue 10, Proof): `aws s3 ls --recursive`,
// `aws s3 sync --delete` (down, then up), `rclone lsf -R` and `rclone check`, `s3cmd ls -r`
// through s3gw over TLS, on a bucket of 5,000 keys split over a MinIO target and a versitygw
// source: 40 % on both sides (the two copies of different sizes, so a listing shows which side
// won), 30 % on the target only, 30 % on the source only. The keys lie at several depths under
// prefixes that sort around "/" (`a-b/`, `a.txt`, `a/`, `a0/`), with runs of more than 1,000
// keys on one side only, so every client pages through many 1,000-key pages, across prefix
// boundaries and past pages where one side has nothing. Each client must see exactly the union
// (every key once, in order where the client keeps the server's order, with the target's size
// for a key on both sides). The sync round trip ends with a real upward sync (new, changed and
// deleted files): the bucket is then exactly the local tree, on both backends the deleted keys
// are gone, and a last downward sync finds nothing to do (a deleted key came back otherwise).
// Replay a run with LISTING_SEED=<seed> (printed at the start).

import { mkdir, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { randomBytes } from "node:crypto";
import { paginateListObjectsV2, type S3Client as SdkClient } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import { createBucket, putObject } from "../../s3/client-operations.js";
import { runTool, writeCliClients, type CliClients } from "../helpers/cli-clients.js";
import {
  attachBucket,
  directClient,
  exists,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { Rng, byteOrder, listingSeed } from "../helpers/listing-model.js";
import { generateBucket, type Placed } from "../helpers/client-bucket.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("listing-clients-user");
/** How many PUTs fill the backends at once. */
const FILL_CONCURRENCY = 16;
const seed = listingSeed();
console.log(`gateway listing clients: LISTING_SEED=${seed}`);

/** `key size` lines in UTF-8 byte order of the keys: the form every listing is compared in. */
function lines(sizes: ReadonlyMap<string, number>): string[] {
  return [...sizes].sort(([a], [b]) => byteOrder(a, b)).map(([key, size]) => `${key} ${size}`);
}

/** Every file under `root` as `relative/path size`, sorted. */
async function localTree(root: string): Promise<string[]> {
  const sizes = new Map<string, number>();
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    sizes.set(relative(root, path), (await stat(path)).size);
  }
  return lines(sizes);
}

/** A ListObjectsV2 listing paged to the end with the SDK, as `key size` lines in server order. */
async function listAll(client: SdkClient, bucket: string): Promise<string[]> {
  const out: string[] = [];
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket })) {
    for (const o of page.Contents ?? []) out.push(`${o.Key} ${o.Size}`);
  }
  return out;
}

/** The lines of an `aws s3 sync` run by kind (`download`, `upload`, `delete`) and the rest. */
function syncLines(
  out: string,
  bucket: string,
  local: string,
): { download: string[]; upload: string[]; delete: string[]; other: string[] } {
  const r = { download: [] as string[], upload: [] as string[], delete: [] as string[] };
  const other: string[] = [];
  const remote = `s3://${bucket}/`;
  const rel = (path: string): string => relative(local, path);
  for (const line of out.split("\n")) {
    if (line.trim() === "") continue;
    let m = new RegExp(`^download: ${remote}(\\S+) to (\\S+)$`).exec(line);
    if (m !== null && rel(m[2] as string) === m[1]) {
      r.download.push(m[1] as string);
      continue;
    }
    m = new RegExp(`^upload: (\\S+) to ${remote}(\\S+)$`).exec(line);
    if (m !== null && rel(m[1] as string) === m[2]) {
      r.upload.push(m[2] as string);
      continue;
    }
    m = new RegExp(`^delete: (?:${remote}(\\S+)|(\\S+))$`).exec(line);
    if (m !== null) {
      r.delete.push(m[1] ?? rel(m[2] as string));
      continue;
    }
    other.push(line);
  }
  return {
    download: r.download.sort(byteOrder),
    upload: r.upload.sort(byteOrder),
    delete: r.delete.sort(byteOrder),
    other,
  };
}

describe("real clients over a migrate-mode bucket of 5,000 keys (target MinIO, source versitygw)", () => {
  const rng = new Rng(seed);
  const bucket = `glcl-${randomBytes(4).toString("hex")}`;
  const sourceBucket = `${bucket}-src`;
  const placed = generateBucket(rng);
  /** What a merged listing shows: every key once, the target's size where it is on both. */
  const union = new Map([...placed].map(([k, p]) => [k, (p.target ?? p.source) as number]));
  const keysOn = (side: keyof Placed): Map<string, number> =>
    new Map(
      [...placed].flatMap(([k, p]) => (p[side] === undefined ? [] : [[k, p[side]] as const])),
    );
  const of = (kind: "both" | "target" | "source"): string[] =>
    [...placed]
      .filter(([, p]) =>
        kind === "both"
          ? p.target !== undefined && p.source !== undefined
          : kind === "target"
            ? p.source === undefined
            : p.target === undefined,
      )
      .map(([k]) => k)
      .sort(byteOrder);
  let certs: TestCerts;
  let gw: TestGateway;
  let clients: CliClients;
  let sdk: SdkClient;
  let direct: { target: SdkClient; source: SdkClient };

  beforeAll(async () => {
    const started = Date.now();
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER],
    });
    const raw = (server: RigServer): S3Client =>
      new S3Client({
        endpoint: server.endpoint,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
        region: server.region,
      });
    const target = raw(rig.minio);
    const source = raw(rig.versitygw);
    try {
      await createBucket(target, { bucket });
      await createBucket(source, { bucket: sourceBucket });
      const puts: [S3Client, string, string, Buffer][] = [];
      for (const [key, p] of placed) {
        // "t"/"s" bodies: a downloaded file also says by its bytes which side it came from.
        if (p.target !== undefined) puts.push([target, bucket, key, Buffer.alloc(p.target, 0x74)]);
        if (p.source !== undefined) {
          puts.push([source, sourceBucket, key, Buffer.alloc(p.source, 0x73)]);
        }
      }
      let next = 0;
      await Promise.all(
        Array.from({ length: FILL_CONCURRENCY }, async () => {
          while (next < puts.length) {
            const [client, b, key, body] = puts[next++] as (typeof puts)[number];
            await putObject(client, { bucket: b, key, body });
          }
        }),
      );
    } finally {
      await target.close();
      await source.close();
    }
    await attachBucket(gw, { bucket, source: rig.versitygw, sourceBucket, mode: "migrate" });
    clients = await writeCliClients({
      gw,
      certs,
      credential: USER,
      region: rig.minio.region,
      dirPrefix: "s3gw-listing-clients-",
    });
    sdk = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    direct = { target: directClient(rig.minio), source: directClient(rig.versitygw) };
    console.log(
      `gateway listing clients: ${placed.size} keys (${of("both").length} on both sides, ` +
        `${of("target").length} target only, ${of("source").length} source only) ` +
        `put in ${Date.now() - started} ms`,
    );
  }, 300_000);

  afterAll(async () => {
    sdk?.destroy();
    direct?.target.destroy();
    direct?.source.destroy();
    await gw?.close();
    // 5,000 local files: not left behind in the temp dir.
    if (clients !== undefined) await rm(clients.dir, { recursive: true, force: true });
  });

  it("the key set is what the test claims: 5,000 keys, 40/30/30, one-sided runs over 1,000", () => {
    expect(placed.size).toBe(5000);
    expect([of("both").length, of("target").length, of("source").length]).toEqual([
      2000, 1500, 1500,
    ]);
    for (const key of placed.keys()) {
      expect(key).toMatch(/^([a-z0-9_-]+\/)*[a-z0-9][a-z0-9_-]*\.[a-z]+$/);
    }
    expect(of("source").filter((k) => k.startsWith("archive/")).length).toBeGreaterThan(1000);
    expect(of("target").filter((k) => k.startsWith("new/")).length).toBeGreaterThan(1000);
  });

  it("aws s3 ls --recursive lists the union in order, with the target's size for keys on both sides", async () => {
    const out = await clients.aws("s3", "ls", "--recursive", `s3://${bucket}/`);
    const listed = out
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const m = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+) (\S+)$/.exec(l);
        return m === null ? `unparsed: ${l}` : `${m[2]} ${m[1]}`;
      });
    expect(listed).toEqual(lines(union));
  }, 120_000);

  it("rclone lsf -R --files-only lists the union (directory walk and --fast-list)", async () => {
    for (const mode of [[], ["--fast-list"]]) {
      const out = await clients.rclone(
        "lsf",
        "-R",
        "--files-only",
        "--format",
        "ps",
        "--separator",
        " ",
        ...mode,
        `gw:${bucket}`,
      );
      // rclone prints a directory walk in its own order: compare sorted, duplicates included.
      const listed = out
        .split("\n")
        .filter((l) => l !== "")
        .sort((a, b) => byteOrder(a.split(" ")[0] ?? "", b.split(" ")[0] ?? ""));
      expect(listed, `rclone lsf ${mode.join(" ")}`).toEqual(lines(union));
    }
  }, 120_000);

  it("s3cmd ls --recursive lists the union in order", async () => {
    const out = await clients.s3cmd("ls", "--recursive", `s3://${bucket}/`);
    const listed = out
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const m = new RegExp(
          `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d +(\\d+) +s3://${bucket}/(\\S+)$`,
        ).exec(l);
        return m === null ? `unparsed: ${l}` : `${m[2]} ${m[1]}`;
      });
    expect(listed).toEqual(lines(union));
  }, 120_000);

  it("aws s3 sync --delete down, a no-op sync up, rclone check, then a real upward sync with deletes", async () => {
    const local = join(clients.dir, "local");
    const bucketUrl = `s3://${bucket}`;
    const sync = async (from: string, to: string): Promise<ReturnType<typeof syncLines>> =>
      syncLines(
        await clients.aws("s3", "sync", "--delete", "--no-progress", from, to),
        bucket,
        local,
      );
    // Upper-case names: no generated key has one.
    const stale = ["STALE.txt", "a/b/STALE.txt"];
    await mkdir(join(local, "a", "b"), { recursive: true });
    for (const name of stale) await writeFile(join(local, name), "stale");

    // Down: every key of the union downloaded once, the stale local files deleted.
    const down = await sync(bucketUrl, local);
    expect(down.other).toEqual([]);
    expect(down.delete).toEqual([...stale].sort(byteOrder));
    expect(down.download).toEqual(lines(union).map((l) => l.split(" ")[0]));
    expect(await localTree(local)).toEqual(lines(union));

    // Up from that copy: nothing to upload, nothing to delete, the bucket unchanged.
    const noop = await sync(local, bucketUrl);
    expect(noop).toEqual({ download: [], upload: [], delete: [], other: [] });
    expect(await listAll(sdk, bucket)).toEqual(lines(union));

    // rclone check compares both listings by size: it passes, and fails on one difference.
    const check = (): ReturnType<typeof runTool> =>
      runTool(
        "rclone",
        [...clients.rcloneArgs, "check", "--size-only", local, `gw:${bucket}`],
        clients.rcloneEnv,
      );
    const passed = await check();
    expect(passed.code, passed.stderr).toBe(0);
    expect(passed.stderr).toContain("0 differences found");
    expect(passed.stderr).toContain(`${union.size} matching files`);
    await writeFile(join(local, "EXTRA.txt"), "extra");
    const extra = await check();
    expect(extra.code, extra.stderr).not.toBe(0);
    expect(extra.stderr).toMatch(/EXTRA\.txt: file not in/i);
    expect(extra.stderr).toContain("1 differences found");
    await rm(join(local, "EXTRA.txt"));
    // A key on both sides whose local copy has the source's size instead of the target's.
    const resized = rng.pick(of("both"));
    const resizedPath = join(local, resized);
    const before = await stat(resizedPath);
    await writeFile(resizedPath, Buffer.alloc(placed.get(resized)?.source ?? 0, 0x73));
    const sizes = await check();
    expect(sizes.code, sizes.stderr).not.toBe(0);
    expect(sizes.stderr).toContain(`${resized}: sizes differ`);
    expect(sizes.stderr).toContain("1 differences found");
    // Back to the downloaded bytes and time, so the next sync sees no change there.
    await writeFile(resizedPath, Buffer.alloc(union.get(resized) ?? 0, 0x74));
    await utimes(resizedPath, before.atime, before.mtime);
    expect(await localTree(local)).toEqual(lines(union));

    // A real upward sync: new files, changed sizes, and files deleted of each kind.
    const pickN = (keys: string[], n: number): string[] => {
      const left = keys.filter((k) => k !== resized);
      return Array.from({ length: n }, () => left.splice(rng.int(left.length), 1)[0] as string);
    };
    const deleted = [...pickN(of("both"), 3), ...pickN(of("target"), 3), ...pickN(of("source"), 3)];
    const changed = [
      ...pickN(
        of("source").filter((k) => !deleted.includes(k)),
        2,
      ),
      ...pickN(
        of("both").filter((k) => !deleted.includes(k)),
        1,
      ),
    ];
    const added = [
      "ADDED.txt",
      "a/ADDED.txt",
      "a/b/c/ADDED.txt",
      "new/ADDED.txt",
      "fresh/x/ADDED.txt",
    ];
    const expected = new Map(union);
    for (const key of deleted) {
      await rm(join(local, key));
      expected.delete(key);
    }
    for (const [i, key] of changed.entries()) {
      await writeFile(join(local, key), Buffer.alloc(200 + i, 0x75));
      expected.set(key, 200 + i);
    }
    for (const [i, key] of added.entries()) {
      await mkdir(join(local, key, ".."), { recursive: true });
      await writeFile(join(local, key), Buffer.alloc(300 + i, 0x75));
      expected.set(key, 300 + i);
    }
    console.log(
      `gateway listing clients: sync up deletes ${deleted.join(", ")}; changes ${changed.join(", ")}`,
    );
    const up = await sync(local, bucketUrl);
    expect(up.other).toEqual([]);
    expect(up.download).toEqual([]);
    expect(up.upload).toEqual([...changed, ...added].sort(byteOrder));
    expect(up.delete).toEqual([...deleted].sort(byteOrder));

    // The bucket is now exactly the local tree.
    expect(await localTree(local)).toEqual(lines(expected));
    expect(await listAll(sdk, bucket)).toEqual(lines(expected));
    for (const key of deleted) expect(await exists(sdk, bucket, key), key).toBe(false);
    // Migrate mode writes to the target and deletes on both sides: the backends, listed directly.
    const onTarget = keysOn("target");
    const onSource = keysOn("source");
    for (const key of deleted) {
      onTarget.delete(key);
      onSource.delete(key);
    }
    for (const key of [...changed, ...added]) onTarget.set(key, expected.get(key) as number);
    expect(await listAll(direct.target, bucket)).toEqual(lines(onTarget));
    expect(await listAll(direct.source, sourceBucket)).toEqual(lines(onSource));

    // From the clients' side: rclone finds no difference and a downward sync has nothing to do
    // (a deleted key that came back would be downloaded again).
    const after = await check();
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toContain(`${expected.size} matching files`);
    const again = await sync(bucketUrl, local);
    expect(again).toEqual({ download: [], upload: [], delete: [], other: [] });
  }, 600_000);
});
