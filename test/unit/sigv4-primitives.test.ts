/**
 * The building blocks of SigV4: URI encoding, raw path/query/header canonicalization, dates,
 * the signing key and its cache, and the signer's argument checks.
 */
import { describe, expect, it } from "vitest";
import {
  EMPTY_SHA256,
  canonicalHeaderValue,
  canonicalQuery,
  canonicalQueryFromParams,
  canonicalUriFromRaw,
  collectHeaders,
  formatAmzDate,
  parseAmzDate,
  parseRawQuery,
} from "../../s3/sigv4-canonical.js";
import { S3Error } from "../../s3/errors.js";
import { presignUrl, signRequest } from "../../s3/sigv4-sign.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import { signingKey, signingKeyCacheSize } from "../../s3/signing-key.js";
import {
  InvalidPercentEncodingError,
  encodeS3Path,
  percentDecode,
  uriEncode,
} from "../../s3/uri-encode.js";

describe("uriEncode", () => {
  it.each([
    ["unreserved kept", "AZaz09-_.~", "AZaz09-_.~"],
    ["space", "a b", "a%20b"],
    ["plus", "a+b", "a%2Bb"],
    ["sub-delims '()!* encoded (unlike encodeURIComponent)", "'()!*", "%27%28%29%21%2A"],
    ["slash encoded by default", "a/b", "a%2Fb"],
    ["reserved", "=&?#%:@$,;", "%3D%26%3F%23%25%3A%40%24%2C%3B"],
    ["two-byte UTF-8", "é", "%C3%A9"],
    ["three-byte UTF-8", "€", "%E2%82%AC"],
    ["four-byte UTF-8", "😀", "%F0%9F%98%80"],
  ])("%s", (_n, input, expected) => {
    expect(uriEncode(input)).toBe(expected);
  });

  it("keepSlash leaves / alone", () => {
    expect(uriEncode("a/b c/", { keepSlash: true })).toBe("a/b%20c/");
  });

  it("matches the SDKs' extended encodeURIComponent for every code point below U+0800", () => {
    // The AWS SDKs encode with encodeURIComponent plus !'()* → %XX; both must agree.
    for (let cp = 0; cp < 0x800; cp++) {
      const c = String.fromCodePoint(cp);
      const sdk = encodeURIComponent(c).replace(
        /[!'()*]/g,
        (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase(),
      );
      expect(uriEncode(c)).toBe(sdk);
    }
  });
});

describe("encodeS3Path", () => {
  it.each([
    [undefined, undefined, "/"],
    ["bucket", undefined, "/bucket"],
    ["bucket", "", "/bucket"],
    ["bucket", "a b/c+d", "/bucket/a%20b/c%2Bd"],
    ["bucket", "a//b", "/bucket/a//b"],
    ["bucket", "../x/./y", "/bucket/../x/./y"],
    ["bucket", "dir/", "/bucket/dir/"],
  ] as const)("(%s, %s) → %s", (bucket, key, expected) => {
    expect(encodeS3Path(bucket, key)).toBe(expected);
  });

  it("a key without a bucket is a programming error", () => {
    expect(() => encodeS3Path(undefined, "k")).toThrow(TypeError);
  });
});

describe("percentDecode", () => {
  it("decodes once; + stays a plus; upper and lower hex", () => {
    expect(percentDecode("%41%2b+%2525%e2%82%ac").toString("utf8")).toBe("A++%25€");
  });

  it.each(["%", "%4", "%zz", "a%g1"])("malformed %s throws InvalidPercentEncodingError", (s) => {
    expect(() => percentDecode(s)).toThrow(InvalidPercentEncodingError);
  });
});

describe("canonicalUriFromRaw", () => {
  it.each([
    ["/bucket/a%20b", "/bucket/a%20b"],
    ["/bucket/%7e%2d", "/bucket/~-"],
    ["/bucket/it's(1)!*", "/bucket/it%27s%281%29%21%2A"],
    ["/bucket/a+b", "/bucket/a%2Bb"],
    // %2F decodes to '/', which the canonical form keeps as '/' (decode once, re-encode).
    ["/bucket/a%2Fb", "/bucket/a/b"],
    ["/bucket/a//b/../c/.", "/bucket/a//b/../c/."],
    ["/", "/"],
  ])("%s → %s", (raw, expected) => {
    expect(canonicalUriFromRaw(raw)).toBe(expected);
  });
});

describe("parseRawQuery and canonical query", () => {
  it("first = splits name and value; empty segments skipped; valueless is empty", () => {
    const params = parseRawQuery("a=1=2&&uploads&b=&c=%2B+");
    expect(params.map((p) => [p.name, p.value])).toEqual([
      ["a", "1=2"],
      ["uploads", ""],
      ["b", ""],
      ["c", "++"],
    ]);
    expect(canonicalQueryFromParams(params)).toBe("a=1%3D2&b=&c=%2B%2B&uploads=");
  });

  it("omit drops a parameter by decoded name", () => {
    const params = parseRawQuery("X-Amz-Signature=abc&x=1");
    expect(canonicalQueryFromParams(params, { omit: new Set(["X-Amz-Signature"]) })).toBe("x=1");
  });

  it("sorts by encoded name (byte order), then encoded value", () => {
    // Decoded, "é" sorts after "~"; encoded, "%C3%A9" sorts before "~": the SDKs use the latter.
    expect(
      canonicalQuery([
        ["a~", ""],
        ["aé", ""],
        ["a", "2"],
        ["a", "10"],
        ["B", ""],
      ]),
    ).toBe("B=&a=10&a=2&a%C3%A9=&a~=");
    const fromRaw = canonicalQueryFromParams(parseRawQuery("a~=&a%C3%A9=&a=2&a=10&B"));
    expect(fromRaw).toBe("B=&a=10&a=2&a%C3%A9=&a~=");
  });
});

describe("canonical header values", () => {
  it("trim and collapse spaces and tabs", () => {
    expect(canonicalHeaderValue("  a \t  b  c ")).toBe("a b c");
  });

  it("collectHeaders lower-cases names and joins repeats with ','", () => {
    const m = collectHeaders([
      ["X-Amz-Meta-A", " 1 "],
      ["x-amz-meta-a", "2"],
      ["Host", "h"],
    ]);
    expect([...m]).toEqual([
      ["x-amz-meta-a", "1,2"],
      ["host", "h"],
    ]);
  });
});

describe("amz dates", () => {
  it("format and parse round-trip", () => {
    const d = new Date("2026-01-02T03:04:05.678Z");
    expect(formatAmzDate(d)).toBe("20260102T030405Z");
    expect(parseAmzDate("20260102T030405Z")?.toISOString()).toBe("2026-01-02T03:04:05.000Z");
  });

  it.each(["20261301T000000Z", "20260230T000000Z", "20260102T030405", "2026-01-02T03:04:05Z", ""])(
    "rejects %s",
    (s) => {
      expect(parseAmzDate(s)).toBeUndefined();
    },
  );
});

describe("signingKey", () => {
  it("derives the AWS documentation's example key", () => {
    // "Derive a signing key" example of the AWS SigV4 documentation (service iam).
    expect(
      signingKey(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830",
        "us-east-1",
        "iam",
      ).toString("hex"),
    ).toBe("c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  });

  it("a caller writing into the returned key does not corrupt the cache", () => {
    const a = signingKey("secret", "20260102", "us-east-1", "s3");
    const copy = Buffer.from(a);
    a.fill(0);
    expect(signingKey("secret", "20260102", "us-east-1", "s3")).toEqual(copy);
  });

  it("each scope part changes the key", () => {
    const base = signingKey("s", "20260102", "r", "s3").toString("hex");
    expect(signingKey("t", "20260102", "r", "s3").toString("hex")).not.toBe(base);
    expect(signingKey("s", "20260103", "r", "s3").toString("hex")).not.toBe(base);
    expect(signingKey("s", "20260102", "q", "s3").toString("hex")).not.toBe(base);
    expect(signingKey("s", "20260102", "r", "s4").toString("hex")).not.toBe(base);
  });

  it("the cache stays bounded however many credentials sign", () => {
    for (let i = 0; i < 1000; i++) signingKey(`secret-${i}`, "20260102", "us-east-1", "s3");
    expect(signingKeyCacheSize()).toBeLessThanOrEqual(128);
    expect(signingKeyCacheSize()).toBeGreaterThan(0);
  });
});

describe("signer arguments", () => {
  const creds = { accessKeyId: "AK", secretAccessKey: "SK" };
  const now = new Date("2026-01-02T03:04:05Z");

  it("host is required", () => {
    expect(() =>
      signRequest({ method: "GET", path: "/", headers: {}, payloadHash: EMPTY_SHA256 }, creds, {
        region: "r",
        now,
      }),
    ).toThrow(TypeError);
  });

  it("a header given twice (different case) is refused", () => {
    expect(() =>
      signRequest(
        {
          method: "GET",
          path: "/",
          headers: { host: "h", Range: "a", range: "b" },
          payloadHash: "x",
        },
        creds,
        { region: "r", now },
      ),
    ).toThrow(TypeError);
  });

  it("a caller's authorization, x-amz-date and x-amz-content-sha256 are replaced, not signed twice", () => {
    const plain = signRequest(
      { method: "GET", path: "/", headers: { host: "h" }, payloadHash: EMPTY_SHA256 },
      creds,
      { region: "r", now },
    );
    const resigned = signRequest(
      {
        method: "GET",
        path: "/",
        headers: {
          host: "h",
          authorization: "AWS4-HMAC-SHA256 old",
          "X-Amz-Date": "20000101T000000Z",
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
        payloadHash: EMPTY_SHA256,
      },
      creds,
      { region: "r", now },
    );
    expect(resigned).toEqual(plain);
  });

  it.each([0, 604801, 1.5, -1])("presign refuses expiresSeconds %s", (expiresSeconds) => {
    expect(() =>
      presignUrl({ method: "GET", origin: "https://h", path: "/k" }, creds, {
        region: "r",
        now,
        expiresSeconds,
      }),
    ).toThrow(RangeError);
  });

  it.each(["https://h/base", "ftp://h", "https://h?x=1"])("presign refuses origin %s", (origin) => {
    expect(() =>
      presignUrl({ method: "GET", origin, path: "/k" }, creds, {
        region: "r",
        now,
        expiresSeconds: 60,
      }),
    ).toThrow(TypeError);
  });

  it("presign signs the Host a client sends: default port dropped, other ports kept", () => {
    const u443 = presignUrl({ method: "GET", origin: "https://h:443", path: "/k" }, creds, {
      region: "r",
      now,
      expiresSeconds: 60,
    });
    expect(u443.startsWith("https://h/k?")).toBe(true);
    const u8443 = presignUrl({ method: "GET", origin: "https://h:8443", path: "/k" }, creds, {
      region: "r",
      now,
      expiresSeconds: 60,
    });
    expect(u8443.startsWith("https://h:8443/k?")).toBe(true);
    const verify = (url: string, host: string) => {
      const u = new URL(url);
      return verifySigV4(
        { method: "GET", rawUrl: u.pathname + u.search, rawHeaders: ["Host", host] },
        { region: "r", now, lookupSecret: () => "SK" },
      );
    };
    expect(() => verify(u443, "h")).not.toThrow();
    expect(() => verify(u8443, "h:8443")).not.toThrow();
    expect(() => verify(u8443, "h")).toThrow(S3Error);
  });
});
