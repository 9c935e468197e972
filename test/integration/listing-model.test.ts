// The merged listing's main proof: random key sets on two real servers (MinIO target with a
// versitygw source, and MinIO with a second MinIO), hundreds of random queries paged to the end
// through the engine, every page compared with the model's listing of the union.
// Replay a run with LISTING_SEED=<seed> (printed at the start).
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
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
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import { S3ClientListSide } from "../../gateway/listing/s3-client-side.js";
import { wholeUploadsSide } from "../../gateway/listing/whole-uploads-side.js";
import type { ListSide, ListingOperation } from "../../gateway/listing/listing-types.js";
import {
  Rng,
  byteOrder,
  checkCase,
  generateCase,
  generateKeySet,
  listingSeed,
  fitPages,
  type KeySplit,
} from "../helpers/listing-model.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const seed = listingSeed();
console.log(`listing model: LISTING_SEED=${seed}`);

const CASES = Number(process.env["LISTING_CASES"] ?? 45);
const TARGET_SIZE = 2;
const SOURCE_SIZE = 5;

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

interface Pair {
  label: string;
  target: RigServer;
  source: RigServer;
}

const pairs: Pair[] = [
  { label: "MinIO target, versitygw source", target: rig.minio, source: rig.versitygw },
  { label: "MinIO target, MinIO source", target: rig.minio, source: rig.minio2 },
];

