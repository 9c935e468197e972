// The merged-listing engine against in-memory backends that answer as S3 defines: the model
// test's case generator and checker at unit-test speed (the real-server proof is
// test/integration/listing-model.test.ts), and the roll-up, tie and fault rules by name.
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import type { ListingOperation, ListSide } from "../../gateway/listing/listing-types.js";
import {
  MemoryListSide,
  Rng,
  byteOrder,
  checkCase,
  fitPages,
  generateCase,
  generateKeySet,
  listingSeed,
  type MemorySideFaults,
} from "../helpers/listing-model.js";

const seed = listingSeed();
console.log(`listing merge unit: LISTING_SEED=${seed}`);
const tokenKey = randomBytes(32);

function lister(operation: ListingOperation, target: ListSide, source: ListSide) {
  return async (rawQuery: string): Promise<string> => {
    const r = await mergedListing({
      operation,
      bucket: "b",
      rawQuery,
      sides: { target, source },
      tokenKey,
      signal: new AbortController().signal,
    });
    return await text(r.body);
  };
}

function sides(
  target: Record<string, number>,
  source: Record<string, number>,
  faults: { target?: MemorySideFaults; source?: MemorySideFaults } = {},
): { target: MemoryListSide; source: MemoryListSide } {
  return {
    target: new MemoryListSide("target", new Map(Object.entries(target)), faults.target),
    source: new MemoryListSide("source", new Map(Object.entries(source)), faults.source),
  };
}

async function listAll(
  operation: ListingOperation,
  s: { target: ListSide; source: ListSide },
  rawQuery: string,
): Promise<string> {
  return await lister(operation, s.target, s.source)(rawQuery);
}

describe("merged listing over in-memory backends (seeded model)", () => {
  it("random key sets and queries, every operation, equal the model of the union", async () => {
    const rng = new Rng(seed);
    for (let round = 0; round < 2; round++) {
      const split = generateKeySet(rng, { size: 150, bulk: 60 + rng.int(100) });
      const t = new Map<string, number>();
      const s = new Map<string, number>();
      for (const k of split.both) {
        t.set(k, 2);
        s.set(k, 5);
      }
      for (const k of split.targetOnly) t.set(k, 2);
      for (const k of split.sourceOnly) s.set(k, 5);
      const union = [...t.keys(), ...split.sourceOnly].sort(byteOrder);
      const target = new MemoryListSide("target", t);
      const source = new MemoryListSide("source", s);
      const sizeOf = (k: string): number => (t.has(k) ? 2 : 5);
      for (const operation of ["ListObjectsV2", "ListObjects", "ListObjectVersions"] as const) {
        for (let i = 0; i < 40; i++) {
          const c = fitPages(generateCase(rng, operation, union), union, undefined, 15);
          await checkCase(c, union, { sizeOf }, lister(operation, target, source));
        }
      }
      // Uploads: chains on both sides, the target's first.
      const tu = new Map<string, string[]>();
      const su = new Map<string, string[]>();
      for (const k of union.filter(() => rng.chance(0.2))) {
        const where = rng.int(3);
        if (where !== 1)
          tu.set(
            k,
            Array.from({ length: 1 + rng.int(3) }, (_, i) => `t-${i}-${k}`),
          );
        if (where !== 0)
          su.set(
            k,
            Array.from({ length: 1 + rng.int(3) }, (_, i) => `s-${i}-${k}`),
          );
      }
      const ut = new MemoryListSide("target", new Map(), {}, tu);
      const us = new MemoryListSide("source", new Map(), {}, su);
      const uploadKeys = [...new Set([...tu.keys(), ...su.keys()])];
      const chainOf = (k: string): string[] => [...(tu.get(k) ?? []), ...(su.get(k) ?? [])];
      for (let i = 0; i < 40; i++) {
        const c = fitPages(
          generateCase(rng, "ListMultipartUploads", uploadKeys),
          uploadKeys,
          (k) => chainOf(k).length,
          15,
        );
        await checkCase(
          c,
          uploadKeys,
          { uploadIdsOf: chainOf },
          lister("ListMultipartUploads", ut, us),
        );
      }
    }
  }, 120_000);
});

