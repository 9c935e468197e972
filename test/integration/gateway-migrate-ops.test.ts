// Migrate mode, operation by operation (issue 8, Proof): @aws-sdk/client-s3 and our own
// S3Client through the gateway over TLS, on both rig pairs. Every write is checked directly on
// both backends (bytes, metadata, tags); every read of a source-only object is compared with the
// same request made directly to the source. Also: multipart uploads across the cutover with a
// fresh gateway process between parts (no shared upload state), and what an operator sees —
// the access log's `backends`, the `x-s3gw-served-from` header and the `s3gw_migrate_*` metrics.

import { randomBytes } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type GetObjectCommandInput,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client as RawClient } from "../../s3/client.js";
import {
  bytesOf,
  directClient,
  exists,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("migrate-ops-user");
const MIB = 1024 * 1024;

const PAIRS: {
  name: string;
  target: () => RigServer;
  source: () => RigServer;
  /** The source refuses to delete a "directory" key that has children (versitygw posix). */
  sourceRefusesDirectoryDelete: boolean;
}[] = [
  {
    name: "target MinIO, source versitygw",
    target: () => rig.minio,
    source: () => rig.versitygw,
    sourceRefusesDirectoryDelete: true,
  },
  {
    name: "target MinIO, source MinIO",
    target: () => rig.minio,
    source: () => rig.minio2,
    sourceRefusesDirectoryDelete: false,
  },
];

function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return buf;
}

/** The HTTP status of an SDK error (304 and 412 arrive as errors). */
function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** An SDK GET's outcome, comparable between the gateway and the source. */
async function getOutcome(
  client: S3Client,
  input: GetObjectCommandInput,
): Promise<Record<string, unknown>> {
  try {
    const r = await client.send(new GetObjectCommand(input));
    return {
      status: 200,
      body: (await bytesOf(r.Body)).toString("hex"),
      contentType: r.ContentType,
      contentRange: r.ContentRange,
      contentLength: r.ContentLength,
      partsCount: r.PartsCount,
      etag: r.ETag,
      metadata: r.Metadata,
    };
  } catch (err) {
    return { status: statusOf(err) };
  }
}

/** Attaches `bucket` to its source in `gw` and walks it to `mode`. */
async function attachTo(
  gw: TestGateway,
  bucket: string,
  source: RigServer,
  sourceBucket: string,
  mode: "forward" | "migrate",
): Promise<void> {
  await gw.gateway.store.attach(
    {
      bucket,
      sourceUrl: source.endpoint,
      sourceBucket,
      sourceAccessKey: source.accessKeyId,
      sourceSecretKey: source.secretAccessKey,
      sourceRegion: source.region,
      sourceCa: "system",
    },
    { by: "test" },
  );
  await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
  if (mode === "migrate") {
    await gw.gateway.store.update(
      { bucket },
      { mode: "migrate" },
      { by: "test", confirmIrreversible: true },
    );
  }
}

