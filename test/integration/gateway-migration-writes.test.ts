// Migration writes and tombstones (DESIGN 3.4): the hard interleavings of a copier and clients,
// each as a deterministic test. The copier's GET from the source, the client's requests and the
// copier's PUT through the gateway (migrator credential) happen in a chosen order; where a
// request must be caught in the middle (a PUT whose body is still streaming), the test holds
// its body and waits on a condition (the claim in the state store), never on a timer.
// Two gateways share one state store (the SQLite file of one folder).

import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
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

const rig = inject("rig");
const USER = testCredential("mw-user");
const MIGRATOR = testCredential("mw-migrator", { role: "migrator" });

/** Waits until `check` holds (polling a condition, not sleeping to win a race). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("migration writes and tombstones (target MinIO, source versitygw, two gateways)", () => {
  let certs: TestCerts;
  let a: TestGateway;
  let b: TestGateway;
  let client: S3Client;
  let clientB: S3Client;
  let migrator: S3Client;
  let migratorB: S3Client;
  let direct: { target: S3Client; source: S3Client };
  const run = randomBytes(4).toString("hex");
  const bucket = `gmw-${run}`;
  const sourceBucket = `${bucket}-src`;
  const original = (key: string): string => `original bytes of ${key}`;

  beforeAll(async () => {
    certs = await makeTestCerts();
    const stateDir = await mkdtemp(join(tmpdir(), "s3gw-mw-state-"));
    const target = rig.minio;
    const common = {
      certs,
      target: { endpoint: target.endpoint, server: target },
      credentials: [USER, MIGRATOR],
      stateDir,
    };
    a = await startTestGateway(common);
    b = await startTestGateway(common);
    client = gatewayClient(a, certs, USER);
    clientB = gatewayClient(b, certs, USER);
    migrator = gatewayClient(a, certs, MIGRATOR);
    migratorB = gatewayClient(b, certs, MIGRATOR);
    direct = { target: directClient(target), source: directClient(rig.versitygw) };
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    for (let i = 1; i <= 8; i++) {
      await direct.source.send(
        new PutObjectCommand({ Bucket: sourceBucket, Key: `k${i}`, Body: original(`k${i}`) }),
      );
    }
    await attachBucket(a, { bucket, source: rig.versitygw, sourceBucket, mode: "migrate" });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  /** The copier's first step: the object as the source holds it. */
  async function copierGet(key: string): Promise<Buffer> {
    const got = await direct.source.send(new GetObjectCommand({ Bucket: sourceBucket, Key: key }));
    return await bytesOf(got.Body);
  }

  /** The copier's last step: a create-only PUT through a gateway as the migrator. */
  async function copierPut(via: S3Client, key: string, body: Buffer): Promise<number> {
    try {
      const res = await via.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: "*" }),
      );
      return res.$metadata.httpStatusCode ?? 0;
    } catch (err) {
      return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
    }
  }

  async function targetBytes(key: string): Promise<string | undefined> {
    if (!(await exists(direct.target, bucket, key))) return undefined;
    const got = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await bytesOf(got.Body)).toString();
  }

  it("copy GET → client DELETE → copy PUT: the key stays deleted", async () => {
    const old = await copierGet("k1");
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "k1" }));
    expect(await copierPut(migrator, "k1", old)).toBe(412);
    expect(await targetBytes("k1")).toBeUndefined();
    expect(await exists(direct.source, sourceBucket, "k1")).toBe(false);
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "k1" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
    expect(await a.gateway.store.hasTombstone(bucket, "k1")).toBe(true);
  });

  it("copy GET → client PUT → copy PUT: the client's bytes win", async () => {
    const old = await copierGet("k2");
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "k2", Body: "client v2" }));
    expect(await copierPut(migrator, "k2", old)).toBe(412);
    expect(await targetBytes("k2")).toBe("client v2");
  });

  it("copy GET → client DELETE → client PUT → copy PUT: the client's new bytes win", async () => {
    const old = await copierGet("k3");
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "k3" }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "k3", Body: "client v3" }));
    expect(await copierPut(migrator, "k3", old)).toBe(412);
    expect(await targetBytes("k3")).toBe("client v3");
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k3" }));
    expect((await bytesOf(got.Body)).toString()).toBe("client v3");
  });

  it("copy PUT → client DELETE: deleted on both sides", async () => {
    const old = await copierGet("k4");
    expect(await copierPut(migrator, "k4", old)).toBe(200);
    expect(await targetBytes("k4")).toBe(original("k4"));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "k4" }));
    expect(await targetBytes("k4")).toBeUndefined();
    expect(await exists(direct.source, sourceBucket, "k4")).toBe(false);
  });

  it("client DELETE through gateway A, copy PUT through gateway B: refused", async () => {
    const old = await copierGet("k5");
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "k5" }));
    expect(await copierPut(migratorB, "k5", old)).toBe(412);
    expect(await targetBytes("k5")).toBeUndefined();
    // And the other way round, with a multi-object delete.
    const old6 = await copierGet("k6");
    await clientB.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "k6" }] } }),
    );
    expect(await copierPut(migrator, "k6", old6)).toBe(412);
    expect(await targetBytes("k6")).toBeUndefined();
  });

  it("a client DELETE during a copy PUT waits for it, then removes it", async () => {
    const old = await copierGet("k7");
    const body = new PassThrough();
    body.write(old.subarray(0, 5));
    const put = migratorB.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "k7",
        Body: body,
        ContentLength: old.length,
        IfNoneMatch: "*",
      }),
    );
    // Held: the claim is taken and the body is still streaming.
    await until(
      async () => (await a.gateway.store.activeClaims(bucket, "k7")).length > 0,
      "the copy's claim",
    );
    let deleted = false;
    const del = client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "k7" })).then(() => {
      deleted = true;
    });
    await until(() => a.gateway.store.hasTombstone(bucket, "k7"), "the delete's tombstone");
    // The delete has its tombstone and waits for the copy: nothing deleted yet.
    expect(deleted).toBe(false);
    expect(await exists(direct.source, sourceBucket, "k7")).toBe(true);
    body.end(old.subarray(5));
    const res = await put;
    expect(res.$metadata.httpStatusCode).toBe(200);
    await del;
    expect(await targetBytes("k7")).toBeUndefined();
    expect(await exists(direct.source, sourceBucket, "k7")).toBe(false);
  });

  it("the migrator sees the target only, and fallback reads never serve a tombstoned key", async () => {
    await expect(
      migrator.send(new GetObjectCommand({ Bucket: bucket, Key: "k8" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
    const viaClient = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k8" }));
    expect((await bytesOf(viaClient.Body)).toString()).toBe(original("k8"));
    // A tombstone with the source still holding the key (a source delete that failed).
    await a.gateway.store.addTombstone(bucket, "k8");
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "k8" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
  });
});