describe("merged listing rules", () => {
  it("a key on both sides is listed once, with the target's copy", async () => {
    const s = sides({ a: 2, b: 2 }, { b: 5, c: 5 });
    const xml = await listAll("ListObjectsV2", s, "list-type=2");
    expect(xml.match(/<Key>/g)).toHaveLength(3);
    expect(xml).toContain(
      "<Key>b</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>2</Size>",
    );
    expect(xml).toContain("<KeyCount>3</KeyCount>");
  });

  it("a CommonPrefix present on both sides appears once and counts once toward max-keys", async () => {
    const s = sides({ "d/1": 2, e: 2 }, { "d/2": 5, f: 5 });
    const xml = await listAll("ListObjectsV2", s, "list-type=2&delimiter=%2F&max-keys=2");
    expect(xml).toContain("<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>");
    expect(xml.match(/<Prefix>d\/<\/Prefix>/g)).toHaveLength(1);
    expect(xml).toContain("<KeyCount>2</KeyCount>");
    expect(xml).toContain("<IsTruncated>true</IsTruncated>");
  });

  it("an empty page from one side does not end the listing early", async () => {
    const s = sides({}, { a: 5, b: 5, c: 5 });
    const xml = await listAll("ListObjects", s, "max-keys=2");
    expect(xml).toContain("<IsTruncated>true</IsTruncated>");
    expect(xml).not.toContain("<NextMarker>");
  });

  it("resumes past every key under a CommonPrefix (v1 NextMarker is the prefix)", async () => {
    const s = sides({ "a/1": 2, "a/2": 2, b: 2 }, { "a/3": 5 });
    const first = await listAll("ListObjects", s, "delimiter=%2F&max-keys=1");
    expect(first).toContain("<NextMarker>a/</NextMarker>");
    const second = await listAll("ListObjects", s, "delimiter=%2F&max-keys=1&marker=a%2F");
    expect(second).toContain("<Key>b</Key>");
    expect(second).toContain("<IsTruncated>false</IsTruncated>");
  });

  it("rolls up a delimiter other than '/' itself and never passes it down", async () => {
    const s = sides({ "x!1": 2, "x!2": 2, "y!": 2 }, { "x!3": 5, z: 5 });
    const xml = await listAll("ListObjectsV2", s, "list-type=2&delimiter=%21");
    expect(xml).toContain("<Prefix>x!</Prefix>");
    expect(xml).toContain("<Prefix>y!</Prefix>");
    expect(xml).toContain("<Key>z</Key>");
    for (const r of [...s.target.requests, ...s.source.requests])
      expect(r.delimiter).toBeUndefined();
  });

  it("a marker outside the prefix's range is normalised, never passed down", async () => {
    const s = sides({ "p/a": 2, "p/b": 2 }, { "p/c": 5 });
    const before = await listAll("ListObjects", s, "prefix=p%2F&marker=a");
    expect(before.match(/<Key>/g)).toHaveLength(3);
    for (const r of [...s.target.requests, ...s.source.requests])
      expect(r.startAfter).toBeUndefined();
    const after = await listAll("ListObjects", s, "prefix=p%2F&marker=q");
    expect(after).not.toContain("<Key>");
  });

  it("encoding-type=url encodes keys, prefixes, markers and the delimiter as S3 does", async () => {
    const s = sides({ "a b+c%/d": 2, "é/x": 2 }, {});
    const xml = await listAll(
      "ListObjects",
      s,
      "encoding-type=url&delimiter=%2F&marker=%20&prefix=",
    );
    expect(xml).toContain("<Prefix>a+b%2Bc%25/</Prefix>");
    expect(xml).toContain("<Prefix>%C3%A9/</Prefix>");
    expect(xml).toContain("<Marker>+</Marker>");
    expect(xml).toContain("<Delimiter>/</Delimiter>");
    expect(xml).toContain("<EncodingType>url</EncodingType>");
  });

  it("max-keys 0 answers an empty, complete page without asking the backends", async () => {
    const s = sides({ a: 2 }, { b: 5 });
    const xml = await listAll("ListObjectsV2", s, "list-type=2&max-keys=0");
    expect(xml).toContain("<KeyCount>0</KeyCount>");
    expect(xml).toContain("<IsTruncated>false</IsTruncated>");
    expect(s.target.requests).toHaveLength(0);
  });

  it("reads ahead one page per side, but a short client page costs one request per side", async () => {
    const keys = Object.fromEntries(
      Array.from({ length: 2500 }, (_, i) => [`k${String(i).padStart(4, "0")}`, 2]),
    );
    const short = sides(keys, keys);
    await listAll("ListObjectsV2", short, "list-type=2&max-keys=5");
    expect([short.target.requests.length, short.source.requests.length]).toEqual([1, 1]);
    // A page of 400 (under 500): the read-ahead waits for half of the backend page, so none.
    const medium = sides(keys, {});
    await listAll("ListObjectsV2", medium, "list-type=2&max-keys=400");
    expect(medium.target.requests.map((r) => r.startAfter)).toEqual([undefined]);
    // A full page (500 and more) keeps one backend page in flight from the start: the second
    // page is asked for as soon as the first arrives, the third as soon as the second does
    // (the gateway parks it for the next client page, page-cache.ts).
    const full = sides(keys, {});
    await listAll("ListObjectsV2", full, "list-type=2");
    expect(full.target.requests.map((r) => r.startAfter)).toEqual([undefined, "k0999", "k1999"]);
  });

  it("max-keys above 1,000 lists 1,000", async () => {
    const keys = Object.fromEntries(
      Array.from({ length: 1500 }, (_, i) => [`k${String(i).padStart(4, "0")}`, 2]),
    );
    const xml = await listAll("ListObjectsV2", sides(keys, {}), "list-type=2&max-keys=1500");
    expect(xml).toContain("<MaxKeys>1000</MaxKeys>");
    expect(xml.match(/<Key>/g)).toHaveLength(1000);
  });
});

