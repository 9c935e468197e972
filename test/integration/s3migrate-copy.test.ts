// s3migrate against the rig's real servers: a full copy of a mixed set is byte-identical with
// ETags (multipart included), metadata and tags; skip(up), skip(dn), exist; the progress line.

import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, inject, it } from "vitest";
import { writeListFile } from "../../s3find/list-file.js";
import { compareKeys } from "../../s3/key-order.js";
import type { RigServer } from "../rig/types.js";
import {
  baseArgs,
  bucketName,
  createBucket,
  put,
  runCli,
  sdk,
  secretEnv,
  summaries,
  tempDir,
  bucketPair,
} from "./s3migrate-helpers.js";

const rig = inject("rig");

const MiB = 1024 * 1024;

async function body(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(
    await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

interface Fixture {
  key: string;
  data: Buffer;
  parts?: number[];
  meta?: boolean;
  tags?: boolean;
}

function fixtures(withNewline: boolean): Fixture[] {
  const list: Fixture[] = [
    { key: "empty", data: Buffer.alloc(0) },
    { key: "one-byte", data: Buffer.from("x") },
    { key: "five-mib-plus-one", data: randomBytes(5 * MiB + 1), meta: true, tags: true },
    // 40 MiB in parts of 16, 16 and 8 MiB: an uneven last part.
    {
      key: "big/multipart.bin",
      data: randomBytes(40 * MiB),
      parts: [16 * MiB, 16 * MiB, 8 * MiB],
      meta: true,
      tags: true,
    },
    { key: "ünïcödé/straße café.txt", data: Buffer.from("unicode"), meta: true },
    { key: "space and+plus", data: Buffer.from("plus") },
    { key: "dir/", data: Buffer.alloc(0) },
    { key: "dir/file", data: Buffer.from("in dir") },
  ];
  if (withNewline) list.push({ key: "new\nline", data: Buffer.from("newline") });
  return list;
}

const META = {
  ContentType: "text/x-test; charset=utf-8",
  CacheControl: "max-age=60",
  ContentDisposition: 'attachment; filename="t.txt"',
  ContentLanguage: "fr",
  ContentEncoding: "identity",
  Expires: new Date("2030-01-02T03:04:05Z"),
  Metadata: { colour: "blue", "two-words": "a b" },
};

async function seed(client: S3Client, bucket: string, f: Fixture): Promise<void> {
  const extra = f.meta ? META : {};
  const Tagging = f.tags ? "project=alpha&owner=ops%20team" : undefined;
  if (!f.parts) {
    await put(client, { Bucket: bucket, Key: f.key, Body: f.data, Tagging, ...extra });
    return;
  }
  const { UploadId } = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: f.key, Tagging, ...extra }),
  );
  const done = [];
  let at = 0;
  for (const [i, size] of f.parts.entries()) {
    const r = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: f.key,
        UploadId,
        PartNumber: i + 1,
        Body: f.data.subarray(at, at + size),
      }),
    );
    done.push({ PartNumber: i + 1, ETag: r.ETag });
    at += size;
  }
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: f.key,
      UploadId,
      MultipartUpload: { Parts: done },
    }),
  );
}

