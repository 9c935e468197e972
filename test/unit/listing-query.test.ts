// Parsing the listing parameters as S3 defines them, and the positions the merge starts from.
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import { compareKeys, prefixUpperBound } from "../../s3/key-order.js";
import { MAX_KEY_BYTES, lastKeyUnder, normalizeStart } from "../../s3/listing-bounds.js";
import { parseListingQuery } from "../../gateway/listing/listing-query.js";

describe("parseListingQuery", () => {
  it("reads every ListObjectsV2 parameter, decoding %XX and keeping '+' literal", () => {
    expect(
      parseListingQuery(
        "ListObjectsV2",
        "list-type=2&prefix=a%20b%2Bc&delimiter=%2F&max-keys=7&start-after=a%2Fx&encoding-type=url&fetch-owner=true&continuation-token=t.k",
      ),
    ).toEqual({
      operation: "ListObjectsV2",
      prefix: "a b+c",
      delimiter: "/",
      maxKeys: 7,
      marker: "a/x",
      encodeUrl: true,
      fetchOwner: true,
      continuationToken: "t.k",
    });
    expect(parseListingQuery("ListObjectsV2", "list-type=2&prefix=a+b").prefix).toBe("a+b");
  });

  it("caps max-keys at 1,000, defaults to 1,000, accepts 0", () => {
    expect(parseListingQuery("ListObjects", "max-keys=1500").maxKeys).toBe(1000);
    expect(parseListingQuery("ListObjects", "").maxKeys).toBe(1000);
    expect(parseListingQuery("ListObjects", "max-keys=0").maxKeys).toBe(0);
    expect(parseListingQuery("ListMultipartUploads", "uploads&max-uploads=3").maxKeys).toBe(3);
  });

  it("an empty delimiter is no delimiter", () => {
    expect(parseListingQuery("ListObjects", "delimiter=").delimiter).toBeUndefined();
  });

  it("rejects bad values with InvalidArgument", () => {
    for (const [op, q] of [
      ["ListObjects", "max-keys=-1"],
      ["ListObjects", "max-keys=1.5"],
      ["ListObjects", "max-keys=4294967296"],
      ["ListObjects", "encoding-type=xml"],
      ["ListObjectsV2", "fetch-owner=yes"],
      ["ListObjects", "prefix=%FF"],
      ["ListObjects", "prefix=%G1"],
      ["ListObjectVersions", "versions&version-id-marker=v1"],
    ] as const) {
      let err: unknown;
      try {
        parseListingQuery(op, q);
      } catch (e) {
        err = e;
      }
      expect(err, q).toBeInstanceOf(S3Error);
      expect((err as S3Error).code).toBe("InvalidArgument");
    }
  });

  it("ignores upload-id-marker without key-marker, as S3 documents", () => {
    expect(
      parseListingQuery("ListMultipartUploads", "uploads&upload-id-marker=u").idMarker,
    ).toBeUndefined();
    expect(
      parseListingQuery("ListMultipartUploads", "uploads&key-marker=k&upload-id-marker=u"),
    ).toMatchObject({ marker: "k", idMarker: "u" });
  });
});

describe("listing positions", () => {
  it("a marker below the prefix's range lists from the beginning, above it lists nothing", () => {
    expect(normalizeStart(undefined, "p/")).toEqual({ kind: "beginning" });
    expect(normalizeStart("a", "p/")).toEqual({ kind: "beginning" });
    expect(normalizeStart("p", "p/")).toEqual({ kind: "beginning" });
    expect(normalizeStart("p/x", "p/")).toEqual({ kind: "after", after: "p/x" });
    expect(normalizeStart("p0", "p/")).toEqual({ kind: "end" });
    expect(normalizeStart("q", "p/")).toEqual({ kind: "end" });
    expect(normalizeStart("x", "")).toEqual({ kind: "after", after: "x" });
  });

  it("lastKeyUnder is a 1,024-byte key at or after every valid key under the prefix", () => {
    for (const prefix of [
      "",
      "a/",
      "caf\u00e9/",
      "\u{1f600}",
      "x".repeat(1021),
      "x".repeat(1022),
      "x".repeat(1023),
    ]) {
      const bound = lastKeyUnder(prefix) as string;
      expect(Buffer.byteLength(bound)).toBe(MAX_KEY_BYTES);
      expect(bound.startsWith(prefix)).toBe(true);
      for (const key of [
        prefix + "\uffff",
        prefix + "\u{10ffff}",
        prefix + "z".repeat(MAX_KEY_BYTES - Buffer.byteLength(prefix)),
      ]) {
        if (Buffer.byteLength(key) <= MAX_KEY_BYTES)
          expect(compareKeys(key, bound)).toBeLessThanOrEqual(0);
      }
      // The next key after the prefix's range sorts after the bound.
      const upper = prefixUpperBound(prefix);
      if (upper !== undefined) expect(compareKeys(upper, bound)).toBeGreaterThan(0);
    }
    expect(lastKeyUnder("x".repeat(1025))).toBeUndefined();
  });
});
