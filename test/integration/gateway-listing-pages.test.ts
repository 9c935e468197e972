// Merged listings across pages, requests and gateways (issue 10): a full listing fetches each
// backend entry once (the pages one page parks are resumed by the next,
// gateway/listing/page-cache.ts), a token issued by one gateway continues on another gateway
// sharing the secret, and a write or delete through the gateway between two pages is seen by
// the next page. Real servers: a MinIO target and a MinIO source behind two TLS gateways that
// share one state store.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeleteObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  paginateListObjectsV2,
  type S3Client as SdkClient,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import { createBucket, putObject } from "../../s3/client-operations.js";
import {
  attachBucket,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
  metric,
} from "../helpers/gateway-harness.js";
import { byteOrder } from "../helpers/listing-model.js";

const rig = inject("rig");
const USER = testCredential("pages-user");
const N = 2_500;

async function pagesFetched(gw: TestGateway): Promise<{ target: number; source: number }> {
  return {
    target: await metric(gw, "s3gw_migrate_listing_pages_total", 'side="target"'),
    source: await metric(gw, "s3gw_migrate_listing_pages_total", 'side="source"'),
  };
}

describe("merged listings across pages and gateways (MinIO target, MinIO source)", () => {
  let certs: TestCerts;
  let a: TestGateway;
  let b: TestGateway;
  let sdkA: SdkClient;
  let sdkB: SdkClient;
  const bucket = `gpg-${randomBytes(4).toString("hex")}`;
  const sourceBucket = `${bucket}-src`;
  const keyOf = (i: number): string => `d${i % 5}/k${String(i).padStart(5, "0")}`;
  const all = Array.from({ length: N }, (_, i) => keyOf(i)).sort(byteOrder);
  // Half on each side, interleaved: every merged page draws on both backends.
  const onTarget = new Set(all.filter((_, i) => i % 2 === 0));

  beforeAll(async () => {
    certs = await makeTestCerts();
    const stateDir = await mkdtemp(join(tmpdir(), "s3gw-pages-state-"));
    const start = (): Promise<TestGateway> =>
      startTestGateway({
        certs,
        target: { endpoint: rig.minio.endpoint, server: rig.minio },
        credentials: [USER],
        stateDir,
      });
    a = await start();
    b = await start();
    const direct = (server: typeof rig.minio): S3Client =>
      new S3Client({
        endpoint: server.endpoint,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
        region: server.region,
      });
    const target = direct(rig.minio);
    const source = direct(rig.minio2);
    await createBucket(target, { bucket });
    await createBucket(source, { bucket: sourceBucket });
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < all.length) {
          const key = all[next++] as string;
          const side = onTarget.has(key) ? target : source;
          await putObject(side, {
            bucket: onTarget.has(key) ? bucket : sourceBucket,
            key,
            body: Buffer.from("x"),
          });
        }
      }),
    );
    await target.close();
    await source.close();
    await attachBucket(a, { bucket, source: rig.minio2, sourceBucket, mode: "migrate" });
    sdkA = gatewayClient(a, certs, USER);
    sdkB = gatewayClient(b, certs, USER);
  }, 300_000);

  afterAll(async () => {
    sdkA?.destroy();
    sdkB?.destroy();
    await a?.close();
    await b?.close();
  });

  it("a full ListObjectsV2 fetches each backend page once: no page is asked for twice", async () => {
    const before = await pagesFetched(a);
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: sdkA, pageSize: 1000 },
      { Bucket: bucket },
    )) {
      for (const o of page.Contents ?? []) keys.push(o.Key as string);
    }
    expect(keys).toEqual(all);
    const after = await pagesFetched(a);
    // 1,250 keys a side: two backend pages each. Without carrying pages between the three
    // client pages, each asked both backends again (about three pages a side, plus read-ahead).
    expect(after.target - before.target).toBeLessThanOrEqual(2);
    expect(after.source - before.source).toBeLessThanOrEqual(2);
    expect(
      await metric(a, "s3gw_migrate_listing_pages_reused_total", 'side="target"'),
    ).toBeGreaterThan(0);
  });

  it("a v1 listing paged by its markers is exact and fetches each backend page once", async () => {
    const before = await pagesFetched(a);
    const keys: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await sdkA.send(
        new ListObjectsCommand({
          Bucket: bucket,
          MaxKeys: 700,
          ...(marker === undefined ? {} : { Marker: marker }),
        }),
      );
      for (const o of page.Contents ?? []) keys.push(o.Key as string);
      if (page.IsTruncated !== true) break;
      marker = keys.at(-1);
    }
    expect(keys).toEqual(all);
    const after = await pagesFetched(a);
    expect(after.target - before.target).toBeLessThanOrEqual(2);
    expect(after.source - before.source).toBeLessThanOrEqual(2);
  });

  it("a token issued by one gateway continues on another that shares the secret", async () => {
    const keys: string[] = [];
    let token: string | undefined;
    for (let page = 0; ; page++) {
      // Pages alternate between the two gateways.
      const client = page % 2 === 0 ? sdkA : sdkB;
      const r = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          MaxKeys: 400,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const o of r.Contents ?? []) keys.push(o.Key as string);
      expect(r.KeyCount).toBe((r.Contents ?? []).length);
      if (r.IsTruncated !== true) break;
      token = r.NextContinuationToken;
    }
    expect(keys).toEqual(all);
  });

  it("a key written and a key deleted through the gateway between two pages show in the next", async () => {
    const first = await sdkA.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 100 }));
    const last = first.Contents?.at(-1)?.Key as string;
    expect(last).toBe(all[99]);
    // Right after the page's end: inside the backend pages the first page parked.
    const written = `${last}-new`;
    // A key only the source holds: the delete must reach the source.
    const deleted = all[101] as string;
    expect(onTarget.has(deleted)).toBe(false);
    await sdkA.send(new PutObjectCommand({ Bucket: bucket, Key: written, Body: "n" }));
    await sdkA.send(new DeleteObjectCommand({ Bucket: bucket, Key: deleted }));
    try {
      const second = await sdkA.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          MaxKeys: 100,
          ContinuationToken: first.NextContinuationToken as string,
        }),
      );
      const keys = (second.Contents ?? []).map((o) => o.Key as string);
      expect(keys[0]).toBe(written);
      expect(keys).not.toContain(deleted);
      expect(keys.slice(1)).toEqual(all.slice(100, 200).filter((k) => k !== deleted));
    } finally {
      // The last test of the file: the bucket is not listed again.
      await sdkA.send(new DeleteObjectCommand({ Bucket: bucket, Key: written }));
    }
  });
});
