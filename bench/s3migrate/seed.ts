/**
 * Source data and target clean-up for the s3migrate benchmark, through our own S3 client
 * (s3/client.ts): many small objects, large multipart objects (16 MiB parts, as most upload
 * tools leave them), and emptying a target bucket between tools.
 */
import { createHash, randomBytes } from "node:crypto";
import { S3Client, readBodyLimited } from "../../s3/client.js";
import {
  MAX_DELETE_OBJECTS,
  buildCompleteMultipartUpload,
  buildDeleteRequest,
  parseInitiateMultipartUploadResult,
} from "../../s3/xml-documents.js";
import { parseListBucketResultV2 } from "../../s3/xml-list.js";

/** One listed object: its key, size and ETag. */
export interface Listed {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once. */
export async function forEachLimited(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Creates a bucket; an existing one of ours is fine. */
export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  const res = await client.request({
    method: "PUT",
    bucket,
    okStatuses: [409],
    signal: AbortSignal.timeout(30_000),
  });
  res.body.resume();
}

/** Writes `count` objects of `size` random bytes (distinct content each) named `small/NNNNNN`. */
export async function seedSmall(
  client: S3Client,
  bucket: string,
  options: { count: number; size: number },
): Promise<void> {
  const pool = randomBytes(options.size + 4096);
  await forEachLimited(options.count, 32, async (i) => {
    // A sliding window over one random pool: distinct bytes per object without 20k buffers.
    const body = pool.subarray(i % 4096, (i % 4096) + options.size);
    const res = await client.request({
      method: "PUT",
      bucket,
      key: `small/${String(i).padStart(6, "0")}`,
      headers: { "content-type": "application/octet-stream", "x-amz-meta-bench": "small" },
      body,
      signal: AbortSignal.timeout(60_000),
    });
    res.body.resume();
  });
}

/**
 * Writes `count` objects of `size` bytes named `<prefix>NN`, each by a multipart upload of
 * `partSize` parts. Part bodies are one random buffer with the part and object number stamped
 * in, so no two parts are equal.
 */
export async function seedLarge(
  client: S3Client,
  bucket: string,
  options: { prefix: string; count: number; size: number; partSize: number },
): Promise<void> {
  const base = randomBytes(options.partSize);
  await forEachLimited(options.count, 4, async (i) => {
    const key = `${options.prefix}${String(i).padStart(2, "0")}`;
    const created = await client.request({
      method: "POST",
      bucket,
      key,
      query: { uploads: "" },
      headers: { "content-type": "application/octet-stream", "x-amz-meta-bench": "large" },
      signal: AbortSignal.timeout(60_000),
    });
    const { uploadId } = parseInitiateMultipartUploadResult(
      await readBodyLimited(created.body, 1024 * 1024),
    );
    const parts: { partNumber: number; etag: string }[] = [];
    const partCount = Math.ceil(options.size / options.partSize);
    for (let n = 1; n <= partCount; n++) {
      const len = Math.min(options.partSize, options.size - (n - 1) * options.partSize);
      const body = Buffer.from(base.subarray(0, len));
      body.writeUInt32BE(n, 0);
      body.writeUInt32BE(i, 4);
      const res = await client.request({
        method: "PUT",
        bucket,
        key,
        query: { partNumber: String(n), uploadId },
        body,
        payloadHash: createHash("sha256").update(body).digest("hex"),
        signal: AbortSignal.timeout(300_000),
      });
      res.body.resume();
      parts.push({ partNumber: n, etag: res.headers["etag"] ?? "" });
    }
    const done = await client.request({
      method: "POST",
      bucket,
      key,
      query: { uploadId },
      headers: { "content-type": "application/xml" },
      body: buildCompleteMultipartUpload({ parts }),
      signal: AbortSignal.timeout(300_000),
    });
    await readBodyLimited(done.body, 1024 * 1024);
  });
}

/** Lists every object of a bucket (ListObjectsV2 pages). */
export async function listAll(client: S3Client, bucket: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  for (;;) {
    const res = await client.request({
      method: "GET",
      bucket,
      query: { "list-type": "2", "max-keys": "1000", "continuation-token": token },
      signal: AbortSignal.timeout(120_000),
    });
    const page = parseListBucketResultV2(await readBodyLimited(res.body, 16 * 1024 * 1024));
    for (const c of page.contents) out.push({ key: c.key, size: c.size, etag: c.etag });
    if (!page.isTruncated || !page.nextContinuationToken) return out;
    token = page.nextContinuationToken;
  }
}

/** Deletes every object of a bucket and aborts its unfinished multipart uploads. */
export async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const keys = (await listAll(client, bucket)).map((o) => o.key);
    if (keys.length === 0) break;
    for (let i = 0; i < keys.length; i += MAX_DELETE_OBJECTS) {
      const objects = keys.slice(i, i + MAX_DELETE_OBJECTS).map((key) => ({ key }));
      const body = Buffer.from(buildDeleteRequest({ quiet: true, objects }), "utf8");
      const res = await client.request({
        method: "POST",
        bucket,
        query: { delete: "" },
        headers: {
          "content-type": "application/xml",
          "content-md5": createHash("md5").update(body).digest("base64"),
        },
        body,
        signal: AbortSignal.timeout(120_000),
      });
      await readBodyLimited(res.body, 16 * 1024 * 1024);
    }
  }
  const res = await client.request({
    method: "GET",
    bucket,
    query: { uploads: "" },
    signal: AbortSignal.timeout(60_000),
  });
  const text = (await readBodyLimited(res.body, 16 * 1024 * 1024)).toString("utf8");
  for (const m of text.matchAll(
    /<Upload>[\s\S]*?<Key>([^<]*)<\/Key>[\s\S]*?<UploadId>([^<]*)<\/UploadId>/g,
  )) {
    const abort = await client.request({
      method: "DELETE",
      bucket,
      key: unescapeXml(m[1] ?? ""),
      query: { uploadId: m[2] ?? "" },
      okStatuses: [404],
      signal: AbortSignal.timeout(60_000),
    });
    abort.body.resume();
  }
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