describe.each(PAIRS)(
  "migrate mode, every operation ($name)",
  ({ target, source, sourceRefusesDirectoryDelete }) => {
    let certs: TestCerts;
    let gw: TestGateway;
    let client: S3Client;
    let raw: RawClient;
    let direct: { target: S3Client; source: S3Client };
    const run = randomBytes(4).toString("hex");
    const bucket = `gwmo-${run}`;
    const sourceBucket = `${bucket}-src`;
    const multipartData = pattern(5 * MIB + 1000, 9);
    /** A credential limited to this bucket: it may not copy from any other. */
    const LIMITED = testCredential("migrate-ops-limited", { buckets: [bucket] });

    /** Starts a gateway (a fresh process's worth of state) with `bucket` in migrate mode. */
    async function newGateway(): Promise<TestGateway> {
      const g = await startTestGateway({
        certs,
        target: { endpoint: target().endpoint, server: target() },
        credentials: [USER, LIMITED],
      });
      await attachTo(g, bucket, source(), sourceBucket, "migrate");
      return g;
    }

    async function putOnSource(key: string, body: string | Buffer, tagging = "t=1"): Promise<void> {
      await direct.source.send(
        new PutObjectCommand({
          Bucket: sourceBucket,
          Key: key,
          Body: body,
          ContentType: "text/x-old",
          Metadata: { origin: "source" },
          Tagging: tagging,
        }),
      );
    }

    async function tagsOn(side: "target" | "source", key: string): Promise<unknown> {
      const r = await direct[side].send(
        new GetObjectTaggingCommand({
          Bucket: side === "target" ? bucket : sourceBucket,
          Key: key,
        }),
      );
      return r.TagSet;
    }

    beforeAll(async () => {
      certs = await makeTestCerts();
      direct = { target: directClient(target()), source: directClient(source()) };
      await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
      await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
      for (const key of ["r/read.txt", "r/tag.txt", "r/tag-copied.txt", "r/copy-me.txt"]) {
        await putOnSource(key, `source bytes of ${key}`);
      }
      await putOnSource("r/if-match.txt", "if-match source bytes");
      await putOnSource("r/delete-1.txt", "x");
      // A two-part object on the source, for partNumber reads.
      const mp = await direct.source.send(
        new CreateMultipartUploadCommand({
          Bucket: sourceBucket,
          Key: "r/multipart.bin",
          ContentType: "application/x-mp",
        }),
      );
      const parts = [];
      for (const [n, chunk] of [
        [1, multipartData.subarray(0, 5 * MIB)],
        [2, multipartData.subarray(5 * MIB)],
      ] as const) {
        const p = await direct.source.send(
          new UploadPartCommand({
            Bucket: sourceBucket,
            Key: "r/multipart.bin",
            UploadId: mp.UploadId,
            PartNumber: n,
            Body: chunk,
          }),
        );
        parts.push({ PartNumber: n, ETag: p.ETag });
      }
      await direct.source.send(
        new CompleteMultipartUploadCommand({
          Bucket: sourceBucket,
          Key: "r/multipart.bin",
          UploadId: mp.UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      if (sourceRefusesDirectoryDelete) await putOnSource("dir/child", "c");

      gw = await newGateway();
      client = gatewayClient(gw, certs, USER, { region: target().region });
      raw = new RawClient({
        endpoint: gw.url,
        region: target().region,
        ca: certs.ca,
        credentials: { accessKeyId: USER.accessKeyId, secretAccessKey: USER.secretAccessKey },
      });
    });

    afterAll(async () => {
      await gw?.close();
      await raw?.close();
    });

    it("reads with Range, partNumber, If-None-Match, If-Modified-Since and response-content-type answer as the source itself does", async () => {
      const key = "r/read.txt";
      const head = await direct.source.send(
        new HeadObjectCommand({ Bucket: sourceBucket, Key: key }),
      );
      const notModifiedSince = new Date((head.LastModified as Date).getTime() + 1000);
      // That date must not be in the future (a server ignores such a condition): wait for it.
      while (Date.now() < notModifiedSince.getTime() + 100) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const cases: [string, number, Omit<GetObjectCommandInput, "Bucket">][] = [
        ["whole", 200, { Key: key }],
        ["Range", 200, { Key: key, Range: "bytes=2-9" }],
        ["suffix Range", 200, { Key: key, Range: "bytes=-4" }],
        ["partNumber=1", 200, { Key: "r/multipart.bin", PartNumber: 1 }],
        ["partNumber=2", 200, { Key: "r/multipart.bin", PartNumber: 2 }],
        ["If-None-Match", 304, { Key: key, IfNoneMatch: head.ETag }],
        // A second after its Last-Modified (HTTP dates have whole seconds; versitygw compares
        // its sub-second mtime, so the Last-Modified itself can read as "modified since").
        ["If-Modified-Since", 304, { Key: key, IfModifiedSince: notModifiedSince }],
        ["If-Match failing", 412, { Key: key, IfMatch: '"0123456789abcdef0123456789abcdef"' }],
        ["response-content-type", 200, { Key: key, ResponseContentType: "application/x-override" }],
      ];
      for (const [name, status, input] of cases) {
        const viaGateway = await getOutcome(client, { ...input, Bucket: bucket });
        const fromSource = await getOutcome(direct.source, { ...input, Bucket: sourceBucket });
        expect(viaGateway, name).toEqual(fromSource);
        expect(viaGateway.status, name).toBe(status);
      }
      expect(
        (await getOutcome(client, { Bucket: bucket, Key: key, Range: "bytes=2-9" })).body,
      ).toBe(Buffer.from("source bytes of r/read.txt").subarray(2, 10).toString("hex"));
      expect((await getOutcome(client, { Bucket: bucket, Key: key })).status).toBe(200);
      // partNumber on HEAD too: the part's length and the parts count.
      const part = await client.send(
        new HeadObjectCommand({ Bucket: bucket, Key: "r/multipart.bin", PartNumber: 2 }),
      );
      expect(part.ContentLength).toBe(1000);
      expect(part.PartsCount).toBe(2);
      // HEAD with Range and GetObjectAcl: the source's own answers (versitygw does not
      // implement object ACLs: its 501 reaches the client as a 501, not as a sick source).
      const headRange = async (c: S3Client, b: string): Promise<unknown> => {
        const h = await c.send(new HeadObjectCommand({ Bucket: b, Key: key, Range: "bytes=0-3" }));
        return [h.ContentLength, h.ContentRange, h.ETag, h.ContentType];
      };
      expect(await headRange(client, bucket)).toEqual(await headRange(direct.source, sourceBucket));
      const acl = async (c: S3Client, b: string): Promise<unknown> => {
        try {
          return (await c.send(new GetObjectAclCommand({ Bucket: b, Key: key }))).Grants;
        } catch (err) {
          return { status: statusOf(err), name: (err as Error).name };
        }
      };
      expect(await acl(client, bucket)).toEqual(await acl(direct.source, sourceBucket));
      // Nothing was copied to the target by reading.
      expect(await exists(direct.target, bucket, key)).toBe(false);
    });

    it("an answer served by the source says so (x-s3gw-served-from), one served by the target does not", async () => {
      const fromSource = await raw.request({ method: "GET", bucket, key: "r/read.txt" });
      fromSource.body.resume();
      expect(fromSource.headers["x-s3gw-served-from"]).toBe("source");
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: "served.txt", Body: "t" }));
      const fromTarget = await raw.request({ method: "GET", bucket, key: "served.txt" });
      fromTarget.body.resume();
      expect(fromTarget.headers["x-s3gw-served-from"]).toBeUndefined();
      const miss = await raw.request({
        method: "HEAD",
        bucket,
        key: "nowhere.txt",
        okStatuses: [404],
      });
      miss.body.resume();
      expect(miss.status).toBe(404);
    });

    it("PutObjectTagging goes where the object is: the source for a source-only object, the target for a copied one", async () => {
      await client.send(
        new PutObjectTaggingCommand({
          Bucket: bucket,
          Key: "r/tag.txt",
          Tagging: { TagSet: [{ Key: "where", Value: "source" }] },
        }),
      );
      expect(await tagsOn("source", "r/tag.txt")).toEqual([{ Key: "where", Value: "source" }]);
      expect(await exists(direct.target, bucket, "r/tag.txt")).toBe(false);

      // "Copied": the object is on the target too (as s3migrate leaves it).
      await direct.target.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "r/tag-copied.txt",
          Body: "source bytes of r/tag-copied.txt",
          Tagging: "t=1",
        }),
      );
      await client.send(
        new PutObjectTaggingCommand({
          Bucket: bucket,
          Key: "r/tag-copied.txt",
          Tagging: { TagSet: [{ Key: "where", Value: "target" }] },
        }),
      );
      expect(await tagsOn("target", "r/tag-copied.txt")).toEqual([
        { Key: "where", Value: "target" },
      ]);
      expect(await tagsOn("source", "r/tag-copied.txt")).toEqual([{ Key: "t", Value: "1" }]);
      const read = await client.send(
        new GetObjectTaggingCommand({ Bucket: bucket, Key: "r/tag.txt" }),
      );
      expect(read.TagSet).toEqual([{ Key: "where", Value: "source" }]);
    });

    it("CopyObject from a source-only object with REPLACE metadata and tagging directives", async () => {
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: "copied/replaced.txt",
          CopySource: `${bucket}/r/copy-me.txt`,
          MetadataDirective: "REPLACE",
          ContentType: "text/x-new",
          Metadata: { origin: "replaced" },
          TaggingDirective: "REPLACE",
          Tagging: "fresh=yes",
        }),
      );
      const got = await direct.target.send(
        new GetObjectCommand({ Bucket: bucket, Key: "copied/replaced.txt" }),
      );
      expect((await bytesOf(got.Body)).toString()).toBe("source bytes of r/copy-me.txt");
      expect(got.ContentType).toBe("text/x-new");
      expect(got.Metadata).toEqual({ origin: "replaced" });
      expect(await tagsOn("target", "copied/replaced.txt")).toEqual([
        { Key: "fresh", Value: "yes" },
      ]);
      expect(await exists(direct.source, sourceBucket, "copied/replaced.txt")).toBe(false);
      // The source object is untouched.
      const src = await direct.source.send(
        new HeadObjectCommand({ Bucket: sourceBucket, Key: "r/copy-me.txt" }),
      );
      expect(src.ContentType).toBe("text/x-old");
    });

    it("the copy source is authorized against the client's own credential", async () => {
      const limited = gatewayClient(gw, certs, LIMITED, { region: target().region });
      await expect(
        limited.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: "copied/stolen.txt",
            CopySource: `${sourceBucket}/r/copy-me.txt`,
          }),
        ),
      ).rejects.toMatchObject({ name: "AccessDenied" });
      expect(await exists(direct.target, bucket, "copied/stolen.txt")).toBe(false);
      // Its own bucket is fine, also across clusters.
      await limited.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: "copied/allowed.txt",
          CopySource: `${bucket}/r/copy-me.txt`,
        }),
      );
      expect(await exists(direct.target, bucket, "copied/allowed.txt")).toBe(true);
    });

    it("CopyObject with a failing x-amz-copy-source-if-match is 412 and writes nothing", async () => {
      await expect(
        client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: "copied/never.txt",
            CopySource: `${bucket}/r/copy-me.txt`,
            CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"',
          }),
        ),
      ).rejects.toSatisfy((err) => statusOf(err) === 412);
      expect(await exists(direct.target, bucket, "copied/never.txt")).toBe(false);
      const head = await direct.source.send(
        new HeadObjectCommand({ Bucket: sourceBucket, Key: "r/copy-me.txt" }),
      );
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: "copied/if-match.txt",
          CopySource: `${bucket}/r/copy-me.txt`,
          CopySourceIfMatch: head.ETag,
        }),
      );
      expect(await exists(direct.target, bucket, "copied/if-match.txt")).toBe(true);
    });

    it("UploadPartCopy with x-amz-copy-source-range from a source-only object into a new (target) upload", async () => {
      const key = "copied/assembled.bin";
      const first = pattern(5 * MIB, 3);
      const up = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      const p1 = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: up.UploadId,
          PartNumber: 1,
          Body: first,
        }),
      );
      const p2 = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: key,
          UploadId: up.UploadId,
          PartNumber: 2,
          CopySource: `${bucket}/r/multipart.bin`,
          CopySourceRange: "bytes=100-5242979",
        }),
      );
      expect(p2.CopyPartResult?.ETag).toMatch(/^"[0-9a-f]{32}"$/);
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: up.UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag },
              { PartNumber: 2, ETag: p2.CopyPartResult?.ETag },
            ],
          },
        }),
      );
      const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const expected = Buffer.concat([first, multipartData.subarray(100, 5242980)]);
      expect((await bytesOf(got.Body)).equals(expected)).toBe(true);
      expect(await exists(direct.source, sourceBucket, key)).toBe(false);
    });

    it("If-Match on a source-only object: matching writes to the target, not matching is 412", async () => {
      const key = "r/if-match.txt";
      const head = await direct.source.send(
        new HeadObjectCommand({ Bucket: sourceBucket, Key: key }),
      );
      await expect(
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: "nope",
            IfMatch: '"0123456789abcdef0123456789abcdef"',
          }),
        ),
      ).rejects.toSatisfy((err) => statusOf(err) === 412);
      expect(await exists(direct.target, bucket, key)).toBe(false);
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: "replaced", IfMatch: head.ETag }),
      );
      const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect((await bytesOf(got.Body)).toString()).toBe("replaced");
      // The source keeps its (now shadowed) copy; the gateway serves the target's.
      const src = await direct.source.send(
        new GetObjectCommand({ Bucket: sourceBucket, Key: key }),
      );
      expect((await bytesOf(src.Body)).toString()).toBe("if-match source bytes");
      const through = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect((await bytesOf(through.Body)).toString()).toBe("replaced");
    });

    it("DeleteObjects merges both sides' results per key", async () => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: "d/on-target", Body: "t" }));
      const keys = ["r/delete-1.txt", "d/on-target", "d/never-existed"];
      if (sourceRefusesDirectoryDelete) keys.push("dir/");
      const res = await client.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: keys.map((Key) => ({ Key })) },
        }),
      );
      expect((res.Deleted ?? []).map((d) => d.Key).sort()).toEqual(
        ["d/never-existed", "d/on-target", "r/delete-1.txt"].sort(),
      );
      if (sourceRefusesDirectoryDelete) {
        // The source (versitygw posix) refuses "dir/" (a directory with a child); the target
        // deleted nothing there. One failing side makes the key an error, never "deleted".
        expect(res.Errors?.map((e) => e.Key)).toEqual(["dir/"]);
      } else {
        expect(res.Errors ?? []).toEqual([]);
      }
      expect(await exists(direct.source, sourceBucket, "r/delete-1.txt")).toBe(false);
      expect(await exists(direct.target, bucket, "d/on-target")).toBe(false);
      await expect(
        client.send(new GetObjectCommand({ Bucket: bucket, Key: "r/delete-1.txt" })),
      ).rejects.toMatchObject({ name: "NoSuchKey" });
    });

    it("a multipart upload begun on the source in forward mode completes there after the switch, across gateway processes", async () => {
      // Its own bucket: it must be in forward mode when the upload begins.
      const mb = `${bucket}-mp`;
      const msrc = `${mb}-src`;
      await direct.target.send(new CreateBucketCommand({ Bucket: mb }));
      await direct.source.send(new CreateBucketCommand({ Bucket: msrc }));
      await direct.source.send(
        new PutObjectCommand({ Bucket: msrc, Key: "piece.bin", Body: pattern(4000, 5) }),
      );
      const g1 = await startTestGateway({
        certs,
        target: { endpoint: target().endpoint, server: target() },
        credentials: [USER],
      });
      const gateways = [g1];
      try {
        await attachTo(g1, mb, source(), msrc, "forward");
        const c1 = gatewayClient(g1, certs, USER, { region: target().region });
        const key = "across/the-cutover.bin";
        const parts = [pattern(5 * MIB, 1), pattern(5 * MIB, 2)];
        const up = await c1.send(new CreateMultipartUploadCommand({ Bucket: mb, Key: key }));
        const p1 = await c1.send(
          new UploadPartCommand({
            Bucket: mb,
            Key: key,
            UploadId: up.UploadId,
            PartNumber: 1,
            Body: parts[0],
          }),
        );
        // The switch; and a new gateway process (no memory of the upload) for every later step.
        await g1.gateway.store.update(
          { bucket: mb },
          { mode: "migrate" },
          { by: "test", confirmIrreversible: true },
        );
        const fresh = async (): Promise<S3Client> => {
          const g = await startTestGateway({
            certs,
            target: { endpoint: target().endpoint, server: target() },
            credentials: [USER],
          });
          gateways.push(g);
          await attachTo(g, mb, source(), msrc, "migrate");
          return gatewayClient(g, certs, USER, { region: target().region });
        };
        const p2 = await (
          await fresh()
        ).send(
          new UploadPartCommand({
            Bucket: mb,
            Key: key,
            UploadId: up.UploadId,
            PartNumber: 2,
            Body: parts[1],
          }),
        );
        const p3 = await (
          await fresh()
        ).send(
          new UploadPartCopyCommand({
            Bucket: mb,
            Key: key,
            UploadId: up.UploadId,
            PartNumber: 3,
            CopySource: `${mb}/piece.bin`,
          }),
        );
        const listed = await (
          await fresh()
        ).send(new ListPartsCommand({ Bucket: mb, Key: key, UploadId: up.UploadId }));
        expect(listed.Parts?.map((p) => p.PartNumber)).toEqual([1, 2, 3]);
        await (
          await fresh()
        ).send(
          new CompleteMultipartUploadCommand({
            Bucket: mb,
            Key: key,
            UploadId: up.UploadId,
            MultipartUpload: {
              Parts: [
                { PartNumber: 1, ETag: p1.ETag },
                { PartNumber: 2, ETag: p2.ETag },
                { PartNumber: 3, ETag: p3.CopyPartResult?.ETag },
              ],
            },
          }),
        );
        const expected = Buffer.concat([...parts, pattern(4000, 5)]);
        const onSource = await direct.source.send(new GetObjectCommand({ Bucket: msrc, Key: key }));
        expect((await bytesOf(onSource.Body)).equals(expected)).toBe(true);
        expect(await exists(direct.target, mb, key)).toBe(false);
        const through = await (await fresh()).send(new GetObjectCommand({ Bucket: mb, Key: key }));
        expect((await bytesOf(through.Body)).equals(expected)).toBe(true);

        // A new upload in migrate mode lives on the target, whichever process continues it.
        const key2 = "across/new-in-migrate.bin";
        const up2 = await c1.send(new CreateMultipartUploadCommand({ Bucket: mb, Key: key2 }));
        const q1 = await (
          await fresh()
        ).send(
          new UploadPartCommand({
            Bucket: mb,
            Key: key2,
            UploadId: up2.UploadId,
            PartNumber: 1,
            Body: parts[0],
          }),
        );
        const q2 = await (
          await fresh()
        ).send(
          new UploadPartCopyCommand({
            Bucket: mb,
            Key: key2,
            UploadId: up2.UploadId,
            PartNumber: 2,
            CopySource: `${mb}/piece.bin`,
          }),
        );
        await (
          await fresh()
        ).send(
          new CompleteMultipartUploadCommand({
            Bucket: mb,
            Key: key2,
            UploadId: up2.UploadId,
            MultipartUpload: {
              Parts: [
                { PartNumber: 1, ETag: q1.ETag },
                { PartNumber: 2, ETag: q2.CopyPartResult?.ETag },
              ],
            },
          }),
        );
        const onTarget = await direct.target.send(new GetObjectCommand({ Bucket: mb, Key: key2 }));
        expect(
          (await bytesOf(onTarget.Body)).equals(
            Buffer.concat([parts[0] as Buffer, pattern(4000, 5)]),
          ),
        ).toBe(true);
        expect(await exists(direct.source, msrc, key2)).toBe(false);
      } finally {
        for (const g of gateways) await g.close();
      }
    });

    it("an upload begun in migrate mode completes after detach (it lives on the target)", async () => {
      const db = `${bucket}-det`;
      const dsrc = `${db}-src`;
      await direct.target.send(new CreateBucketCommand({ Bucket: db }));
      await direct.source.send(new CreateBucketCommand({ Bucket: dsrc }));
      await attachTo(gw, db, source(), dsrc, "migrate");
      const key = "begun-in-migrate.bin";
      const parts = [pattern(5 * MIB, 7), pattern(1000, 8)];
      const up = await client.send(new CreateMultipartUploadCommand({ Bucket: db, Key: key }));
      const p1 = await client.send(
        new UploadPartCommand({
          Bucket: db,
          Key: key,
          UploadId: up.UploadId,
          PartNumber: 1,
          Body: parts[0],
        }),
      );
      await gw.gateway.store.detach(db, { by: "test" });
      const p2 = await client.send(
        new UploadPartCommand({
          Bucket: db,
          Key: key,
          UploadId: up.UploadId,
          PartNumber: 2,
          Body: parts[1],
        }),
      );
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: db,
          Key: key,
          UploadId: up.UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag },
              { PartNumber: 2, ETag: p2.ETag },
            ],
          },
        }),
      );
      const got = await direct.target.send(new GetObjectCommand({ Bucket: db, Key: key }));
      expect((await bytesOf(got.Body)).equals(Buffer.concat(parts))).toBe(true);
      expect(await exists(direct.source, dsrc, key)).toBe(false);
    });

    it("the access log names every backend a request touched, and the migrate metrics move", async () => {
      const before = await (await fetch(`${gw.gateway.metrics?.url}/metrics`)).text();
      const key = "r/read.txt";
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: "copied/metrics.txt",
          CopySource: `${bucket}/${key}`,
        }),
      );
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: "m/del", Body: "x" }));
      await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "m/del" }] } }),
      );
      const lines = gw
        .logs()
        .split("\n")
        .filter((l) => l.includes('"msg":"s3 request"'))
        .map((l) => JSON.parse(l) as { operation: string; backends: string[]; plan?: string });
      const last = (op: string): { backends: string[] } | undefined =>
        lines.filter((l) => l.operation === op).at(-1);
      expect(last("HeadObject")?.backends).toEqual(["target", "source"]);
      expect(last("CopyObject")?.backends.slice().sort()).toEqual(["source", "target"]);
      expect(last("DeleteObjects")?.backends.slice().sort()).toEqual(["source", "target"]);
      expect(last("PutObject")?.backends).toEqual(["target"]);

      const after = await (await fetch(`${gw.gateway.metrics?.url}/metrics`)).text();
      const value = (text: string, series: string): number => {
        const line = text.split("\n").find((l) => l.startsWith(series + " "));
        return line === undefined ? 0 : Number(line.slice(series.length + 1));
      };
      const grew = (series: string): boolean => value(after, series) > value(before, series);
      expect(grew('s3gw_migrate_fallbacks_total{operation="HeadObject",outcome="source"}')).toBe(
        true,
      );
      expect(grew('s3gw_migrate_cross_copies_total{operation="CopyObject",outcome="ok"}')).toBe(
        true,
      );
      expect(grew('s3gw_migrate_cross_copy_bytes_total{operation="CopyObject"}')).toBe(true);
      expect(grew('s3gw_migrate_deletes_both_total{operation="DeleteObjects",outcome="ok"}')).toBe(
        true,
      );
      expect(grew('s3gw_migrate_source_call_duration_seconds_count{operation="HeadObject"}')).toBe(
        true,
      );
    });
  },
);
