// Merged listings of migrate-mode buckets, as @aws-sdk/client-s3 sees them through s3gw: the
// listing model of test/helpers/listing-model.ts (random key sets split over a target and a
// source, random queries) paged to the end with the SDK's ListObjectsV2, ListObjects,
// ListObjectVersions and ListMultipartUploads commands, every page checked against the model of
// the union (page sizes, KeyCount, IsTruncated, next markers, encoding, and the size and ETag of
// the target's copy for keys on both sides). Two pairs: MinIO target with a versitygw source,
// and MinIO with a second MinIO.
// Replay a run with LISTING_SEED=<seed> (printed at the start); LISTING_CASES=<n> sets the
// cases per object operation and pair (ListObjectVersions and ListMultipartUploads get half).

import { createHash, randomBytes } from "node:crypto";
import {
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  type S3Client as SdkClient,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
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
import { listMultipartUploadsPageFrom } from "../../s3/client-listing.js";
import { s3UrlDecode } from "../../s3/xml.js";
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
  checkPages,
  fitPages,
  generateCase,
  generateKeySet,
  listingSeed,
  type CaseOutcome,
  type ListingCase,
  type ModelEntryFacts,
  type ModelPage,
  type PagePosition,
} from "../helpers/listing-model.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("sdk-listing-user");
const seed = listingSeed();
console.log(`gateway SDK listing: LISTING_SEED=${seed}`);
const CASES = Number(process.env["LISTING_CASES"] ?? 64);
/** Pages per case at most (fitPages raises a small max-keys over a large listing). */
const MAX_PAGES = 12;

/** Each side's body names the key and the side: sizes and ETags tell which copy was listed. */
const targetBody = (key: string): Buffer => Buffer.from(`T ${key}`);
const sourceBody = (key: string): Buffer => Buffer.from(`source ${key}`);
const etagOf = (body: Buffer): string => `"${createHash("md5").update(body).digest("hex")}"`;

function clientFor(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    region: server.region,
  });
}

async function pool<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** A seed of its own for each test, so that a failing test replays without the ones before it. */
function testRng(pairIndex: number, testIndex: number): Rng {
  return new Rng((seed + Math.imul(0x9e3779b9, pairIndex * 16 + testIndex + 1)) >>> 0);
}

