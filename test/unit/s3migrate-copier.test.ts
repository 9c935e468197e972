import { createHash } from "node:crypto";
import { describe, it, expect } from "vitest";
import { S3ClientError } from "../../s3/client.js";
import {
  compositeEtagOf,
  compositeEtagParts,
  BandwidthLimiter,
  CopyError,
  S3Copier,
  copyableMetadata,
  plainMd5OfEtag,
  taggingHeader,
} from "../../s3migrate/copier.js";

describe("copier helpers", () => {
  it("finds the MD5 only in plain ETags", () => {
    expect(plainMd5OfEtag('"D41D8CD98F00B204E9800998ECF8427E"')).toBe(
      "d41d8cd98f00b204e9800998ecf8427e",
    );
    expect(plainMd5OfEtag('"58e86a6d632445003e398a67e84df36d-3"')).toBeUndefined();
    expect(plainMd5OfEtag("")).toBeUndefined();
  });

  it("copies standard metadata and x-amz-meta-*, without aws-chunked in Content-Encoding", () => {
    expect(
      copyableMetadata({
        "content-type": "text/plain",
        "content-encoding": "aws-chunked, gzip",
        "cache-control": "no-cache",
        expires: "Wed, 02 Jan 2030 03:04:05 GMT",
        "x-amz-meta-colour": "blue",
        "x-amz-version-id": "v1",
        etag: '"x"',
        "content-length": "5",
      }),
    ).toEqual({
      "content-type": "text/plain",
      "content-encoding": "gzip",
      "cache-control": "no-cache",
      expires: "Wed, 02 Jan 2030 03:04:05 GMT",
      "x-amz-meta-colour": "blue",
    });
    expect(copyableMetadata({ "content-encoding": "aws-chunked" })).toEqual({});
  });

  it("renders tags as a URL query for x-amz-tagging", () => {
    expect(
      taggingHeader([
        { key: "owner", value: "ops team" },
        { key: "a&b", value: "c=d" },
      ]),
    ).toBe("owner=ops%20team&a%26b=c%3Dd");
  });

  it.each([
    [new S3ClientError("SlowDown", { status: 503 }), { retryable: true, slowDown: true }],
    [new S3ClientError("SlowDown", { status: 429 }), { retryable: true, slowDown: true }],
    [
      new S3ClientError("ConditionalRequestConflict", { status: 409 }),
      { retryable: true, slowDown: false },
    ],
    [new S3ClientError("InternalError", { status: 500 }), { retryable: true, slowDown: false }],
    [new S3ClientError("BadDigest", { status: 400 }), { retryable: true, slowDown: false }],
    [new S3ClientError("AccessDenied", { status: 403 }), { retryable: false, slowDown: false }],
    [
      new CopyError("ETagMismatch", "x", { retryable: false }),
      { retryable: false, slowDown: false },
    ],
  ])("classifies %s", (err, expected) => {
    const copier = new S3Copier({} as never);
    expect(copier.describeError(err)).toMatchObject(expected);
  });

  it("caps bandwidth with a token bucket", async () => {
    const limiter = new BandwidthLimiter(100_000);
    const start = Date.now();
    // The first second's burst passes at once; the next 50 KB must wait about half a second.
    await limiter.take(100_000);
    await limiter.take(50_000);
    expect(Date.now() - start).toBeGreaterThanOrEqual(400);
  });
});

describe("composite multipart ETags", () => {
  const md5 = (s: string): string => createHash("md5").update(s).digest("hex");

  it("is the MD5 of the parts' binary MD5s, then -N, as S3 computes it", () => {
    const parts = [md5("part one"), md5("part two"), md5("3")];
    const expected = createHash("md5")
      .update(Buffer.concat(parts.map((h) => Buffer.from(h, "hex"))))
      .digest("hex");
    expect(compositeEtagOf(parts.map((p) => `"${p}"`))).toBe(`${expected}-3`);
    // One flipped part changes it: this is what catches a corrupted part before Complete.
    expect(compositeEtagOf([parts[0]!, md5("part tw0"), parts[2]!])).not.toBe(`${expected}-3`);
  });

  it("is undefined when a part ETag is not an MD5 (encrypted or non-S3 targets)", () => {
    expect(compositeEtagOf([md5("a"), "not-an-md5"])).toBeUndefined();
  });

  it("reads the part count of composite ETags only", () => {
    expect(compositeEtagParts(`"${md5("x")}-12"`)).toBe(12);
    expect(compositeEtagParts(md5("x"))).toBeUndefined();
    expect(compositeEtagParts(`"${md5("x")}"`)).toBeUndefined();
    expect(compositeEtagParts("abc-3")).toBeUndefined();
  });
});
