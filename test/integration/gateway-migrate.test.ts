// Migrate mode end to end (DESIGN 3.3): @aws-sdk/client-s3 through the gateway over TLS, a
// source holding objects written before the switch, a target that starts empty; after every
// operation a direct check on both backends shows where data landed and what it holds.

import { randomBytes } from "node:crypto";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  attachBucket,
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
const USER = testCredential("migrate-user");

const PAIRS: { name: string; target: () => RigServer; source: () => RigServer }[] = [
  { name: "target MinIO, source versitygw", target: () => rig.minio, source: () => rig.versitygw },
  { name: "target MinIO, source MinIO", target: () => rig.minio, source: () => rig.minio2 },
];

describe.each(PAIRS)("migrate mode ($name)", ({ target, source }) => {
  let certs: TestCerts;
  let gw: TestGateway;
  let client: S3Client;
  let direct: { target: S3Client; source: S3Client };
  const run = randomBytes(4).toString("hex");
  const bucket = `gwm-${run}`;
  const sourceBucket = `${bucket}-src`;

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: target().endpoint, server: target() },
      credentials: [USER],
    });
    client = gatewayClient(gw, certs, USER, { region: target().region });
    direct = { target: directClient(target()), source: directClient(source()) };
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    for (const key of ["old/a.txt", "old/b.txt", "old/c.txt", "old/d.txt"]) {
      await direct.source.send(
        new PutObjectCommand({
          Bucket: sourceBucket,
          Key: key,
          Body: `source bytes of ${key}`,
          ContentType: "text/x-old",
          Metadata: { origin: "source" },
          Tagging: "t=1",
        }),
      );
    }
    await attachBucket(gw, { bucket, source: source(), sourceBucket, mode: "migrate" });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it("reads an object that is only on the source, and says so", async () => {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "old/a.txt" }));
    expect((await bytesOf(got.Body)).toString()).toBe("source bytes of old/a.txt");
    expect(got.ContentType).toBe("text/x-old");
    expect(got.Metadata).toEqual({ origin: "source" });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "old/a.txt" }));
    expect(head.ContentLength).toBe("source bytes of old/a.txt".length);
    const tags = await client.send(
      new GetObjectTaggingCommand({ Bucket: bucket, Key: "old/a.txt" }),
    );
    expect(tags.TagSet).toEqual([{ Key: "t", Value: "1" }]);
    expect(await exists(direct.target, bucket, "old/a.txt")).toBe(false);
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "nowhere" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
  });

  it("writes new objects to the target only", async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "new.txt", Body: "new" }));
    expect(await exists(direct.target, bucket, "new.txt")).toBe(true);
    expect(await exists(direct.source, sourceBucket, "new.txt")).toBe(false);
  });

  it("deletes on both sides", async () => {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "old/b.txt" }));
    expect(await exists(direct.source, sourceBucket, "old/b.txt")).toBe(false);
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "old/b.txt" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
    const res = await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: [{ Key: "old/c.txt" }, { Key: "new.txt" }, { Key: "never" }] },
      }),
    );
    expect((res.Deleted ?? []).map((d) => d.Key).sort()).toEqual(["never", "new.txt", "old/c.txt"]);
    expect(res.Errors ?? []).toEqual([]);
    expect(await exists(direct.source, sourceBucket, "old/c.txt")).toBe(false);
    expect(await exists(direct.target, bucket, "new.txt")).toBe(false);
  });

  it("copies a source-only object across clusters with its metadata and tags", async () => {
    const copied = await client.send(
      new CopyObjectCommand({ Bucket: bucket, Key: "copy.txt", CopySource: `${bucket}/old/d.txt` }),
    );
    expect(copied.CopyObjectResult?.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: "copy.txt" }));
    expect((await bytesOf(got.Body)).toString()).toBe("source bytes of old/d.txt");
    expect(got.ContentType).toBe("text/x-old");
    expect(got.Metadata).toEqual({ origin: "source" });
    const tags = await direct.target.send(
      new GetObjectTaggingCommand({ Bucket: bucket, Key: "copy.txt" }),
    );
    expect(tags.TagSet).toEqual([{ Key: "t", Value: "1" }]);
    await expect(
      client.send(
        new PutObjectCommand({ Bucket: bucket, Key: "old/d.txt", Body: "x", IfNoneMatch: "*" }),
      ),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
  });
});