async function fullCopy(source: RigServer, withNewline: boolean): Promise<void> {
  const src = sdk(source);
  const dst = sdk(rig.minio);
  const srcBucket = bucketName("s3m-src");
  const destBucket = bucketName("s3m-dst");
  await createBucket(src, srcBucket);
  await createBucket(dst, destBucket);
  const set = fixtures(withNewline);
  for (const f of set) await seed(src, srcBucket, f);

  const srcFolder = await tempDir();
  const destFolder = await tempDir();
  // Two list files, each sorted, overlapping on one key: the merge dedupes.
  const keys = set.map((f) => f.key).sort(compareKeys);
  await writeListFile(
    join(srcFolder, "keys-000001.txt"),
    keys.filter((_, i) => i % 2 === 0),
  );
  await writeListFile(
    join(srcFolder, "keys-000002.txt"),
    [...keys.filter((_, i) => i % 2 === 1), keys[0] as string].sort(compareKeys),
  );

  const res = await runCli(
    [
      ...baseArgs({ src: source, srcBucket, dest: rig.minio, destBucket, srcFolder, destFolder }),
      "--json",
      "--threads",
      "4",
    ],
    secretEnv(source, rig.minio),
  );
  expect(res.stderr).not.toContain(source.secretAccessKey);
  expect(
    res.code,
    res.stderr + res.stdout + (await readFile(join(destFolder, "failed.log"), "utf8")),
  ).toBe(0);
  const [summary] = summaries(res.stdout);
  expect(summary?.counters).toMatchObject({
    obj: set.length,
    work: set.length,
    upld: set.length,
    fail: 0,
  });

  for (const f of set) {
    const got = await body(dst, destBucket, f.key);
    expect(createHash("sha256").update(got).digest("hex"), f.key).toBe(
      createHash("sha256").update(f.data).digest("hex"),
    );
    const hs = await src.send(new HeadObjectCommand({ Bucket: srcBucket, Key: f.key }));
    const hd = await dst.send(new HeadObjectCommand({ Bucket: destBucket, Key: f.key }));
    expect(hd.ETag, `ETag of ${f.key}`).toBe(hs.ETag);
    expect(hd.ContentLength).toBe(f.data.length);
    if (f.meta) {
      expect(hd.ContentType).toBe(META.ContentType);
      expect(hd.CacheControl).toBe(META.CacheControl);
      expect(hd.ContentDisposition).toBe(META.ContentDisposition);
      expect(hd.ContentLanguage).toBe(META.ContentLanguage);
      expect(hd.ContentEncoding).toBe(hs.ContentEncoding);
      expect(hd.Expires?.toISOString()).toBe(META.Expires.toISOString());
      expect(hd.Metadata).toEqual(META.Metadata);
    }
    if (f.tags) {
      const ts = await src.send(new GetObjectTaggingCommand({ Bucket: srcBucket, Key: f.key }));
      const td = await dst.send(new GetObjectTaggingCommand({ Bucket: destBucket, Key: f.key }));
      const norm = (t: typeof ts.TagSet) => (t ?? []).map((x) => `${x.Key}=${x.Value}`).sort();
      expect(norm(td.TagSet)).toEqual(norm(ts.TagSet));
      expect(norm(td.TagSet)).toEqual(["owner=ops team", "project=alpha"]);
    }
  }
  // The multipart object kept its multipart ETag (same part sizes as the source).
  const big = await dst.send(
    new HeadObjectCommand({ Bucket: destBucket, Key: "big/multipart.bin" }),
  );
  expect(big.ETag).toMatch(/-3"$/);
  // migrate.log: every key, sorted, in s3find's escaped format.
  const log = (await readFile(join(destFolder, "migrate.log"), "utf8")).split("\n").filter(Boolean);
  expect(log).toEqual(keys.map((k) => k.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")));
}

describe("s3migrate full copy", () => {
  it("copies a mixed set MinIO → MinIO byte-identical with ETags, metadata and tags", async () => {
    await fullCopy(rig.minio2, true);
  });

  it("copies a mixed set Versity Gateway (posix) → MinIO", async () => {
    // A posix backend cannot hold a key with a newline in a file name portably; the rest applies.
    await fullCopy(rig.versitygw, false);
  });
});

describe("s3migrate skips", () => {
  it("never overwrites a newer target object, skips vanished keys and dest-folder keys, and the progress line shows the real counts", async () => {
    const { src, dst, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
    for (const k of ["a", "b", "c", "d"])
      await put(src, { Bucket: srcBucket, Key: k, Body: Buffer.from(`source ${k}`) });
    await put(dst, { Bucket: destBucket, Key: "b", Body: Buffer.from("newer on target") });
    const srcFolder = await tempDir();
    const destFolder = await tempDir();
    await writeListFile(join(srcFolder, "keys-000001.txt"), ["a", "b", "c", "d", "ghost"]);
    await writeListFile(join(destFolder, "keys-000001.txt"), ["c", "zzz"]);

    const res = await runCli(
      [
        ...baseArgs({
          src: rig.minio2,
          srcBucket,
          dest: rig.minio,
          destBucket,
          srcFolder,
          destFolder,
        }),
        "--threads",
        "2",
      ],
      secretEnv(rig.minio2, rig.minio),
    );
    expect(res.code, res.stderr).toBe(0);
    expect((await body(dst, destBucket, "b")).toString()).toBe("newer on target");
    expect((await body(dst, destBucket, "a")).toString()).toBe("source a");
    await expect(body(dst, destBucket, "c")).rejects.toThrow();

    const lines = res.stderr.split("\n").filter((l) => l.startsWith("obj="));
    const last = lines[lines.length - 1] as string;
    const m =
      /^obj=(\d+) :: ign=(\d+) exist=(\d+) work=(\d+) \[(\d+|\?)% ~[^\]]+\] :: fail=(\d+) skip\(dn=(\d+) up=(\d+)\) dnld=(\d+) \([\d.]+\/s\) dl\.byt=\S+ \(\S+\/s\) upld=(\d+) \([\d.]+\/s\) ul\.byt=(\S+) \(\S+\/s\)$/.exec(
        last,
      );
    expect(m, last).not.toBeNull();
    const [, obj, ign, exist, work, pct, fail, dn, up, _dnld, upld, ulByt] = m as RegExpExecArray;
    expect({ obj, ign, exist, work, pct, fail, dn, up, upld, ulByt }).toEqual({
      obj: "5",
      ign: "0",
      exist: "1",
      work: "4",
      pct: "100",
      fail: "0",
      dn: "1",
      up: "1",
      upld: "2",
      ulByt: "16B",
    });
  });
});
