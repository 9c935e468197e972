import { randomBytes, createHash } from "node:crypto";
import { Readable } from "node:stream";
import { buffer, text } from "node:stream/consumers";
import { inspect } from "node:util";
import { describe, it, expect, inject, afterAll } from "vitest";
import { S3Client, S3ClientError } from "../../s3/client.js";
import {
  abortMultipartUpload,
  completeMultipartUpload,
  copyObject,
  createBucket,
  createMultipartUpload,
  deleteBucket,
  deleteObject,
  deleteObjects,
  getObject,
  getObjectTagging,
  headBucket,
  headObject,
  listBuckets,
  listMultipartUploads,
  listObjectsV2,
  listObjectsV2Page,
  listParts,
  putObject,
  putObjectTagging,
  uploadPart,
} from "../../s3/client-operations.js";
import { compareKeys } from "../../s3/key-order.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const servers: Array<[string, RigServer]> = [
  ["minio", rig.minio],
  ["versitygw", rig.versitygw],
];

function clientFor(server: RigServer, secret = server.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: secret },
    region: server.region,
  });
}

function uniqueBucket(label: string): string {
  return `h3-${label}-${randomBytes(5).toString("hex")}`;
}

async function allKeys(client: S3Client, bucket: string, maxKeys?: number): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectsV2(client, { bucket, maxKeys })) {
    for (const c of page.contents) keys.push(c.key);
  }
  return keys;
}

async function expectS3Error(promise: Promise<unknown>, code: string): Promise<S3ClientError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(S3ClientError);
  expect((err as S3ClientError).code).toBe(code);
  return err as S3ClientError;
}

/** A 1,024-byte key: four 250-byte segments (a POSIX name is at most 255 bytes) and a tail. */
const LONG_KEY = ("é".repeat(100) + "x".repeat(49) + "/").repeat(4) + "y".repeat(24);

/** Keys that stress signing and listing; NFC and NFD are distinct keys. */
const TRICKY_KEYS = [
  "with space",
  "plus+sign",
  "percent%20sign",
  "percent%",
  "'()!*",
  "caf\u00e9",
  "cafe\u0301",
  "\u{1F600}/emoji",
  "\uFFFD",
  "tilde~and=equals&amp",
  "0001",
];