/** An SDK answer's field that S3 always sends: its absence is a failure, not a default. */
function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the answer has no ${what}`);
  return value;
}

/**
 * The SDK's keys as S3 sent them: @aws-sdk/client-s3 v3 does not decode `encoding-type=url`
 * answers (botocore does), so decode here, and keep the raw strings for the model to check that
 * they are encoded as S3 encodes.
 */
function decoder(c: ListingCase, encodingType: string | undefined): (s: string) => string {
  if (c.encodeUrl !== (encodingType === "url")) {
    throw new Error(`EncodingType ${String(encodingType)} for encodeUrl=${c.encodeUrl}`);
  }
  return c.encodeUrl ? s3UrlDecode : (s) => s;
}

/** Entries and prefixes by name; uploads of one key keep their order (Array#sort is stable). */
function byName(items: ModelPage["items"]): ModelPage["items"] {
  return items.sort((a, b) => byteOrder(a.name, b.name));
}

/** The SDK input of the page of `c` at `position`. */
function sdkInput(
  c: ListingCase,
  bucket: string,
  position: PagePosition,
): Record<string, string | number | boolean> {
  const input: Record<string, string | number | boolean> = { Bucket: bucket };
  if (c.prefix !== undefined) input["Prefix"] = c.prefix;
  if (c.delimiter !== undefined) input["Delimiter"] = c.delimiter;
  if (c.encodeUrl) input["EncodingType"] = "url";
  if (c.maxKeys !== undefined)
    input[c.operation === "ListMultipartUploads" ? "MaxUploads" : "MaxKeys"] = c.maxKeys;
  const marker = position.marker ?? c.marker;
  switch (c.operation) {
    case "ListObjectsV2":
      if (c.fetchOwner === true) input["FetchOwner"] = true;
      if (c.marker !== undefined) input["StartAfter"] = c.marker;
      if (position.token !== undefined) input["ContinuationToken"] = position.token;
      break;
    case "ListObjects":
      if (marker !== undefined) input["Marker"] = marker;
      break;
    case "ListObjectVersions":
      if (marker !== undefined) input["KeyMarker"] = marker;
      if (position.idMarker !== undefined) input["VersionIdMarker"] = position.idMarker;
      break;
    case "ListMultipartUploads":
      if (marker !== undefined) input["KeyMarker"] = marker;
      if (position.idMarker !== undefined) input["UploadIdMarker"] = position.idMarker;
      break;
  }
  return input;
}

/** Sends the page of `c` at `position` through the SDK and gives it as a {@link ModelPage}. */
async function sdkPage(
  sdk: SdkClient,
  c: ListingCase,
  bucket: string,
  position: PagePosition,
  record: (input: unknown) => void,
): Promise<ModelPage> {
  const input = sdkInput(c, bucket, position);
  record(input);
  switch (c.operation) {
    case "ListObjectsV2":
    case "ListObjects": {
      const r =
        c.operation === "ListObjectsV2"
          ? await sdk.send(new ListObjectsV2Command(input as never))
          : await sdk.send(new ListObjectsCommand(input as never));
      const d = decoder(c, r.EncodingType);
      const contents = r.Contents ?? [];
      const prefixes = (r.CommonPrefixes ?? []).map((p) => required(p.Prefix, "Prefix"));
      const page: ModelPage = {
        items: byName([
          ...contents.map((o) => ({
            name: d(required(o.Key, "Key")),
            isPrefix: false,
            size: required(o.Size, "Size"),
            etag: required(o.ETag, "ETag"),
          })),
          ...prefixes.map((p) => ({ name: d(p), isPrefix: true })),
        ]),
        isTruncated: required(r.IsTruncated, "IsTruncated"),
        maxKeys: required(r.MaxKeys, "MaxKeys"),
        raw: [...contents.map((o) => o.Key as string), ...prefixes],
      };
      if (c.operation === "ListObjectsV2") {
        const v2 = r as { KeyCount?: number; NextContinuationToken?: string };
        page.keyCount = required(v2.KeyCount, "KeyCount");
        if (v2.NextContinuationToken !== undefined) page.nextToken = v2.NextContinuationToken;
      }
      if ("NextMarker" in r && r.NextMarker !== undefined) page.nextMarker = d(r.NextMarker);
      return page;
    }
    case "ListObjectVersions": {
      const r = await sdk.send(new ListObjectVersionsCommand(input as never));
      const d = decoder(c, r.EncodingType);
      // An unversioned pair: one `null` version per key, the latest; no delete markers.
      if ((r.DeleteMarkers ?? []).length > 0) throw new Error("delete markers listed");
      const versions = r.Versions ?? [];
      for (const v of versions) {
        if (v.VersionId !== "null" || v.IsLatest !== true)
          throw new Error(`version ${JSON.stringify(v)}: expected the latest null version`);
      }
      const prefixes = (r.CommonPrefixes ?? []).map((p) => required(p.Prefix, "Prefix"));
      const page: ModelPage = {
        items: byName([
          ...versions.map((v) => ({
            name: d(required(v.Key, "Key")),
            isPrefix: false,
            id: "null",
            size: required(v.Size, "Size"),
            etag: required(v.ETag, "ETag"),
          })),
          ...prefixes.map((p) => ({ name: d(p), isPrefix: true })),
        ]),
        isTruncated: required(r.IsTruncated, "IsTruncated"),
        maxKeys: required(r.MaxKeys, "MaxKeys"),
        raw: [...versions.map((v) => v.Key as string), ...prefixes],
      };
      if (r.NextKeyMarker !== undefined) page.nextMarker = d(r.NextKeyMarker);
      if (r.NextVersionIdMarker !== undefined) page.nextIdMarker = r.NextVersionIdMarker;
      return page;
    }
    case "ListMultipartUploads": {
      const r = await sdk.send(new ListMultipartUploadsCommand(input as never));
      const d = decoder(c, r.EncodingType);
      const uploads = r.Uploads ?? [];
      const prefixes = (r.CommonPrefixes ?? []).map((p) => required(p.Prefix, "Prefix"));
      const page: ModelPage = {
        items: byName([
          ...uploads.map((u) => ({
            name: d(required(u.Key, "Key")),
            isPrefix: false,
            id: required(u.UploadId, "UploadId"),
          })),
          ...prefixes.map((p) => ({ name: d(p), isPrefix: true })),
        ]),
        isTruncated: required(r.IsTruncated, "IsTruncated"),
        maxKeys: required(r.MaxUploads, "MaxUploads"),
        raw: [...uploads.map((u) => u.Key as string), ...prefixes],
      };
      if (r.NextKeyMarker !== undefined) page.nextMarker = d(r.NextKeyMarker);
      if (r.NextUploadIdMarker !== undefined) page.nextIdMarker = r.NextUploadIdMarker;
      return page;
    }
  }
}

/** Simpler variants of a case: one field fewer, or a shorter prefix or marker. */
function simpler(c: ListingCase): ListingCase[] {
  const out: ListingCase[] = [];
  const without = (field: keyof ListingCase): void => {
    if (c[field] === undefined) return;
    const next: Record<string, unknown> = { ...c };
    delete next[field];
    out.push(next as unknown as ListingCase);
  };
  if (c.encodeUrl) out.push({ ...c, encodeUrl: false });
  if (c.fetchOwner === true) out.push({ ...c, fetchOwner: false });
  without("marker");
  without("delimiter");
  without("prefix");
  if (c.maxKeys !== undefined && c.maxKeys < 1000) out.push({ ...c, maxKeys: 1000 });
  for (const field of ["prefix", "marker"] as const) {
    const value = c[field];
    if (value !== undefined && value !== "") {
      out.push({ ...c, [field]: Array.from(value).slice(0, -1).join("") });
    }
  }
  return out;
}

interface Pair {
  readonly label: string;
  readonly source: RigServer;
}

const pairs: Pair[] = [
  { label: "MinIO target, versitygw source", source: rig.versitygw },
  { label: "MinIO target, MinIO source", source: rig.minio2 },
];

let certs: TestCerts;
let gw: TestGateway;
let sdk: SdkClient;

beforeAll(async () => {
  certs = await makeTestCerts();
  gw = await startTestGateway({
    certs,
    target: { endpoint: rig.minio.endpoint, server: rig.minio },
    credentials: [USER],
  });
  sdk = gatewayClient(gw, certs, USER);
});

afterAll(async () => {
  sdk?.destroy();
  await gw?.close();
});

pairs.forEach((pair, pairIndex) => {
  describe(`merged listings through the gateway with @aws-sdk/client-s3: ${pair.label}`, () => {
    const rng = new Rng(seed + pairIndex);
    const target = clientFor(rig.minio);
    const source = clientFor(pair.source);
    const bucket = `gsdk-${randomBytes(4).toString("hex")}`;
    const sourceBucket = `${bucket}-src`;
    const split = generateKeySet(rng, { size: 240, bulk: 100 });
    const onTarget = new Set([...split.both, ...split.targetOnly]);
    const union = [...split.both, ...split.targetOnly, ...split.sourceOnly].sort(byteOrder);
    const winner = (key: string): Buffer => (onTarget.has(key) ? targetBody(key) : sourceBody(key));
    const facts: ModelEntryFacts = {
      sizeOf: (key) => winner(key).length,
      etagOf: (key) => etagOf(winner(key)),
    };
    /** Each key's uploads: the target's, then the source's (in each backend's order). */
    const uploads = new Map<string, string[]>();

    beforeAll(async () => {
      await createBucket(target, { bucket });
      await createBucket(source, { bucket: sourceBucket });
      const puts: Array<[S3Client, string, string, Buffer]> = [];
      for (const k of [...split.both, ...split.targetOnly])
        puts.push([target, bucket, k, targetBody(k)]);
      for (const k of [...split.both, ...split.sourceOnly])
        puts.push([source, sourceBucket, k, sourceBody(k)]);
      await pool(puts, 12, async ([client, b, key, body]) => {
        await putObject(client, { bucket: b, key, body });
      });
      // Uploads on about 40 keys, every shape in turn: only on the target, only on the source,
      // on both, two on the target, two on the source, two on the target and one on the source.
      const shapes: Array<[number, number]> = [
        [1, 0],
        [0, 1],
        [1, 1],
        [2, 0],
        [0, 2],
        [2, 1],
      ];
      const uploadKeys = union.filter(() => rng.chance(0.12)).slice(0, 42);
      expect(uploadKeys.length).toBeGreaterThanOrEqual(shapes.length);
      const starts: Array<[S3Client, string, string]> = [];
      uploadKeys.forEach((k, i) => {
        const [onT, onS] = shapes[i % shapes.length] as [number, number];
        for (let n = 0; n < onT; n++) starts.push([target, bucket, k]);
        for (let n = 0; n < onS; n++) starts.push([source, sourceBucket, k]);
      });
      await pool(starts, 6, async ([client, b, key]) => {
        await createMultipartUpload(client, { bucket: b, key });
      });
      // Each side's chain order for a key is the backend's (by initiation): read it back directly.
      for (const [client, b] of [
        [target, bucket],
        [source, sourceBucket],
      ] as const) {
        let keyMarker: string | undefined;
        let uploadIdMarker: string | undefined;
        for (;;) {
          const page = await listMultipartUploadsPageFrom(client, {
            bucket: b,
            keyMarker,
            uploadIdMarker,
          });
          for (const u of page.uploads)
            uploads.set(u.key, [...(uploads.get(u.key) ?? []), u.uploadId]);
          if (!page.isTruncated) break;
          keyMarker = page.nextKeyMarker;
          uploadIdMarker = page.nextUploadIdMarker;
        }
      }
      expect(uploads.size).toBe(uploadKeys.length);
      await attachBucket(gw, { bucket, source: pair.source, sourceBucket, mode: "migrate" });
    }, 300_000);

    afterAll(async () => {
      for (const [client, b] of [
        [target, bucket],
        [source, sourceBucket],
      ] as const) {
        let keyMarker: string | undefined;
        for (;;) {
          const page = await listMultipartUploadsPageFrom(client, { bucket: b, keyMarker });
          await pool(page.uploads, 6, async (u) =>
            abortMultipartUpload(client, { bucket: b, key: u.key, uploadId: u.uploadId }),
          );
          if (!page.isTruncated) break;
          keyMarker = page.nextKeyMarker;
        }
        for (;;) {
          const page = await listObjectsV2Page(client, { bucket: b });
          if (page.contents.length === 0) break;
          await deleteObjects(client, {
            bucket: b,
            objects: page.contents.map((o) => ({ key: o.key })),
          });
        }
        await deleteBucket(client, { bucket: b });
        await client.close();
      }
    }, 300_000);

    /**
     * Pages case `c` (number `index` of `test`) to its end through the SDK and checks it; on a
     * difference, shrinks the case to a simpler one that still fails and throws with both, the
     * seed and the SDK input of the failing page.
     */
    async function runCase(
      test: string,
      index: number,
      c: ListingCase,
      keys: readonly string[],
      caseFacts: ModelEntryFacts,
    ): Promise<CaseOutcome> {
      let last: unknown;
      const check = async (x: ListingCase, maxPages?: number): Promise<CaseOutcome> =>
        await checkPages(
          x,
          keys,
          caseFacts,
          (position) =>
            sdkPage(sdk, x, bucket, position, (input) => {
              last = input;
            }),
          maxPages === undefined ? {} : { maxPages },
        );
      try {
        return await check(c);
      } catch (err) {
        const first = `${(err as Error).message}\n  SDK input of the failing page: ${JSON.stringify(last)}`;
        // Greedy shrinking, bounded: a simpler case that still fails (not by paging too long).
        let smallest = c;
        let why = first;
        let tries = 0;
        for (let shrunk = true; shrunk && tries < 40;) {
          shrunk = false;
          for (const candidate of simpler(smallest)) {
            if (++tries > 40) break;
            try {
              await check(candidate, 200);
            } catch (e) {
              if ((e as Error).message.startsWith("too many pages")) continue;
              smallest = candidate;
              why = `${(e as Error).message}\n  SDK input of the failing page: ${JSON.stringify(last)}`;
              shrunk = true;
              break;
            }
          }
        }
        throw new Error(
          [
            `${pair.label}, ${test}, case #${index}, LISTING_SEED=${seed}:`,
            `  case: ${JSON.stringify(c)}`,
            `  ${first}`,
            `minimized to ${JSON.stringify(smallest)}:`,
            `  ${why}`,
          ].join("\n"),
          { cause: err },
        );
      }
    }

    const objectTests = [
      ["ListObjectsV2", CASES],
      ["ListObjects", CASES],
      ["ListObjectVersions", Math.ceil(CASES / 2)],
    ] as const;
    objectTests.forEach(([operation, count], testIndex) => {
      it(`${operation}: ${count} random queries paged to the end equal the model of the union`, async () => {
        const caseRng = testRng(pairIndex, testIndex);
        let pages = 0;
        let items = 0;
        for (let i = 0; i < count; i++) {
          const c = fitPages(generateCase(caseRng, operation, union), union, undefined, MAX_PAGES);
          const outcome = await runCase(operation, i, c, union, facts);
          pages += outcome.pages;
          items += outcome.items;
        }
        console.log(`${pair.label} ${operation}: ${count} cases, ${pages} pages, ${items} items`);
        expect(pages).toBeGreaterThanOrEqual(count);
      });
    });

    it("encoding-type=url: the SDK hands keys back as S3 encoded them; decoded, they are the keys", async () => {
      // The fixed keys of generateKeySet: "p…" and "sp…" hold no random keys.
      const r = await sdk.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: "p", EncodingType: "url" }),
      );
      expect(r.EncodingType).toBe("url");
      expect((r.Contents ?? []).map((o) => o.Key)).toEqual(["pct%25", "pct%2520", "plus%2Bsign"]);
      const cases: ListingCase[] = [];
      for (const operation of ["ListObjectsV2", "ListObjects", "ListObjectVersions"] as const) {
        cases.push(
          { operation, prefix: "p", maxKeys: 1, encodeUrl: true },
          { operation, prefix: "sp", encodeUrl: true },
          { operation, prefix: "caf", delimiter: "\u00e9", maxKeys: 1, encodeUrl: true },
          { operation, marker: "pct%", delimiter: "+", maxKeys: 2, encodeUrl: true },
        );
      }
      let items = 0;
      for (const [i, c] of cases.entries())
        items += (await runCase("encoding", i, c, union, facts)).items;
      expect(items).toBeGreaterThanOrEqual(cases.length);
    });

    it(`ListMultipartUploads (uploads on both sides): ${Math.ceil(CASES / 2)} random queries`, async () => {
      const caseRng = testRng(pairIndex, objectTests.length);
      const uploadKeys = [...uploads.keys()].sort(byteOrder);
      const chainOf = (key: string): readonly string[] => uploads.get(key) ?? [];
      const count = Math.ceil(CASES / 2);
      let pages = 0;
      let items = 0;
      for (let i = 0; i < count; i++) {
        // Positions and prefixes from the upload keys half of the time, else from all keys.
        const around = caseRng.chance(0.5) ? uploadKeys : union;
        const c = fitPages(
          generateCase(caseRng, "ListMultipartUploads", around),
          uploadKeys,
          (k) => chainOf(k).length,
          MAX_PAGES,
        );
        const outcome = await runCase("ListMultipartUploads", i, c, uploadKeys, {
          uploadIdsOf: chainOf,
        });
        pages += outcome.pages;
        items += outcome.items;
      }
      console.log(
        `${pair.label} ListMultipartUploads: ${count} cases, ${pages} pages, ${items} items`,
      );
      expect(pages).toBeGreaterThanOrEqual(count);
    });
  });
});
