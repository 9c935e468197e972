// Each backend fault docs/listing.md lists, against the rig's real servers: what the server
// answers when asked directly (logged, not asserted: a later pin may fix it), and that the
// merged listing is exact on the same data anyway (asserted, page by page, with the model).
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { afterAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import {
  abortMultipartUpload,
  createBucket,
  createMultipartUpload,
  deleteBucket,
  deleteObjects,
  listObjectsV2Page,
  putObject,
} from "../../s3/client-operations.js";
import {
  listMultipartUploadsPageFrom,
  listObjectVersionsPage,
  listObjectsV2PageFrom,
} from "../../s3/client-listing.js";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import { ListingPageCache, carryAcross } from "../../gateway/listing/page-cache.js";
import { S3ClientListSide } from "../../gateway/listing/s3-client-side.js";
import { wholeUploadsSide } from "../../gateway/listing/whole-uploads-side.js";
import type { ListSide, ListingOperation } from "../../gateway/listing/listing-types.js";
import { Rng, byteOrder, checkCase, type ListingCase } from "../helpers/listing-model.js";
import { generateBucket } from "../helpers/client-bucket.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const tokenKey = randomBytes(32);

function clientFor(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    region: server.region,
  });
}

const minio = clientFor(rig.minio);
const versitygw = clientFor(rig.versitygw);
const created: Array<[S3Client, string]> = [];

async function bucketWith(
  client: S3Client,
  keys: readonly string[],
  uploads: readonly string[] = [],
): Promise<string> {
  const bucket = `lstf-${randomBytes(5).toString("hex")}`;
  await createBucket(client, { bucket });
  created.push([client, bucket]);
  await Promise.all(keys.map((key) => putObject(client, { bucket, key, body: "x" })));
  for (const key of uploads) await createMultipartUpload(client, { bucket, key });
  return bucket;
}

afterAll(async () => {
  for (const [client, bucket] of created) {
    const up = await listMultipartUploadsPageFrom(client, { bucket });
    for (const u of up.uploads)
      await abortMultipartUpload(client, { bucket, key: u.key, uploadId: u.uploadId });
    for (;;) {
      const page = await listObjectsV2Page(client, { bucket });
      if (page.contents.length === 0) break;
      await deleteObjects(client, { bucket, objects: page.contents.map((c) => ({ key: c.key })) });
    }
    await deleteBucket(client, { bucket });
  }
  await minio.close();
  await versitygw.close();
});

function lister(operation: ListingOperation, target: ListSide, source: ListSide) {
  return async (rawQuery: string): Promise<string> => {
    const r = await mergedListing({
      operation,
      bucket: "merged",
      rawQuery,
      sides: { target, source },
      tokenKey,
      signal: new AbortController().signal,
    });
    return await text(r.body);
  };
}

async function exact(
  c: ListingCase,
  keys: readonly string[],
  target: ListSide,
  source: ListSide,
  facts = {},
): Promise<void> {
  const outcome = await checkCase(c, keys, facts, lister(c.operation, target, source));
  expect(outcome.pages).toBeGreaterThan(0);
}

