// Merged listings through the gateway (migrate mode part 2): the listing model of
// test/helpers/listing-model.ts paged to the end through s3gw over TLS (random key sets split
// over a MinIO target and a versitygw source; random queries) and @aws-sdk/client-s3's paginator
// over one migrate-mode bucket: each must see exactly the union of both buckets. The Debian CLIs
// over a migrate-mode bucket are in gateway-listing-clients.test.ts.
// Replay a run with LISTING_SEED=<seed> (printed at the start).

import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import {
  ListObjectsV2Command,
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
} from "../helpers/gateway-harness.js";
import {
  Rng,
  byteOrder,
  checkCase,
  fitPages,
  generateCase,
  generateKeySet,
  listingSeed,
} from "../helpers/listing-model.js";

const rig = inject("rig");
const USER = testCredential("listing-user");
const seed = listingSeed();
console.log(`gateway listing: LISTING_SEED=${seed}`);
const CASES = Number(process.env["LISTING_CASES"] ?? 24);

/** Decoded query pairs of a raw query, for our client (which encodes them as S3 does). */
function pairs(rawQuery: string): [string, string][] {
  if (rawQuery === "") return [];
  return rawQuery.split("&").map((part) => {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    return [decodeURIComponent(name), decodeURIComponent(value)];
  });
}

describe("merged listings through the gateway (target MinIO, source versitygw)", () => {
  let certs: TestCerts;
  let gw: TestGateway;
  let raw: S3Client;
  let sdk: SdkClient;
  const rng = new Rng(seed);
  const bucket = `glst-${randomBytes(4).toString("hex")}`;
  const sourceBucket = `${bucket}-src`;
  const split = generateKeySet(rng, { size: 240, bulk: 60 });
  const onTarget = new Set([...split.both, ...split.targetOnly]);
  const union = [...split.both, ...split.targetOnly, ...split.sourceOnly].sort(byteOrder);
  const sizeOf = (key: string): number => (onTarget.has(key) ? 2 : 5);

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER],
    });
    const direct = (server: typeof rig.minio): S3Client =>
      new S3Client({
        endpoint: server.endpoint,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
        region: server.region,
      });
    const target = direct(rig.minio);
    const source = direct(rig.versitygw);
    await createBucket(target, { bucket });
    await createBucket(source, { bucket: sourceBucket });
    const puts: [S3Client, string, string, number][] = [];
    for (const k of [...split.both, ...split.targetOnly]) puts.push([target, bucket, k, 2]);
    for (const k of [...split.both, ...split.sourceOnly]) puts.push([source, sourceBucket, k, 5]);
    let next = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < puts.length) {
          const [client, b, key, size] = puts[next++] as [S3Client, string, string, number];
          await putObject(client, { bucket: b, key, body: Buffer.alloc(size, 0x61) });
        }
      }),
    );
    await attachBucket(gw, { bucket, source: rig.versitygw, sourceBucket, mode: "migrate" });
    raw = new S3Client({
      endpoint: gw.url,
      credentials: { accessKeyId: USER.accessKeyId, secretAccessKey: USER.secretAccessKey },
      region: rig.minio.region,
      ca: certs.ca,
    });
    sdk = gatewayClient(gw, certs, USER);
  }, 300_000);

  afterAll(async () => {
    await raw?.close();
    await gw?.close();
  });

  const list =
    (extra: [string, string][]) =>
    async (rawQuery: string): Promise<string> => {
      const res = await raw.request({
        method: "GET",
        bucket,
        query: [...extra, ...pairs(rawQuery)],
      });
      return await text(res.body);
    };

  for (const operation of ["ListObjectsV2", "ListObjects"] as const) {
    it(`${operation}: ${CASES} random queries paged to the end equal the model of the union`, async () => {
      for (let i = 0; i < CASES; i++) {
        const c = fitPages(generateCase(rng, operation, union), union, undefined, 10);
        await checkCase(c, union, { sizeOf }, list([]));
      }
    });
  }

  it("ListObjectVersions (unversioned pair): random queries", async () => {
    for (let i = 0; i < Math.ceil(CASES / 3); i++) {
      const c = fitPages(generateCase(rng, "ListObjectVersions", union), union, undefined, 10);
      await checkCase(c, union, { sizeOf }, list([]));
    }
  });

  it("tokens: a forged, altered or foreign token is InvalidArgument", async () => {
    const first = await sdk.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 3 }));
    const token = first.NextContinuationToken as string;
    expect(token).toBeTruthy();
    const cmd = async (t: string): Promise<unknown> =>
      sdk.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          MaxKeys: 3,
          ContinuationToken: t,
        }),
      );
    const altered = token.slice(0, -2) + (token.endsWith("A") ? "B" : "A") + token.slice(-1);
    await expect(cmd(altered)).rejects.toMatchObject({ name: "InvalidArgument" });
    await expect(cmd("bm90IGEgdG9rZW4")).rejects.toMatchObject({ name: "InvalidArgument" });
    // Bound to the query: the same token with another prefix is foreign.
    await expect(
      sdk.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          MaxKeys: 3,
          Prefix: "x",
          ContinuationToken: token,
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidArgument" });
  });

  it("the SDK's paginator sees the union exactly once, in order", async () => {
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: sdk, pageSize: 37 },
      { Bucket: bucket },
    )) {
      for (const o of page.Contents ?? []) keys.push(o.Key as string);
      expect(page.KeyCount).toBe((page.Contents ?? []).length);
    }
    expect(keys).toEqual(union);
  });
});