pairs.forEach((pair, pairIndex) => {
  describe(`merged listing model: ${pair.label}`, () => {
    const rng = new Rng(seed + pairIndex);
    const target = clientFor(pair.target);
    const source = clientFor(pair.source);
    const targetBucket = `lst-t-${randomBytes(4).toString("hex")}`;
    const sourceBucket = `lst-s-${randomBytes(4).toString("hex")}`;
    const split: KeySplit = generateKeySet(rng, { size: 320, bulk: 240 });
    const onTarget = new Set([...split.both, ...split.targetOnly]);
    const union = [...split.both, ...split.targetOnly, ...split.sourceOnly].sort(byteOrder);
    const uploads = new Map<string, string[]>();
    // The last backend exchanges, printed when a case fails (to tell an engine bug from a
    // backend fault).
    const journal: string[] = [];
    const journaled = (side: S3ClientListSide): ListSide => ({
      name: side.name,
      listPage: async (request, signal) => {
        const page = await side.listPage(request, signal);
        journal.push(
          `${side.name} ${JSON.stringify(request)} -> ${JSON.stringify(page.entries.map((e) => (e.type === "prefix" ? `P:${e.prefix}` : e.key)))} truncated=${page.isTruncated}`,
        );
        if (journal.length > 12) journal.shift();
        return page;
      },
    });
    // MinIO's ListMultipartUploads is not a listing (docs/listing.md): its sides list uploads whole.
    const forServer = (server: RigServer, side: ListSide): ListSide =>
      server.kind === "minio" ? wholeUploadsSide(side) : side;
    const sides = {
      target: forServer(
        pair.target,
        journaled(new S3ClientListSide({ name: "target", client: target, bucket: targetBucket })),
      ),
      source: forServer(
        pair.source,
        journaled(new S3ClientListSide({ name: "source", client: source, bucket: sourceBucket })),
      ),
    };
    const check: typeof checkCase = async (...args) => {
      try {
        return await checkCase(...args);
      } catch (err) {
        console.log(`journal:\n${journal.join("\n")}`);
        throw err;
      }
    };
    const tokenKey = randomBytes(32);
    const list =
      (operation: ListingOperation) =>
      async (rawQuery: string): Promise<string> => {
        const r = await mergedListing({
          operation,
          bucket: "merged",
          rawQuery,
          sides,
          tokenKey,
          signal: new AbortController().signal,
        });
        expect(r.status).toBe(200);
        return await text(r.body);
      };

    beforeAll(async () => {
      await createBucket(target, { bucket: targetBucket });
      await createBucket(source, { bucket: sourceBucket });
      const puts: Array<[S3Client, string, string, number]> = [];
      for (const k of [...split.both, ...split.targetOnly])
        puts.push([target, targetBucket, k, TARGET_SIZE]);
      for (const k of [...split.both, ...split.sourceOnly])
        puts.push([source, sourceBucket, k, SOURCE_SIZE]);
      await pool(puts, 12, async ([client, bucket, key, size]) => {
        await putObject(client, { bucket, key, body: Buffer.alloc(size, 0x61) });
      });
      // Uploads: some keys with uploads on one side, some on both, some with two on a side.
      const uploadKeys = union.filter(() => rng.chance(0.08)).slice(0, 45);
      const starts: Array<[S3Client, string, string]> = [];
      for (const k of uploadKeys) {
        const where = rng.int(3);
        const count = 1 + rng.int(2);
        for (let i = 0; i < count; i++) {
          if (where !== 1) starts.push([target, targetBucket, k]);
          if (where !== 0) starts.push([source, sourceBucket, k]);
        }
      }
      await pool(starts, 6, async ([client, bucket, key]) => {
        await createMultipartUpload(client, { bucket, key });
      });
      // Each side's chain order for a key is the backend's (by initiation); read it back directly.
      for (const [client, bucket] of [
        [target, targetBucket],
        [source, sourceBucket],
      ] as const) {
        let keyMarker: string | undefined;
        let uploadIdMarker: string | undefined;
        for (;;) {
          const page = await listMultipartUploadsPageFrom(client, {
            bucket,
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
    }, 300_000);

    afterAll(async () => {
      for (const [client, bucket] of [
        [target, targetBucket],
        [source, sourceBucket],
      ] as const) {
        let keyMarker: string | undefined;
        for (;;) {
          const page = await listMultipartUploadsPageFrom(client, { bucket, keyMarker });
          await pool(page.uploads, 6, async (u) =>
            abortMultipartUpload(client, { bucket, key: u.key, uploadId: u.uploadId }),
          );
          if (!page.isTruncated) break;
          keyMarker = page.nextKeyMarker;
        }
        for (;;) {
          const page = await listObjectsV2Page(client, { bucket });
          if (page.contents.length === 0) break;
          await deleteObjects(client, {
            bucket,
            objects: page.contents.map((c) => ({ key: c.key })),
          });
        }
        await deleteBucket(client, { bucket });
        await client.close();
      }
    }, 300_000);

    const sizeOf = (key: string): number => (onTarget.has(key) ? TARGET_SIZE : SOURCE_SIZE);

    for (const operation of ["ListObjectsV2", "ListObjects"] as const) {
      it(`${operation}: ${CASES} random queries paged to the end equal the model of the union`, async () => {
        let items = 0;
        let pages = 0;
        for (let i = 0; i < CASES; i++) {
          const c = fitPages(generateCase(rng, operation, union), union, undefined, 12);
          const outcome = await check(c, union, { sizeOf }, list(operation));
          items += outcome.items;
          pages += outcome.pages;
        }
        console.log(`${pair.label} ${operation}: ${CASES} cases, ${pages} pages, ${items} entries`);
      });
    }

    it(`ListObjectVersions (unversioned pair): ${Math.ceil(CASES / 3)} random queries`, async () => {
      for (let i = 0; i < Math.ceil(CASES / 3); i++) {
        const c = fitPages(generateCase(rng, "ListObjectVersions", union), union, undefined, 12);
        await check(c, union, { sizeOf }, list("ListObjectVersions"));
      }
    });

    it(`ListMultipartUploads (uploads on both sides): ${Math.ceil(CASES / 3)} random queries`, async () => {
      const uploadKeys = [...uploads.keys()];
      // Expected chain of a key: the target's uploads, then the source's.
      const chainOf = (key: string): string[] => uploads.get(key) ?? [];
      for (let i = 0; i < Math.ceil(CASES / 3); i++) {
        const c = fitPages(
          generateCase(rng, "ListMultipartUploads", union),
          uploadKeys,
          (k) => chainOf(k).length,
        );
        await check(c, uploadKeys, { uploadIdsOf: chainOf }, list("ListMultipartUploads"));
      }
    });
  });
});