for (const [name, server] of servers) {
  describe(`S3Client against ${name}`, () => {
    const client = clientFor(server);
    const created: string[] = [];

    async function newBucket(label: string): Promise<string> {
      const bucket = uniqueBucket(label);
      await createBucket(client, { bucket });
      created.push(bucket);
      return bucket;
    }

    afterAll(async () => {
      for (const bucket of created) {
        for (;;) {
          const page = await listObjectsV2Page(client, { bucket });
          if (page.contents.length === 0) break;
          await deleteObjects(client, {
            bucket,
            objects: page.contents.map((c) => ({ key: c.key })),
          });
        }
        const uploads = await listMultipartUploads(client, { bucket });
        for (const u of uploads.uploads) {
          await abortMultipartUpload(client, { bucket, key: u.key, uploadId: u.uploadId });
        }
        await deleteBucket(client, { bucket });
      }
      await client.close();
    });

    it("creates, heads and lists a bucket", async () => {
      const bucket = await newBucket("bucket");
      await expect(headBucket(client, { bucket })).resolves.toBeDefined();
      const all = await listBuckets(client);
      expect(all.buckets.map((b) => b.name)).toContain(bucket);
    });

    it("puts with metadata, gets a range, heads", async () => {
      const bucket = await newBucket("object");
      const body = Buffer.from("0123456789abcdef");
      const put = await putObject(client, {
        bucket,
        key: "dir/file.txt",
        body,
        metadata: {
          contentType: "text/plain",
          cacheControl: "max-age=60",
          contentDisposition: 'attachment; filename="f.txt"',
          contentLanguage: "fr",
          userMetadata: { color: "blue", "x-Mixed": "0001" },
        },
      });
      expect(put.etag).toBe(`"${createHash("md5").update(body).digest("hex")}"`);

      const ranged = await getObject(client, { bucket, key: "dir/file.txt", range: "bytes=2-5" });
      expect(ranged.status).toBe(206);
      expect(ranged.contentRange).toBe("bytes 2-5/16");
      expect(await text(ranged.body)).toBe("2345");

      const open = await getObject(client, { bucket, key: "dir/file.txt", range: { start: 14 } });
      expect(await text(open.body)).toBe("ef");

      const head = await headObject(client, { bucket, key: "dir/file.txt" });
      expect(head.contentLength).toBe(16);
      expect(head.etag).toBe(put.etag);
      expect(head.metadata.contentType).toBe("text/plain");
      expect(head.metadata.cacheControl).toBe("max-age=60");
      expect(head.metadata.contentDisposition).toBe('attachment; filename="f.txt"');
      expect(head.metadata.contentLanguage).toBe("fr");
      expect(head.metadata.userMetadata).toEqual({ color: "blue", "x-mixed": "0001" });

      const notModified = await getObject(client, {
        bucket,
        key: "dir/file.txt",
        ifNoneMatch: put.etag,
      });
      expect(notModified.status).toBe(304);
      notModified.body.resume();
    });

    it("puts a stream body with a content length, and a zero-byte object", async () => {
      const bucket = await newBucket("stream");
      const data = randomBytes(256 * 1024);
      await putObject(client, {
        bucket,
        key: "streamed",
        body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
        contentLength: data.length,
      });
      const got = await getObject(client, { bucket, key: "streamed" });
      expect((await buffer(got.body)).equals(data)).toBe(true);
      await putObject(client, { bucket, key: "empty", body: Buffer.alloc(0) });
      expect((await headObject(client, { bucket, key: "empty" })).contentLength).toBe(0);
    });

    it("lists v2 with prefix, delimiter and small pages, in UTF-8 byte order", async () => {
      const bucket = await newBucket("list");
      const keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d", "\uFFFD", "\u{1F600}"];
      for (const key of keys) await putObject(client, { bucket, key, body: key });

      expect(await allKeys(client, bucket, 2)).toEqual([...keys].sort(compareKeys));
      // The byte order puts U+FFFD before U+1F600, unlike JavaScript's default sort.
      expect([...keys].sort(compareKeys).slice(-2)).toEqual(["\uFFFD", "\u{1F600}"]);

      const root = await listObjectsV2Page(client, { bucket, delimiter: "/" });
      expect(root.commonPrefixes).toEqual(["a/", "b/"]);
      expect(root.contents.map((c) => c.key)).toEqual(["c", "d", "\uFFFD", "\u{1F600}"]);

      const underA = await listObjectsV2Page(client, { bucket, prefix: "a/", delimiter: "/" });
      expect(underA.contents.map((c) => c.key)).toEqual(["a/1", "a/2"]);
      expect(underA.commonPrefixes).toEqual(["a/b/"]);

      const pages = [];
      for await (const page of listObjectsV2(client, { bucket, prefix: "a/", maxKeys: 1 })) {
        expect(page.contents.length).toBeLessThanOrEqual(1);
        pages.push(page.contents.map((c) => c.key));
      }
      expect(pages.flat()).toEqual(["a/1", "a/2", "a/b/3"]);
      expect(pages.length).toBeGreaterThanOrEqual(3);

      const after = await listObjectsV2Page(client, { bucket, startAfter: "b/1" });
      expect(after.contents.map((c) => c.key)).toEqual(["c", "d", "\uFFFD", "\u{1F600}"]);
    });

    it("multipart: 3 parts, list parts and uploads, complete with an ETag ending -3", async () => {
      const bucket = await newBucket("mpu");
      const key = "big object";
      const part = Buffer.alloc(5 * 1024 * 1024, 7);
      const bodies = [part, part, Buffer.from("tail")];
      const { uploadId } = await createMultipartUpload(client, {
        bucket,
        key,
        metadata: { contentType: "application/x-test", userMetadata: { origin: "mpu" } },
      });
      const parts = [];
      for (const [i, body] of bodies.entries()) {
        const { etag } = await uploadPart(client, {
          bucket,
          key,
          uploadId,
          partNumber: i + 1,
          body,
        });
        expect(etag).toBe(`"${createHash("md5").update(body).digest("hex")}"`);
        parts.push({ partNumber: i + 1, etag });
      }
      const uploads = await listMultipartUploads(client, { bucket });
      expect(uploads.uploads.map((u) => [u.key, u.uploadId])).toEqual([[key, uploadId]]);
      const listed = await listParts(client, { bucket, key, uploadId });
      expect(listed.parts.map((p) => [p.partNumber, p.size])).toEqual([
        [1, part.length],
        [2, part.length],
        [3, 4],
      ]);

      const done = await completeMultipartUpload(client, { bucket, key, uploadId, parts });
      const md5s = Buffer.concat(bodies.map((b) => createHash("md5").update(b).digest()));
      expect(done.etag).toBe(`"${createHash("md5").update(md5s).digest("hex")}-3"`);

      const head = await headObject(client, { bucket, key, partNumber: 1 });
      expect(head.partsCount).toBe(3);
      expect(head.contentLength).toBe(part.length);
      const whole = await headObject(client, { bucket, key });
      expect(whole.contentLength).toBe(2 * part.length + 4);
      expect(whole.metadata.userMetadata).toEqual({ origin: "mpu" });
      const tail = await getObject(client, { bucket, key, range: "bytes=-4" });
      expect(await text(tail.body)).toBe("tail");
    });

    it("copies an object server-side, keeping or replacing metadata", async () => {
      const bucket = await newBucket("copy");
      const source = "src dir/a+b%c é";
      await putObject(client, {
        bucket,
        key: source,
        body: "copied bytes",
        metadata: { contentType: "text/x-src", userMetadata: { from: "source" } },
      });
      const kept = await copyObject(client, {
        bucket,
        key: "kept",
        sourceBucket: bucket,
        sourceKey: source,
      });
      expect(kept.etag).toMatch(/^"[0-9a-f]{32}"$/);
      const keptHead = await headObject(client, { bucket, key: "kept" });
      expect(keptHead.metadata.contentType).toBe("text/x-src");
      expect(keptHead.metadata.userMetadata).toEqual({ from: "source" });
      expect(await text((await getObject(client, { bucket, key: "kept" })).body)).toBe(
        "copied bytes",
      );

      await copyObject(client, {
        bucket,
        key: "replaced",
        sourceBucket: bucket,
        sourceKey: source,
        metadataDirective: "REPLACE",
        metadata: { contentType: "text/x-new", userMetadata: { from: "copy" } },
      });
      const replaced = await headObject(client, { bucket, key: "replaced" });
      expect(replaced.metadata.contentType).toBe("text/x-new");
      expect(replaced.metadata.userMetadata).toEqual({ from: "copy" });
      await expectS3Error(
        copyObject(client, { bucket, key: "x", sourceBucket: bucket, sourceKey: "missing" }),
        "NoSuchKey",
      );
    });

    it("aborts a multipart upload", async () => {
      const bucket = await newBucket("abort");
      const { uploadId } = await createMultipartUpload(client, { bucket, key: "k" });
      await abortMultipartUpload(client, { bucket, key: "k", uploadId });
      await expectS3Error(listParts(client, { bucket, key: "k", uploadId }), "NoSuchUpload");
    });

    it("deletes one object and many objects", async () => {
      const bucket = await newBucket("delete");
      const keys = ["one", "two", " three ", "0001"];
      for (const key of keys) await putObject(client, { bucket, key, body: "x" });
      await deleteObject(client, { bucket, key: "one" });
      await expectS3Error(headObject(client, { bucket, key: "one" }), "NoSuchKey");
      const result = await deleteObjects(client, {
        bucket,
        objects: keys.slice(1).map((key) => ({ key })),
      });
      expect(result.errors).toEqual([]);
      expect(result.deleted).toHaveLength(3);
      expect(await allKeys(client, bucket)).toEqual([]);
    });

    it("puts and gets object tags", async () => {
      const bucket = await newBucket("tags");
      await putObject(client, {
        bucket,
        key: "t",
        body: "x",
        tagging: [{ key: "initial", value: "a b" }],
      });
      expect(await getObjectTagging(client, { bucket, key: "t" })).toEqual([
        { key: "initial", value: "a b" },
      ]);
      const tags = [
        { key: "project", value: "migration" },
        { key: "with space", value: "1+2=3" },
      ];
      await putObjectTagging(client, { bucket, key: "t", tags });
      const got = await getObjectTagging(client, { bucket, key: "t" });
      expect([...got].sort((a, b) => compareKeys(a.key, b.key))).toEqual(tags);
      expect((await headObject(client, { bucket, key: "t" })).tagCount).toBe(2);
    });

    it("round-trips awkward keys through signing, storage and listing", async () => {
      const bucket = await newBucket("keys");
      const keys = [...TRICKY_KEYS, LONG_KEY];
      expect(Buffer.byteLength(LONG_KEY)).toBe(1024);
      for (const key of keys) await putObject(client, { bucket, key, body: key });
      // NFC and NFD are two keys, both listed, in byte order.
      expect(await allKeys(client, bucket, 3)).toEqual([...keys].sort(compareKeys));
      for (const key of keys) {
        const got = await getObject(client, { bucket, key });
        expect(await text(got.body)).toBe(key);
      }
    });

    it("maps error answers: NoSuchKey, NoSuchBucket, with request ids", async () => {
      const bucket = await newBucket("errors");
      const missingKey = await expectS3Error(
        getObject(client, { bucket, key: "missing" }),
        "NoSuchKey",
      );
      expect(missingKey.status).toBe(404);
      expect(missingKey.requestId).toMatch(/\S/);
      expect(missingKey.key).toBe("missing");
      expect(missingKey.kind).toBe("response");

      const missingBucket = await expectS3Error(
        getObject(client, { bucket: uniqueBucket("absent"), key: "k" }),
        "NoSuchBucket",
      );
      expect(missingBucket.status).toBe(404);
      // HEAD answers have no body: the code comes from the status and what was asked.
      await expectS3Error(headObject(client, { bucket, key: "missing" }), "NoSuchKey");
      await expectS3Error(headBucket(client, { bucket: uniqueBucket("absent") }), "NoSuchBucket");
    });

    it("a wrong secret gives SignatureDoesNotMatch and never shows the secret", async () => {
      const secret = `wrong-${randomBytes(16).toString("hex")}`;
      const bad = clientFor(server, secret);
      try {
        const err = await expectS3Error(listBuckets(bad), "SignatureDoesNotMatch");
        expect(err.status).toBe(403);
        for (const text of [
          err.message,
          err.stack ?? "",
          inspect(err, { depth: 5 }),
          JSON.stringify(err),
        ]) {
          expect(text).not.toContain(secret);
          expect(text).not.toMatch(/StringToSign|CanonicalRequest/);
        }
      } finally {
        await bad.close();
      }
    });
  });
}

