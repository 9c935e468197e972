// The S3 data plane end to end: @aws-sdk/client-s3 (default checksums, stream bodies) through
// the gateway over TLS (a CA made for this run) to the rig's real servers, in ready and forward
// mode, in both directions (target MinIO / source versitygw, and target versitygw / source
// MinIO). After every write a direct check on both backends proves the data is on the side the
// mode says, and only there.

import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  directClient,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
  bytesOf,
  exists,
} from "../helpers/gateway-harness.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("proxy-user");

function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return buf;
}

function streamOf(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024);
    })(),
  );
}

function md5(data: Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

const PAIRS: { name: string; target: () => RigServer; source: () => RigServer }[] = [
  { name: "target MinIO, source versitygw", target: () => rig.minio, source: () => rig.versitygw },
  { name: "target versitygw, source MinIO", target: () => rig.versitygw, source: () => rig.minio2 },
];

describe.each(PAIRS)("gateway data plane ($name)", ({ target, source }) => {
  let certs: TestCerts;
  let gw: TestGateway;
  let client: S3Client;
  let direct: { target: S3Client; source: S3Client };
  let tlsAgent: Agent;
  const run = randomBytes(4).toString("hex");

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: target().endpoint, server: target() },
      credentials: [USER],
    });
    client = gatewayClient(gw, certs, USER, { region: target().region });
    direct = { target: directClient(target()), source: directClient(source()) };
    tlsAgent = new Agent({ connect: { ca: certs.ca } });
  });

  afterAll(async () => {
    await gw?.close();
    await tlsAgent?.close();
  });

  describe.each(["ready", "forward"] as const)("in %s mode", (mode) => {
    const bucket = `gwp-${mode}-${run}`;
    const sourceBucket = `${bucket}-src`;
    /** Where the mode says data lives, and where it must not appear. */
    let home: { client: S3Client; bucket: string };
    let other: { client: S3Client; bucket: string };
    const homeServer = (): RigServer => (mode === "forward" ? source() : target());

    beforeAll(async () => {
      await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
      await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
      const s = source();
      await gw.gateway.store.attach(
        {
          bucket,
          sourceUrl: s.endpoint,
          sourceBucket,
          sourceAccessKey: s.accessKeyId,
          sourceSecretKey: s.secretAccessKey,
          sourceRegion: s.region,
          sourceCa: "system",
        },
        { by: "test" },
      );
      if (mode === "forward") {
        await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
      }
      const t = { client: direct.target, bucket };
      const src = { client: direct.source, bucket: sourceBucket };
      home = mode === "forward" ? src : t;
      other = mode === "forward" ? t : src;
    });

    async function onHomeOnly(key: string): Promise<void> {
      expect(await exists(home.client, home.bucket, key)).toBe(true);
      expect(await exists(other.client, other.bucket, key)).toBe(false);
    }

    it("puts small, empty, stream and awkward-key objects; head and get (full, range, conditional)", async () => {
      const small = pattern(10_000, 1);
      const put = await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "small.bin",
          Body: small,
          ContentType: "application/x-test",
          Metadata: { colour: "blue" },
        }),
      );
      expect(put.ETag).toBe(`"${md5(small)}"`);
      await onHomeOnly("small.bin");

      await client.send(new PutObjectCommand({ Bucket: bucket, Key: "empty", Body: "" }));
      await onHomeOnly("empty");
      const empty = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "empty" }));
      expect((await bytesOf(empty.Body)).length).toBe(0);

      // A stream body: the SDK sends aws-chunked with a CRC32 trailer; it must arrive decoded.
      const streamed = pattern(3 * 1024 * 1024 + 5, 2);
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "dir/stream one+two",
          Body: streamOf(streamed),
          ContentLength: streamed.length,
        }),
      );
      await onHomeOnly("dir/stream one+two");
      const back = await direct[mode === "forward" ? "source" : "target"].send(
        new GetObjectCommand({ Bucket: home.bucket, Key: "dir/stream one+two" }),
      );
      expect(md5(await bytesOf(back.Body))).toBe(md5(streamed));
      expect(back.ContentEncoding ?? "").not.toContain("aws-chunked");

      // 1,024 bytes in path segments a file-system backend can store (≤ 255 bytes each).
      const longKey = `long/${"k".repeat(200)}/`.repeat(5).slice(0, 1024);
      expect(Buffer.byteLength(longKey)).toBe(1024);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: longKey, Body: "x" }));
      await onHomeOnly(longKey);

      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "small.bin" }));
      expect(head.ContentLength).toBe(small.length);
      expect(head.ContentType).toBe("application/x-test");
      expect(head.Metadata).toEqual({ colour: "blue" });
      expect(head.$metadata.requestId).toMatch(/^[0-9A-F]{16}$/);

      const full = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "small.bin" }));
      expect((await bytesOf(full.Body)).equals(small)).toBe(true);
      const range = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: "small.bin", Range: "bytes=100-199" }),
      );
      expect(range.$metadata.httpStatusCode).toBe(206);
      expect(range.ContentRange).toBe(`bytes 100-199/${small.length}`);
      expect((await bytesOf(range.Body)).equals(small.subarray(100, 200))).toBe(true);

      // Conditional GETs are evaluated by the backend: the gateway's answer must be the one the
      // home backend gives directly (versitygw ignores some conditions), and MinIO's is S3's.
      const status = async (c: S3Client, cmd: GetObjectCommand): Promise<number | undefined> => {
        try {
          const r = await c.send(cmd);
          await bytesOf(r.Body);
          return r.$metadata.httpStatusCode;
        } catch (err) {
          return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        }
      };
      const conditions = [
        { IfNoneMatch: put.ETag },
        { IfMatch: '"0123"' },
        { IfMatch: put.ETag },
        { IfModifiedSince: new Date(Date.now() + 3600_000) },
      ];
      const viaGateway: (number | undefined)[] = [];
      const viaBackend: (number | undefined)[] = [];
      for (const c of conditions) {
        viaGateway.push(
          await status(client, new GetObjectCommand({ Bucket: bucket, Key: "small.bin", ...c })),
        );
        viaBackend.push(
          await status(
            home.client,
            new GetObjectCommand({ Bucket: home.bucket, Key: "small.bin", ...c }),
          ),
        );
      }
      expect(viaGateway).toEqual(viaBackend);
      if (homeServer().kind === "minio") expect(viaGateway).toEqual([304, 412, 200, 304]);
      // A missing key is the backend's NoSuchKey, re-rendered as ours.
      await expect(
        client.send(new GetObjectCommand({ Bucket: bucket, Key: "missing" })),
      ).rejects.toMatchObject({ name: "NoSuchKey", $metadata: { httpStatusCode: 404 } });
    });

    it("uploads 20 MiB in parts with the SDK's multipart calls; the ETag is the multipart one", async () => {
      const data = pattern(20 * 1024 * 1024, 3);
      const partSize = 8 * 1024 * 1024;
      const created = await client.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: "big/mp.bin" }),
      );
      const uploadId = created.UploadId as string;
      const parts: { ETag: string; PartNumber: number }[] = [];
      const partMd5s: Buffer[] = [];
      for (let n = 1, off = 0; off < data.length; n++, off += partSize) {
        const slice = data.subarray(off, Math.min(off + partSize, data.length));
        partMd5s.push(createHash("md5").update(slice).digest());
        const out = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: "big/mp.bin",
            UploadId: uploadId,
            PartNumber: n,
            Body: streamOf(slice),
            ContentLength: slice.length,
          }),
        );
        parts.push({ ETag: out.ETag as string, PartNumber: n });
      }
      const done = await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: "big/mp.bin",
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      const expected = `"${createHash("md5").update(Buffer.concat(partMd5s)).digest("hex")}-3"`;
      expect(done.ETag).toBe(expected);
      // The object's URL as the client addressed it, never the backend's address.
      expect(done.Location).toBe(`${gw.url}/${bucket}/big/mp.bin`);
      await onHomeOnly("big/mp.bin");
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big/mp.bin" }));
      expect(md5(await bytesOf(got.Body))).toBe(md5(data));

      // An aborted upload leaves nothing.
      const aborted = await client.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: "big/aborted" }),
      );
      await client.send(
        new AbortMultipartUploadCommand({
          Bucket: bucket,
          Key: "big/aborted",
          UploadId: aborted.UploadId as string,
        }),
      );
      expect(await exists(home.client, home.bucket, "big/aborted")).toBe(false);
    });

    it("copies, tags, lists (v1, v2, prefix, delimiter, pages) and deletes (one and many)", async () => {
      for (const k of ["list/a", "list/b", "list/c/1", "list/c/2", "list/d"]) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
      }
      const copy = await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: "list/copy of a",
          CopySource: `${bucket}/list/a`,
        }),
      );
      expect(copy.CopyObjectResult?.ETag).toBe(`"${md5(Buffer.from("list/a"))}"`);
      await onHomeOnly("list/copy of a");

      await client.send(
        new PutObjectTaggingCommand({
          Bucket: bucket,
          Key: "list/a",
          Tagging: { TagSet: [{ Key: "team", Value: "storage" }] },
        }),
      );
      const tags = await client.send(
        new GetObjectTaggingCommand({ Bucket: bucket, Key: "list/a" }),
      );
      expect(tags.TagSet).toEqual([{ Key: "team", Value: "storage" }]);

      const v2 = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: "list/", Delimiter: "/" }),
      );
      expect(v2.Contents?.map((c) => c.Key)).toEqual([
        "list/a",
        "list/b",
        "list/copy of a",
        "list/d",
      ]);
      expect(v2.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["list/c/"]);
      const pages: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: "list/",
            MaxKeys: 2,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
        pages.push(...(page.Contents ?? []).map((c) => c.Key as string));
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      expect(pages).toEqual([
        "list/a",
        "list/b",
        "list/c/1",
        "list/c/2",
        "list/copy of a",
        "list/d",
      ]);
      const v1 = await client.send(
        new ListObjectsCommand({ Bucket: bucket, Prefix: "list/c/", MaxKeys: 1 }),
      );
      expect(v1.Contents?.map((c) => c.Key)).toEqual(["list/c/1"]);
      expect(v1.IsTruncated).toBe(true);

      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "list/d" }));
      expect(await exists(home.client, home.bucket, "list/d")).toBe(false);
      const multi = await client.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: [{ Key: "list/a" }, { Key: "list/b" }] },
        }),
      );
      expect(multi.Deleted?.map((d) => d.Key).sort()).toEqual(["list/a", "list/b"]);
      expect(await exists(home.client, home.bucket, "list/a")).toBe(false);
      expect(await exists(home.client, home.bucket, "list/b")).toBe(false);
      expect(await exists(home.client, home.bucket, "list/c/1")).toBe(true);
    });

    it("serves presigned GET and PUT URLs used with a plain HTTP client", async () => {
      const data = pattern(70_000, 5);
      const putUrl = await getSignedUrl(
        client,
        new PutObjectCommand({ Bucket: bucket, Key: "presigned/obj" }),
        { expiresIn: 300 },
      );
      const put = await request(putUrl, { method: "PUT", body: data, dispatcher: tlsAgent });
      await put.body.text();
      expect(put.statusCode).toBe(200);
      await onHomeOnly("presigned/obj");
      const getUrl = await getSignedUrl(
        client,
        new GetObjectCommand({ Bucket: bucket, Key: "presigned/obj" }),
        { expiresIn: 300 },
      );
      const get = await request(getUrl, { dispatcher: tlsAgent });
      expect(get.statusCode).toBe(200);
      expect(Buffer.from(await get.body.arrayBuffer()).equals(data)).toBe(true);
      expect(get.headers["x-amz-request-id"]).toMatch(/^[0-9A-F]{16}$/);
    });

    // Regression: versitygw answers large listings with Connection: close; a page whose last
    // bytes met backpressure on the way to the client used to kill the gateway process inside
    // undici 7 (issue 5360; fixed in undici 8). 1,500 keys make a full 1,000-key page.
    it("relays listings of full 1,000-key pages and stays up", async () => {
      const keys = Array.from({ length: 1500 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      for (let i = 0; i < keys.length; i += 100) {
        await Promise.all(
          keys
            .slice(i, i + 100)
            .map((Key) =>
              home.client.send(new PutObjectCommand({ Bucket: home.bucket, Key, Body: "x" })),
            ),
        );
      }
      for (let round = 0; round < 3; round++) {
        const seen: string[] = [];
        let token: string | undefined;
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: "many/", ContinuationToken: token }),
          );
          for (const o of page.Contents ?? []) seen.push(o.Key as string);
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        expect(seen).toEqual(keys);
      }
    });

    it("answers virtual-hosted-style requests for the configured domain", async () => {
      const vh = gatewayClient(gw, certs, USER, { virtualHost: true, region: target().region });
      await vh.send(new PutObjectCommand({ Bucket: bucket, Key: "vhost/obj", Body: "vhost" }));
      await onHomeOnly("vhost/obj");
      const got = await vh.send(new GetObjectCommand({ Bucket: bucket, Key: "vhost/obj" }));
      expect((await bytesOf(got.Body)).toString()).toBe("vhost");
    });
  });

  it("applies a mode change to the next request (forward → ready rollback)", async () => {
    const bucket = `gwp-switch-${run}`;
    const sourceBucket = `${bucket}-src`;
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    const s = source();
    await gw.gateway.store.attach(
      {
        bucket,
        sourceUrl: s.endpoint,
        sourceBucket,
        sourceAccessKey: s.accessKeyId,
        sourceSecretKey: s.secretAccessKey,
        sourceRegion: s.region,
        sourceCa: "system",
      },
      { by: "test" },
    );
    await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "one", Body: "1" }));
    await gw.gateway.store.update({ bucket }, { mode: "ready" }, { by: "test" });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "two", Body: "2" }));
    expect(await exists(direct.source, sourceBucket, "one")).toBe(true);
    expect(await exists(direct.target, bucket, "one")).toBe(false);
    expect(await exists(direct.target, bucket, "two")).toBe(true);
    expect(await exists(direct.source, sourceBucket, "two")).toBe(false);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["two"]);
  });
});
