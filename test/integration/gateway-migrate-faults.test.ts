// Migrate mode with failing backends (issue 8, Proof): a loopback counting TCP proxy sits
// between the gateway and each real backend; cutting or stalling it plays a backend that dies or
// hangs. A source that fails is a 503, never a 404 (a sync client would take a 404 for a
// delete); a target that fails is a 503 and nothing goes to the source; a copy cut mid-stream
// leaves no partial object on the target.

import { randomBytes } from "node:crypto";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  bytesOf,
  CountingProxy,
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
const USER = testCredential("migrate-faults-user");
const MIB = 1024 * 1024;

const PAIRS: { name: string; target: () => RigServer; source: () => RigServer }[] = [
  { name: "target MinIO, source versitygw", target: () => rig.minio, source: () => rig.versitygw },
  { name: "target MinIO, source MinIO", target: () => rig.minio, source: () => rig.minio2 },
];

/** The HTTP status and S3 error name of a failed SDK call. */
async function failure(p: Promise<unknown>): Promise<{ status?: number; name?: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, name: e.name };
  }
  return { status: 200 };
}

describe.each(PAIRS)("migrate mode with failing backends ($name)", ({ target, source }) => {
  let certs: TestCerts;
  let gw: TestGateway;
  let client: S3Client;
  let targetProxy: CountingProxy;
  let sourceProxy: CountingProxy;
  let direct: { target: S3Client; source: S3Client };
  const run = randomBytes(4).toString("hex");
  const bucket = `gwmf-${run}`;
  const sourceBucket = `${bucket}-src`;
  const big = randomBytes(8 * MIB);

  beforeAll(async () => {
    certs = await makeTestCerts();
    targetProxy = await CountingProxy.start(target().endpoint);
    sourceProxy = await CountingProxy.start(source().endpoint);
    gw = await startTestGateway({
      certs,
      target: { endpoint: targetProxy.endpoint, server: target() },
      credentials: [USER],
      listener: { backendTimeouts: { connectMs: 1_000, headersMs: 1_500, bodyIdleMs: 1_500 } },
    });
    client = gatewayClient(gw, certs, USER, { region: target().region });
    direct = { target: directClient(target()), source: directClient(source()) };
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    for (const key of ["old/a.txt", "old/b.txt", "old/c.txt", "copied.txt"]) {
      await direct.source.send(
        new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: `source ${key}` }),
      );
    }
    await direct.source.send(new PutObjectCommand({ Bucket: sourceBucket, Key: "big", Body: big }));
    // "copied.txt" is migrated already: it is on the target too.
    await direct.target.send(
      new PutObjectCommand({ Bucket: bucket, Key: "copied.txt", Body: "source copied.txt" }),
    );
    const s = source();
    await gw.gateway.store.attach(
      {
        bucket,
        sourceUrl: sourceProxy.endpoint,
        sourceBucket,
        sourceAccessKey: s.accessKeyId,
        sourceSecretKey: s.secretAccessKey,
        sourceRegion: s.region,
        sourceCa: "system",
      },
      { by: "test" },
    );
    await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
    await gw.gateway.store.update(
      { bucket },
      { mode: "migrate" },
      { by: "test", confirmIrreversible: true },
    );
  });

  afterEach(() => {
    targetProxy.onUp = undefined;
    targetProxy.onDown = undefined;
    sourceProxy.onUp = undefined;
    sourceProxy.onDown = undefined;
    targetProxy.restore();
    sourceProxy.restore();
  });

  afterAll(async () => {
    await gw?.close();
    await targetProxy?.close();
    await sourceProxy?.close();
  });

  for (const fault of ["cut", "stall"] as const) {
    it(`source ${fault === "cut" ? "down" : "hung"}: reads of keys not yet copied are 503 (never 404), copied keys still read, deletes report an error`, async () => {
      sourceProxy[fault]();
      // Thunks, called one at a time: a rejected promise nobody awaits yet is an unhandled one.
      for (const read of [
        () => client.send(new GetObjectCommand({ Bucket: bucket, Key: "old/a.txt" })),
        () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: "old/a.txt" })),
        () => client.send(new GetObjectCommand({ Bucket: bucket, Key: "never-existed" })),
      ]) {
        expect(await failure(read())).toMatchObject({ status: 503 });
      }
      const copied = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "copied.txt" }));
      expect((await bytesOf(copied.Body)).toString()).toBe("source copied.txt");

      expect(
        await failure(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "old/b.txt" }))),
      ).toMatchObject({ status: 503 });
      const many = await failure(
        client.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "old/c.txt" }] } }),
        ),
      );
      expect(many.status).toBe(503);
      // Nothing was deleted on the source; it still answers once it is back.
      sourceProxy.restore();
      expect(await exists(direct.source, sourceBucket, "old/b.txt")).toBe(true);
      const back = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "old/a.txt" }));
      expect((await bytesOf(back.Body)).toString()).toBe("source old/a.txt");
    });
  }

  it("target down: 503, and nothing reaches the source", async () => {
    targetProxy.cut();
    const before = sourceProxy.bytesUp;
    for (const call of [
      () => client.send(new GetObjectCommand({ Bucket: bucket, Key: "old/a.txt" })),
      () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: "old/a.txt" })),
      () => client.send(new PutObjectCommand({ Bucket: bucket, Key: "new.txt", Body: "n" })),
      () => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "old/a.txt" })),
      () =>
        client.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "old/a.txt" }] } }),
        ),
      () =>
        client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: "c.txt",
            CopySource: `${bucket}/old/a.txt`,
          }),
        ),
      () =>
        client.send(
          new PutObjectCommand({ Bucket: bucket, Key: "old/a.txt", Body: "n", IfNoneMatch: "*" }),
        ),
    ]) {
      expect(await failure(call())).toMatchObject({ status: 503 });
    }
    expect(sourceProxy.bytesUp).toBe(before);
    targetProxy.restore();
    expect(await exists(direct.source, sourceBucket, "old/a.txt")).toBe(true);
  });

  for (const side of ["source", "target"] as const) {
    it(`a ${side} cut in the middle of a cross-cluster copy leaves no partial object on the target`, async () => {
      const proxy = side === "source" ? sourceProxy : targetProxy;
      const key = `cut-${side}.bin`;
      const start = side === "source" ? proxy.bytesDown : proxy.bytesUp;
      const hook = (n: number): void => {
        if (n - start > 2 * MIB) proxy.cut();
      };
      if (side === "source") proxy.onDown = hook;
      else proxy.onUp = hook;
      const result = await failure(
        client.send(
          new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/big` }),
        ),
      );
      expect(result.status).toBeGreaterThanOrEqual(500);
      proxy.onUp = undefined;
      proxy.onDown = undefined;
      proxy.restore();
      expect(await exists(direct.target, bucket, key)).toBe(false);
      // And once both are back, the same copy works.
      await client.send(
        new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/big` }),
      );
      const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect((await bytesOf(got.Body)).equals(big)).toBe(true);
    });
  }
});