describe("server-specific key handling", () => {
  it("MinIO refuses a//b by name (the path reached it unnormalised and correctly signed)", async () => {
    const client = clientFor(rig.minio);
    const bucket = uniqueBucket("slashes");
    await createBucket(client, { bucket });
    try {
      await expectS3Error(
        putObject(client, { bucket, key: "a//b", body: "x" }),
        "XMinioInvalidObjectName",
      );
      await putObject(client, { bucket, key: "a/b", body: "single" });
      expect(await allKeys(client, bucket)).toEqual(["a/b"]);
    } finally {
      await deleteObject(client, { bucket, key: "a/b" });
      await deleteBucket(client, { bucket });
      await client.close();
    }
  });

  it("versitygw (posix) stores a//b as the file a/b: readable by either name, listed as a/b", async () => {
    const client = clientFor(rig.versitygw);
    const bucket = uniqueBucket("slashes");
    await createBucket(client, { bucket });
    try {
      await putObject(client, { bucket, key: "a//b", body: "double" });
      expect(await text((await getObject(client, { bucket, key: "a//b" })).body)).toBe("double");
      expect(await text((await getObject(client, { bucket, key: "a/b" })).body)).toBe("double");
      expect(await allKeys(client, bucket)).toEqual(["a/b"]);
    } finally {
      await deleteObject(client, { bucket, key: "a/b" });
      await deleteBucket(client, { bucket });
      await client.close();
    }
  });
});