describe("backend faults the merged listing works around", () => {
  it("MinIO: a v1 marker outside the prefix (NotImplemented) is normalised, never passed down", async () => {
    const t = await bucketWith(minio, ["p/a", "p/c"]);
    const s = await bucketWith(versitygw, ["p/b"]);
    const direct = await minio
      .request({ method: "GET", bucket: t, query: { prefix: "p/", marker: "a" } })
      .then(
        async (r) => `200 (${(await text(r.body)).length} bytes)`,
        (e: unknown) => (e as { code?: string }).code,
      );
    console.log(`MinIO v1 prefix=p/ marker=a directly: ${direct}`);
    const target = new S3ClientListSide({ name: "target", client: minio, bucket: t });
    const source = new S3ClientListSide({ name: "source", client: versitygw, bucket: s });
    for (const marker of ["a", "p", "p/", "p/a", "q", "\u{10ffff}"]) {
      await exact(
        { operation: "ListObjects", prefix: "p/", marker, maxKeys: 1, encodeUrl: false },
        ["p/a", "p/b", "p/c"],
        target,
        source,
      );
    }
  });

  it("MinIO: CommonPrefixes of a delimiter other than '/' are rolled up by the gateway (MinIO repeats them)", async () => {
    const keys = ["a!1", "a!2", "a!3", "b!1", "b!2", "c", "d!x!y", "e"];
    const t = await bucketWith(minio, keys.slice(0, 5));
    const s = await bucketWith(minio, keys.slice(3));
    // Directly: page MinIO with delimiter "!" and max-keys 1, at most 20 pages.
    const seen: string[] = [];
    let token: string | undefined;
    for (let i = 0; i < 20; i++) {
      const r = await minio.request({
        method: "GET",
        bucket: t,
        query: { "list-type": "2", delimiter: "!", "max-keys": "1", "continuation-token": token },
      });
      const xml = await text(r.body);
      seen.push(...[...xml.matchAll(/<Prefix>([^<]+)<\/Prefix>/g)].map((m) => m[1] as string));
      token = /<NextContinuationToken>([^<]+)</.exec(xml)?.[1];
      if (token === undefined) break;
    }
    console.log(
      `MinIO delimiter=! max-keys=1 directly: prefixes ${JSON.stringify(seen)}${token === undefined ? "" : " (still truncated after 20 pages)"}`,
    );
    const target = new S3ClientListSide({ name: "target", client: minio, bucket: t });
    const source = new S3ClientListSide({ name: "source", client: minio, bucket: s });
    for (const maxKeys of [1, 2, 3, 7]) {
      for (const operation of ["ListObjects", "ListObjectsV2"] as const) {
        await exact({ operation, delimiter: "!", maxKeys, encodeUrl: false }, keys, target, source);
      }
    }
  });

  it("MinIO: keys of nested directories skipped after start-after with a small max-keys are listed (backends paged by 1,000)", async () => {
    const keys = [
      "Ａ!%Ａ",
      "Ａ!中😀",
      "Ａ%~/Ａé%!/b!",
      "Ａ%é!",
      "Ａ+ a",
      "Ａ-%/0é",
      "Ａ/0",
      "Ａ/b%~Ａ",
      "Ａ/b/a",
      "Ａ/ba/z/é+a+",
      "Ａ/k~",
      "Ａ/éa/0é/éz~%",
      "Ａ0",
      "Ａ0-",
      "Ａb%-",
      "Ａbz",
    ];
    const t = await bucketWith(minio, keys);
    const s = await bucketWith(versitygw, ["Ａ/0"]);
    // Directly: one short page after each key in turn (the sequence that showed the fault).
    const wrong: string[] = [];
    for (const startAfter of keys) {
      const direct = await listObjectsV2PageFrom(minio, { bucket: t, startAfter, maxEntries: 2 });
      const got = direct.contents.map((c) => c.key);
      const want = keys.filter((k) => byteOrder(k, startAfter) > 0).slice(0, got.length);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        wrong.push(`after ${startAfter}: ${JSON.stringify(got)} (S3: ${JSON.stringify(want)})`);
      }
    }
    console.log(
      `MinIO max-keys=2 after each key directly: ${wrong.length} wrong pages\n${wrong.join("\n")}`,
    );
    const target = new S3ClientListSide({ name: "target", client: minio, bucket: t });
    const source = new S3ClientListSide({ name: "source", client: versitygw, bucket: s });
    for (const maxKeys of [1, 2, 3]) {
      for (const marker of [undefined, "Ａ/b/a", "Ａ/0", "Ａ%é!"]) {
        await exact(
          {
            operation: "ListObjectsV2",
            maxKeys,
            encodeUrl: false,
            ...(marker === undefined ? {} : { marker }),
          },
          keys,
          target,
          source,
        );
      }
    }
  });

  it("MinIO: a start-after inside a directory with objects and subdirectories gets a short page that claims to be the last; the merge resumes by MinIO's own tokens", async () => {
    // The target keys of the 5,000-key client test with the seed that showed it: "a/" holds
    // objects and "a/b/c/", top-level names sort around "a/", "new/" holds 1,100 target-only keys.
    const keys = [...generateBucket(new Rng(1650053879))]
      .filter(([, placed]) => placed.target !== undefined)
      .map(([key]) => key)
      .sort(byteOrder);
    const t = await bucketWith(minio, keys);
    const s = await bucketWith(versitygw, ["a.txt", "zz.txt"]);
    const startAfter = keys.find((k) => k.startsWith("a/")) as string;
    for (const maxEntries of [100, 1000]) {
      const direct = await listObjectsV2PageFrom(minio, { bucket: t, startAfter, maxEntries });
      const rest = keys.filter((k) => byteOrder(k, startAfter) > 0);
      console.log(
        `MinIO start-after=${startAfter} max-keys=${maxEntries} directly: ${direct.contents.length} keys, IsTruncated ${direct.isTruncated} (S3: ${Math.min(maxEntries, rest.length)} keys, IsTruncated ${rest.length > maxEntries})`,
      );
    }
    // The merged listing as the gateway runs it: pages carried from one client page to the
    // next, backends resumed by their own tokens.
    const union = [...new Set([...keys, "zz.txt"])].sort(byteOrder);
    // Each page on the same gateway (parked pages), and each page on another gateway (nothing
    // parked: the token says where each side can be read again, by MinIO's own token).
    for (const [maxKeys, gatewayPerPage] of [
      [1000, false],
      [700, false],
      [1000, true],
      [300, true],
    ] as const) {
      let cache = new ListingPageCache({ maxEntries: 64_000, ttlMs: 60_000 });
      const listed: string[] = [];
      let token: string | undefined;
      for (;;) {
        if (gatewayPerPage) cache = new ListingPageCache({ maxEntries: 64_000, ttlMs: 60_000 });
        const sides = {
          target: cache.side(
            { bucket: "merged", side: "target", backend: "t" },
            new S3ClientListSide({ name: "target", client: minio, bucket: t }),
          ),
          source: cache.side(
            { bucket: "merged", side: "source", backend: "s" },
            new S3ClientListSide({ name: "source", client: versitygw, bucket: s }),
          ),
        };
        const r = await mergedListing({
          operation: "ListObjectsV2",
          bucket: "merged",
          rawQuery:
            `max-keys=${maxKeys}` +
            (token === undefined ? "" : `&continuation-token=${encodeURIComponent(token)}`),
          sides,
          tokenKey,
          signal: new AbortController().signal,
          carry: carryAcross([sides.target, sides.source]),
        });
        const xml = await text(r.body);
        listed.push(...[...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1] as string));
        token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1];
        if (token === undefined) break;
      }
      expect(listed, `max-keys ${maxKeys}, a gateway per page: ${gatewayPerPage}`).toEqual(union);
    }
  });

  it("MinIO: ListMultipartUploads (exact-key prefix, no key-marker) is listed whole and paged by the gateway", async () => {
    const keys = ["a", "a/b", "b", "b/c/d", "ba", "c", "z"];
    const t = await bucketWith(minio, [], keys.slice(0, 4));
    const s = await bucketWith(versitygw, [], ["b", "c", "z"]);
    const direct = await listMultipartUploadsPageFrom(minio, { bucket: t, prefix: "b" });
    console.log(
      `MinIO uploads prefix=b directly: ${JSON.stringify(direct.uploads.map((u) => u.key))} (S3: ["b","b/c/d"])`,
    );
    const chains = new Map<string, string[]>();
    for (const [client, bucket] of [
      [minio, t],
      [versitygw, s],
    ] as const) {
      const all = await listMultipartUploadsPageFrom(client, { bucket });
      for (const u of all.uploads) chains.set(u.key, [...(chains.get(u.key) ?? []), u.uploadId]);
    }
    const target = wholeUploadsSide(
      new S3ClientListSide({ name: "target", client: minio, bucket: t }),
    );
    const source = new S3ClientListSide({ name: "source", client: versitygw, bucket: s });
    const uploadKeys = [...chains.keys()].sort(byteOrder);
    for (const c of [
      { prefix: "b" },
      { prefix: "b", delimiter: "/" },
      { marker: "b" },
      { maxKeys: 1 },
      { maxKeys: 2, delimiter: "/" },
    ]) {
      await exact(
        { operation: "ListMultipartUploads", encodeUrl: false, ...c },
        uploadKeys,
        target,
        source,
        { uploadIdsOf: (k: string) => chains.get(k) ?? [] },
      );
    }
  });

  it("versitygw: deeper CommonPrefixes in ListObjectVersions with a delimiter are folded again", async () => {
    const keys = ["a+/x", "a/b", "a/k/x", "a/\uff21 a/y", "a0!/z", "a0"];
    const t = await bucketWith(minio, ["a/b"]);
    const s = await bucketWith(versitygw, keys);
    const direct = await listObjectVersionsPage(versitygw, {
      bucket: s,
      delimiter: "/",
      keyMarker: "a+/",
    });
    console.log(
      `versitygw versions delimiter=/ key-marker=a+/ directly: prefixes ${JSON.stringify(direct.commonPrefixes)} (S3: ["a/","a0!/"])`,
    );
    const target = new S3ClientListSide({ name: "target", client: minio, bucket: t });
    const source = new S3ClientListSide({ name: "source", client: versitygw, bucket: s });
    for (const marker of [undefined, "a+/", "a/", "a/b"]) {
      for (const maxKeys of [1, 2, 1000]) {
        await exact(
          {
            operation: "ListObjectVersions",
            delimiter: "/",
            maxKeys,
            encodeUrl: false,
            ...(marker === undefined ? {} : { marker }),
          },
          keys,
          target,
          source,
        );
      }
    }
  });

  it("versitygw: '+' left unencoded by encoding-type=url; the gateway asks without it and encodes as S3", async () => {
    const keys = ["a+b c", "a b+c", "plus+", "sp ace", "pct%2B"];
    const t = await bucketWith(minio, ["a+b c"]);
    const s = await bucketWith(versitygw, keys);
    const r = await versitygw.request({
      method: "GET",
      bucket: s,
      query: { "list-type": "2", "encoding-type": "url" },
    });
    const raw = [...(await text(r.body)).matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
    console.log(
      `versitygw encoding-type=url directly: ${JSON.stringify(raw)} (S3: a%2Bb+c, a+b%2Bc, ...)`,
    );
    const target = new S3ClientListSide({ name: "target", client: minio, bucket: t });
    const source = new S3ClientListSide({ name: "source", client: versitygw, bucket: s });
    for (const operation of ["ListObjects", "ListObjectsV2"] as const) {
      for (const maxKeys of [1, 1000]) {
        await exact({ operation, maxKeys, encodeUrl: true }, keys, target, source);
      }
    }
    const xml = await lister("ListObjectsV2", target, source)("list-type=2&encoding-type=url");
    expect(xml).toContain("<Key>a%2Bb+c</Key>");
    expect(xml).toContain("<Key>a+b%2Bc</Key>");
  });
});
