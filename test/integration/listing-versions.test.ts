// ListObjectVersions over a versioned pair (MinIO target, MinIO source): a key's whole version
// chain comes from the target when the target has any version or delete marker of it, else from
// the source (docs/listing.md); paging by NextKeyMarker/NextVersionIdMarker resumes inside a chain.
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import { createBucket, deleteBucket, deleteObject, putObject } from "../../s3/client-operations.js";
import { listObjectVersionsPage } from "../../s3/client-listing.js";
import { parseListVersionsResult } from "../../s3/xml-list-versions.js";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import { S3ClientListSide } from "../../gateway/listing/s3-client-side.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");

function clientFor(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    region: server.region,
  });
}

async function enableVersioning(client: S3Client, bucket: string): Promise<void> {
  const body =
    '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>';
  const r = await client.request({ method: "PUT", bucket, query: { versioning: "" }, body });
  r.body.resume();
}

async function chains(client: S3Client, bucket: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const page = await listObjectVersionsPage(client, { bucket });
  for (const v of page.versions) out.set(v.key, [...(out.get(v.key) ?? []), v.versionId]);
  return out;
}

describe("ListObjectVersions over a versioned MinIO pair", () => {
  const target = clientFor(rig.minio);
  const source = clientFor(rig.minio2);
  const tb = `lstv-t-${randomBytes(4).toString("hex")}`;
  const sb = `lstv-s-${randomBytes(4).toString("hex")}`;
  let expected: Array<[string, string]> = [];

  beforeAll(async () => {
    await createBucket(target, { bucket: tb });
    await createBucket(source, { bucket: sb });
    await enableVersioning(target, tb);
    await enableVersioning(source, sb);
    for (let i = 0; i < 2; i++) await putObject(target, { bucket: tb, key: "a", body: `t${i}` });
    // A key deleted on the target during migrate mode: only a delete marker there.
    await deleteObject(target, { bucket: tb, key: "c" });
    for (let i = 0; i < 3; i++) await putObject(source, { bucket: sb, key: "a", body: `s${i}` });
    for (let i = 0; i < 2; i++) await putObject(source, { bucket: sb, key: "b", body: `s${i}` });
    await putObject(source, { bucket: sb, key: "c", body: "s" });
    await putObject(source, { bucket: sb, key: "d/e", body: "s" });
    const t = await chains(target, tb);
    const s = await chains(source, sb);
    expected = [];
    for (const key of ["a", "b", "c", "d/e"]) {
      const chain = t.get(key) ?? s.get(key) ?? [];
      for (const id of chain) expected.push([key, id]);
    }
  });

  afterAll(async () => {
    for (const [client, bucket] of [
      [target, tb],
      [source, sb],
    ] as const) {
      const page = await listObjectVersionsPage(client, { bucket });
      for (const v of page.versions) {
        const r = await client.request({
          method: "DELETE",
          bucket,
          key: v.key,
          query: { versionId: v.versionId },
        });
        r.body.resume();
      }
      await deleteBucket(client, { bucket });
    }
    await target.close();
    await source.close();
  });

  it("takes each key's chain from one side, target first, and pages inside chains", async () => {
    expect(expected.map(([k]) => k)).toEqual(["a", "a", "b", "b", "c", "d/e"]);
    const sides = {
      target: new S3ClientListSide({ name: "target", client: target, bucket: tb }),
      source: new S3ClientListSide({ name: "source", client: source, bucket: sb }),
    };
    const tokenKey = randomBytes(32);
    for (const maxKeys of [1, 2, 3, 1000]) {
      const got: Array<[string, string]> = [];
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const q = new URLSearchParams({ versions: "", "max-keys": String(maxKeys) });
        if (keyMarker !== undefined) q.set("key-marker", keyMarker);
        if (idMarker !== undefined) q.set("version-id-marker", idMarker);
        const r = await mergedListing({
          operation: "ListObjectVersions",
          bucket: "merged",
          rawQuery: q.toString().replace(/\+/g, "%20"),
          sides,
          tokenKey,
          signal: new AbortController().signal,
        });
        const page = parseListVersionsResult(await text(r.body));
        expect(page.versions.length).toBe(Math.min(maxKeys, expected.length - got.length));
        for (const v of page.versions) got.push([v.key, v.versionId]);
        if (!page.isTruncated) break;
        keyMarker = page.nextKeyMarker;
        idMarker = page.nextVersionIdMarker;
      }
      expect(got, `max-keys ${maxKeys}`).toEqual(expected);
    }
  });
});