describe("merged listing faults: 503, never a partial listing", () => {
  async function code(p: Promise<unknown>): Promise<string> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(S3Error);
    return `${(err as S3Error).code} ${(err as S3Error).status}`;
  }

  it("a side that is down is ServiceUnavailable", async () => {
    const s = sides({ a: 2 }, { b: 5 }, { source: { down: true } });
    expect(await code(listAll("ListObjectsV2", s, "list-type=2"))).toBe("ServiceUnavailable 503");
  });

  it("a side failing on its second page (after the first was merged) is ServiceUnavailable", async () => {
    const keys = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`k${i + 10000}`, 2]));
    const s = sides(keys, { a: 5 }, { target: { failRequest: 2 } });
    expect(await code(listAll("ListObjectsV2", s, "list-type=2"))).toBe("ServiceUnavailable 503");
  });

  it("a backend that answers the same page again is ServiceUnavailable instead of a loop", async () => {
    const keys = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`k${i + 10000}`, 2]));
    const s = sides(keys, {}, { target: { repeatFirstPage: true } });
    expect(await code(listAll("ListObjects", s, ""))).toBe("ServiceUnavailable 503");
  });

  it("a truncated empty backend page is ServiceUnavailable instead of a loop", async () => {
    const s = sides({ a: 2 }, {}, { target: { emptyTruncated: true } });
    expect(await code(listAll("ListObjects", s, ""))).toBe("ServiceUnavailable 503");
  });

  it("a backend listing out of order is ServiceUnavailable", async () => {
    const s = sides({ a: 2, b: 2, c: 2 }, {}, { target: { unordered: true } });
    expect(await code(listAll("ListObjects", s, ""))).toBe("ServiceUnavailable 503");
  });

  it("bad parameters are InvalidArgument", async () => {
    const s = sides({ a: 2 }, {});
    for (const q of [
      "list-type=2&max-keys=-1",
      "list-type=2&max-keys=x",
      "list-type=2&encoding-type=base64",
      "list-type=2&fetch-owner=maybe",
      "list-type=2&max-keys=99999999999",
    ]) {
      expect(await code(listAll("ListObjectsV2", s, q))).toBe("InvalidArgument 400");
    }
    expect(await code(listAll("ListObjectVersions", s, "versions&version-id-marker=null"))).toBe(
      "InvalidArgument 400",
    );
  });
});

describe("merged listing metrics and cancellation", () => {
  it("reports listings, pages and entries per side, and duplicates folded", async () => {
    const s = sides({ a: 2, b: 2, "d/1": 2 }, { b: 5, c: 5, "d/2": 5 });
    const counts = {
      listings: 0,
      pages: { target: 0, source: 0 },
      entries: { target: 0, source: 0 },
      dups: 0,
    };
    const r = await mergedListing({
      operation: "ListObjectsV2",
      bucket: "b",
      rawQuery: "list-type=2&delimiter=%2F",
      sides: s,
      tokenKey,
      signal: new AbortController().signal,
      metrics: {
        listing: () => counts.listings++,
        pageFetched: (side) => counts.pages[side]++,
        entriesRead: (side, n) => (counts.entries[side] += n),
        duplicatesFolded: (n) => (counts.dups += n),
      },
    });
    await text(r.body);
    expect(counts).toEqual({
      listings: 1,
      pages: { target: 1, source: 1 },
      entries: { target: 3, source: 3 },
      dups: 2,
    });
  });

  it("a client that goes away aborts the listing and its backend requests", async () => {
    const controller = new AbortController();
    let aborted = 0;
    const hanging: ListSide = {
      name: "source",
      listPage: (_request, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted++;
            reject(new Error("aborted"));
          });
        }),
    };
    const target = new MemoryListSide("target", new Map([["a", 1]]));
    const pending = mergedListing({
      operation: "ListObjects",
      bucket: "b",
      rawQuery: "",
      sides: { target, source: hanging },
      tokenKey,
      signal: controller.signal,
    });
    controller.abort(new Error("client went away"));
    await expect(pending).rejects.toThrow("client went away");
    expect(aborted).toBe(1);
  });
});
