import { describe, expect, it } from "vitest";
import {
  addressingRules,
  bucketFromHost,
  hostName,
  MAX_KEY_BYTES,
  resolveAddress,
} from "../../gateway/front/addressing.js";
import { S3Error } from "../../s3/errors.js";

const rules = addressingRules(["s3.example.com", "example.com"]);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof S3Error ? err.code : "not an S3Error";
  }
}

describe("hostName", () => {
  it.each([
    ["S3.Example.COM:443", "s3.example.com"],
    ["bucket.s3.example.com.", "bucket.s3.example.com"],
    ["bucket.s3.example.com.:8443", "bucket.s3.example.com"],
    ["[::1]:9000", "[::1]"],
    ["127.0.0.1:9000", "127.0.0.1"],
    ["", undefined],
  ])("%s → %s", (input, expected) => {
    expect(hostName(input)).toBe(expected);
  });
});

describe("bucketFromHost (virtual-hosted style only under configured domains)", () => {
  it.each([
    ["photos.s3.example.com", "photos"],
    ["PHOTOS.S3.EXAMPLE.COM:443", "photos"],
    ["photos.s3.example.com.", "photos"],
    ["my.dotted.bucket.s3.example.com", "my.dotted.bucket"],
    // the longest domain wins: not bucket "photos.s3" under example.com
    ["photos.s3.example.com", "photos"],
    ["other.example.com", "other"],
    ["s3.example.com", undefined],
    ["example.com", undefined],
    ["photos.example.org", undefined],
    ["evil-example.com", undefined],
    ["127.0.0.1:9000", undefined],
    ["[::1]:9000", undefined],
    [undefined, undefined],
  ])("%s → %s", (host, bucket) => {
    expect(bucketFromHost(host, rules)).toBe(bucket);
  });
});

describe("resolveAddress", () => {
  it("path style: bucket and key decoded once, `+` literal, `//` and dot segments kept", () => {
    expect(
      resolveAddress({ rawUrl: "/bkt/a%2Bb+c/..//x%2520?acl", host: "127.0.0.1" }, rules),
    ).toEqual({
      bucket: "bkt",
      key: "a+b+c/..//x%20",
      virtualHost: false,
      rawQuery: "acl",
    });
  });

  it("path style service and bucket levels", () => {
    expect(resolveAddress({ rawUrl: "/", host: "localhost" }, rules)).toMatchObject({
      bucket: undefined,
      key: undefined,
    });
    expect(resolveAddress({ rawUrl: "/bkt", host: "localhost" }, rules)).toMatchObject({
      bucket: "bkt",
      key: undefined,
    });
    expect(resolveAddress({ rawUrl: "/bkt/?list-type=2", host: "localhost" }, rules)).toMatchObject(
      {
        bucket: "bkt",
        key: undefined,
        rawQuery: "list-type=2",
      },
    );
  });

  it("virtual-hosted style takes the bucket from Host, the whole path as key", () => {
    expect(
      resolveAddress({ rawUrl: "/bkt2/k%C3%A9y", host: "photos.s3.example.com" }, rules),
    ).toEqual({
      bucket: "photos",
      key: "bkt2/kéy",
      virtualHost: true,
      rawQuery: "",
    });
    expect(
      resolveAddress({ rawUrl: "/?uploads", host: "photos.s3.example.com" }, rules),
    ).toMatchObject({
      bucket: "photos",
      key: undefined,
    });
  });

  it("ignores the authority of an absolute-form request line", () => {
    expect(
      resolveAddress({ rawUrl: "http://other.s3.example.com/bkt/k", host: "localhost" }, rules),
    ).toMatchObject({ bucket: "bkt", key: "k" });
  });

  it("accepts a 1,024-byte key and refuses 1,025 bytes with KeyTooLongError", () => {
    const ok = "é".repeat(MAX_KEY_BYTES / 2);
    const enc = encodeURIComponent(ok);
    expect(resolveAddress({ rawUrl: `/b/${enc}`, host: undefined }, rules).key).toBe(ok);
    expect(code(() => resolveAddress({ rawUrl: `/b/${enc}x`, host: undefined }, rules))).toBe(
      "KeyTooLongError",
    );
  });

  it.each([
    ["/b/%zz", "InvalidURI"],
    ["/b/%C3%28", "InvalidURI"],
    ["/b%2Fc/k", "InvalidBucketName"],
    ["/..%2F/k", "InvalidBucketName"],
    ["//k", "InvalidURI"],
    ["*", "InvalidURI"],
  ])("%s → %s", (rawUrl, expected) => {
    expect(code(() => resolveAddress({ rawUrl, host: "localhost" }, rules))).toBe(expected);
  });
});
