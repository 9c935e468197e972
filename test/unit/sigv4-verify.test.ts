/**
 * verifySigV4: every rule of PITFALLS.md "SigV4 verification" as a named case, and a table of
 * tampered variants (one field at a time) with the exact S3 error code each must produce.
 */
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import {
  EMPTY_SHA256,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  authorizationHeader,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  collectHeaders,
  credentialScope,
  formatAmzDate,
  signature,
  stringToSign,
} from "../../s3/sigv4-canonical.js";
import { presignUrl, signRequest } from "../../s3/sigv4-sign.js";
import type { IncomingSigV4Request } from "../../s3/sigv4-types.js";
import { verifySigV4, type VerifyOptions } from "../../s3/sigv4-verify.js";
import { signingKey } from "../../s3/signing-key.js";
import { encodeS3Path } from "../../s3/uri-encode.js";

const AK = "AKIDVERIFYTEST";
const SK = "verify/secret+KEY/0123456789abcdefghijklm";
const CREDS = { accessKeyId: AK, secretAccessKey: SK };
const REGION = "us-east-1";
const HOST = "gw.example.test:8443";
const NOW = new Date("2026-01-02T03:04:05Z");
const MIN = 60_000;

const VERIFY: VerifyOptions = {
  region: REGION,
  now: NOW,
  lookupSecret: (ak) => (ak === AK ? SK : undefined),
};

/** What a test request is made of before signing. */
interface Spec {
  method?: string;
  /** Canonical (signed) path. */
  path?: string;
  /** Path as sent on the request line; the signed path unless given. */
  rawPath?: string;
  query?: [string, string][];
  /** Raw query as sent; built from `query` (encoded, in order) unless given. */
  rawQuery?: string;
  headers?: Record<string, string>;
  payloadHash?: string;
  now?: Date;
  region?: string;
  service?: string;
  creds?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

function encodeQuery(query: [string, string][]): string {
  return query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}

/** Signs with our signer and returns the request as the server sees it. */
function signed(spec: Spec = {}): IncomingSigV4Request {
  const method = spec.method ?? "GET";
  const path = spec.path ?? encodeS3Path("bucket", "dir/key.txt");
  const query = spec.query ?? [];
  const headers = { host: HOST, ...spec.headers };
  const added = signRequest(
    { method, path, query, headers, payloadHash: spec.payloadHash ?? EMPTY_SHA256 },
    spec.creds ?? CREDS,
    {
      region: spec.region ?? REGION,
      now: spec.now ?? NOW,
      ...(spec.service ? { service: spec.service } : {}),
    },
  );
  const rawQuery = spec.rawQuery ?? encodeQuery(query);
  return {
    method,
    rawUrl: (spec.rawPath ?? path) + (rawQuery === "" ? "" : `?${rawQuery}`),
    rawHeaders: Object.entries({ ...headers, ...added }).flat(),
  };
}

/** A presigned request as the server sees it (the URL's path and query, plus headers). */
function presigned(
  spec: { method?: string; path?: string; now?: Date; expires?: number; region?: string } = {},
  extraHeaders: Record<string, string> = {},
  signedHeaders: Record<string, string> = {},
  creds: Spec["creds"] = CREDS,
): IncomingSigV4Request {
  const url = new URL(
    presignUrl(
      {
        method: spec.method ?? "GET",
        origin: `https://${HOST}`,
        path: spec.path ?? "/bucket/key",
        headers: signedHeaders,
      },
      creds,
      { region: spec.region ?? REGION, now: spec.now ?? NOW, expiresSeconds: spec.expires ?? 3600 },
    ),
  );
  return {
    method: spec.method ?? "GET",
    rawUrl: url.pathname + url.search,
    rawHeaders: Object.entries({ Host: HOST, ...signedHeaders, ...extraHeaders }).flat(),
  };
}

/**
 * Signs by hand with the stage functions: for requests our signer will not produce (host or
 * x-amz-content-sha256 unsigned, a Date header instead of x-amz-date, no content hash).
 */
function manual(opts: {
  method?: string;
  rawUrl?: string;
  headers: [string, string][];
  signedHeaders: string[];
  payloadHash: string;
  datetime?: string;
}): IncomingSigV4Request {
  const datetime = opts.datetime ?? formatAmzDate(NOW);
  const scope = credentialScope(datetime.slice(0, 8), REGION, "s3");
  const rawUrl = opts.rawUrl ?? "/bucket/key";
  const creq = canonicalRequest({
    method: opts.method ?? "GET",
    canonicalUri: rawUrl,
    canonicalQuery: "",
    canonicalHeaders: canonicalHeaders(collectHeaders(opts.headers), opts.signedHeaders),
    signedHeaders: opts.signedHeaders,
    payloadHash: opts.payloadHash,
  });
  const sig = signature(
    signingKey(SK, datetime.slice(0, 8), REGION, "s3"),
    stringToSign(datetime, scope, creq),
  );
  return {
    method: opts.method ?? "GET",
    rawUrl,
    rawHeaders: [
      ...opts.headers.flat(),
      "Authorization",
      authorizationHeader(AK, scope, opts.signedHeaders, sig),
    ],
  };
}

function withHeader(req: IncomingSigV4Request, name: string, value: string): IncomingSigV4Request {
  return { ...req, rawHeaders: [...req.rawHeaders, name, value] };
}

function replaceHeader(
  req: IncomingSigV4Request,
  name: string,
  value: string,
): IncomingSigV4Request {
  const raw = [...req.rawHeaders];
  const i = raw.findIndex((n, idx) => idx % 2 === 0 && n.toLowerCase() === name);
  if (i < 0) throw new Error(`no header ${name}`);
  raw[i + 1] = value;
  return { ...req, rawHeaders: raw };
}

function withoutHeader(req: IncomingSigV4Request, name: string): IncomingSigV4Request {
  const raw: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const n = req.rawHeaders[i] as string;
    if (n.toLowerCase() !== name) raw.push(n, req.rawHeaders[i + 1] as string);
  }
  return { ...req, rawHeaders: raw };
}

function header(req: IncomingSigV4Request, name: string): string {
  const i = req.rawHeaders.findIndex((n, idx) => idx % 2 === 0 && n.toLowerCase() === name);
  return req.rawHeaders[i + 1] as string;
}

/** Runs the verifier and returns the S3Error it threw (fails if it did not throw one). */
function failure(req: IncomingSigV4Request, opts: VerifyOptions = VERIFY): S3Error {
  try {
    verifySigV4(req, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(S3Error);
    return err as S3Error;
  }
  throw new Error("verifySigV4 accepted the request");
}

describe("verifySigV4: header auth accepted", () => {
  it("a GET signed by our signer, payload hash of the empty body", () => {
    const v = verifySigV4(signed(), VERIFY);
    expect(v).toEqual({
      accessKeyId: AK,
      authType: "header",
      payload: "hex",
      payloadSha256: EMPTY_SHA256,
      signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date"],
      region: REGION,
    });
  });

  it("UNSIGNED-PAYLOAD → payload unsigned, no hash", () => {
    const v = verifySigV4(signed({ method: "PUT", payloadHash: UNSIGNED_PAYLOAD }), VERIFY);
    expect(v.payload).toBe("unsigned");
    expect(v.payloadSha256).toBeUndefined();
  });

  it("an upper-case hex payload hash is accepted and reported lower case", () => {
    const hash = "A".repeat(64);
    const v = verifySigV4(signed({ method: "PUT", payloadHash: hash }), VERIFY);
    expect(v.payloadSha256).toBe("a".repeat(64));
  });

  it.each([
    [STREAMING_SIGNED, "streaming-signed"],
    [STREAMING_SIGNED_TRAILER, "streaming-signed-trailer"],
  ] as const)("%s gives the chunk-signing context", (literal, mode) => {
    const req = signed({
      method: "PUT",
      payloadHash: literal,
      headers: { "x-amz-decoded-content-length": "66560", "content-encoding": "aws-chunked" },
    });
    const v = verifySigV4(req, VERIFY);
    expect(v.payload).toBe(mode);
    const seed = /Signature=([0-9a-f]{64})$/.exec(header(req, "authorization"))?.[1];
    expect(v.chunkContext).toEqual({
      signingKey: signingKey(SK, "20260102", REGION, "s3"),
      datetime: "20260102T030405Z",
      scope: "20260102/us-east-1/s3/aws4_request",
      seedSignature: seed,
    });
  });

  it("STREAMING-UNSIGNED-PAYLOAD-TRAILER has no chunk-signing context", () => {
    const v = verifySigV4(
      signed({
        method: "PUT",
        payloadHash: STREAMING_UNSIGNED_TRAILER,
        headers: { "x-amz-decoded-content-length": "5", "x-amz-trailer": "x-amz-checksum-crc32" },
      }),
      VERIFY,
    );
    expect(v.payload).toBe("streaming-unsigned-trailer");
    expect(v.chunkContext).toBeUndefined();
  });

  it("a session token, signed as x-amz-security-token, verifies", () => {
    const req = signed({ creds: { ...CREDS, sessionToken: "tok/en+==" } });
    expect(verifySigV4(req, VERIFY).signedHeaders).toContain("x-amz-security-token");
  });

  it("the Date header stands in for x-amz-date", () => {
    const req = manual({
      headers: [
        ["Host", HOST],
        ["Date", "Fri, 02 Jan 2026 03:04:05 GMT"],
        ["x-amz-content-sha256", EMPTY_SHA256],
      ],
      signedHeaders: ["date", "host", "x-amz-content-sha256"],
      payloadHash: EMPTY_SHA256,
    });
    expect(verifySigV4(req, VERIFY).accessKeyId).toBe(AK);
  });

  it("Authorization without spaces after the commas (some clients) verifies", () => {
    const req = signed();
    const compact = header(req, "authorization").replace(/, /g, ",");
    expect(() => verifySigV4(replaceHeader(req, "authorization", compact), VERIFY)).not.toThrow();
  });

  it("skew of 14 minutes either way is accepted", () => {
    for (const d of [-14 * MIN, 14 * MIN]) {
      const req = signed({ now: new Date(NOW.getTime() + d) });
      expect(() => verifySigV4(req, VERIFY)).not.toThrow();
    }
  });
});

describe("verifySigV4: canonical path from the raw request line", () => {
  it("raw '()!* (sent unencoded) verify against the SDK's %27%28%29%21%2A form", () => {
    const key = "it's (a)!*";
    expect(() =>
      verifySigV4(
        signed({ path: encodeS3Path("bucket", key), rawPath: "/bucket/it's%20(a)!*" }),
        VERIFY,
      ),
    ).not.toThrow();
  });

  it("a + in the path is a literal plus (%2B), never a space", () => {
    const plus = signed({ path: encodeS3Path("bucket", "a+b"), rawPath: "/bucket/a+b" });
    expect(() => verifySigV4(plus, VERIFY)).not.toThrow();
    const spaceSentAsPlus = signed({ path: encodeS3Path("bucket", "a b"), rawPath: "/bucket/a+b" });
    expect(failure(spaceSentAsPlus).code).toBe("SignatureDoesNotMatch");
  });

  it("lower-case percent escapes are re-encoded upper case (decode once, encode once)", () => {
    const req = signed({ path: encodeS3Path("bucket", "€ x"), rawPath: "/bucket/%e2%82%ac%20x" });
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });

  it("an escaped escape is decoded only once (%2525 stays %25 of a literal %)", () => {
    const req = signed({ path: encodeS3Path("bucket", "100%25"), rawPath: "/bucket/100%2525" });
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });

  it("no dot-segment or // normalisation: a/../b and a//b are keys as they are", () => {
    for (const key of ["a/../b", "a//b", "./x", "a/."]) {
      const req = signed({ path: encodeS3Path("bucket", key) });
      expect(() => verifySigV4(req, VERIFY)).not.toThrow();
    }
    const normalisedBySigner = signed({ path: "/bucket/b", rawPath: "/bucket/a/../b" });
    expect(failure(normalisedBySigner).code).toBe("SignatureDoesNotMatch");
  });

  it("a key that is not valid UTF-8 (%FF) round-trips byte for byte", () => {
    const req = signed({ path: "/bucket/%FF%FE", rawPath: "/bucket/%ff%fe" });
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });

  it.each(["/bucket/%zz", "/bucket/abc%", "/bucket/%4", "/bucket/a?x=%G0"])(
    "invalid percent-encoding %s → InvalidURI (an S3Error, not another throw)",
    (rawUrl) => {
      const req = { ...signed(), rawUrl };
      expect(failure(req).code).toBe("InvalidURI");
    },
  );

  it("absolute-form request-target is canonicalized like origin-form", () => {
    const req = signed({ path: "/bucket/k" });
    expect(() => verifySigV4({ ...req, rawUrl: `http://${HOST}/bucket/k` }, VERIFY)).not.toThrow();
  });
});

describe("verifySigV4: canonical query from the raw request line", () => {
  it("a + in a query value is a literal plus; a space must come as %20", () => {
    const plus = signed({ query: [["prefix", "a+b"]], rawQuery: "prefix=a+b" });
    expect(() => verifySigV4(plus, VERIFY)).not.toThrow();
    const plusEncoded = signed({ query: [["prefix", "a+b"]], rawQuery: "prefix=a%2Bb" });
    expect(() => verifySigV4(plusEncoded, VERIFY)).not.toThrow();
    const space = signed({ query: [["prefix", "a b"]], rawQuery: "prefix=a%20b" });
    expect(() => verifySigV4(space, VERIFY)).not.toThrow();
    const spaceAsPlus = signed({ query: [["prefix", "a b"]], rawQuery: "prefix=a+b" });
    expect(failure(spaceAsPlus).code).toBe("SignatureDoesNotMatch");
  });

  it("valueless uploads is uploads= (with or without the =)", () => {
    for (const rawQuery of ["uploads", "uploads="]) {
      const req = signed({ method: "POST", query: [["uploads", ""]], rawQuery });
      expect(() => verifySigV4(req, VERIFY)).not.toThrow();
    }
  });

  it("duplicates are kept and sorted by value; dropping one breaks the signature", () => {
    const query: [string, string][] = [
      ["a", "2"],
      ["a", "1"],
      ["B", "x"],
    ];
    expect(canonicalQuery(query)).toBe("B=x&a=1&a=2");
    expect(() => verifySigV4(signed({ query, rawQuery: "a=2&a=1&B=x" }), VERIFY)).not.toThrow();
    expect(failure(signed({ query, rawQuery: "a=1&B=x" })).code).toBe("SignatureDoesNotMatch");
  });

  it("order on the wire does not matter", () => {
    const query: [string, string][] = [
      ["list-type", "2"],
      ["prefix", "p/"],
      ["delimiter", "/"],
    ];
    const req = signed({ query, rawQuery: "delimiter=%2F&prefix=p%2F&list-type=2" });
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });
});

describe("verifySigV4: canonical headers from rawHeaders", () => {
  it("names lower-cased, values trimmed, inner whitespace collapsed", () => {
    const req = signed({ headers: { "x-amz-meta-note": "a b c" } });
    const sent = replaceHeader(req, "x-amz-meta-note", "  a   b \t c  ");
    const upper = {
      ...sent,
      rawHeaders: sent.rawHeaders.map((h, i) => (i % 2 === 0 ? h.toUpperCase() : h)),
    };
    expect(() => verifySigV4(upper, VERIFY)).not.toThrow();
  });

  it("repeated headers are joined with ',' in arrival order", () => {
    const req = signed({ headers: { "x-amz-meta-multi": "one,two" } });
    const split = withHeader(
      replaceHeader(req, "x-amz-meta-multi", "one"),
      "X-Amz-Meta-Multi",
      "two",
    );
    expect(() => verifySigV4(split, VERIFY)).not.toThrow();
    const swapped = withHeader(
      replaceHeader(req, "x-amz-meta-multi", "two"),
      "X-Amz-Meta-Multi",
      "one",
    );
    expect(failure(swapped).code).toBe("SignatureDoesNotMatch");
  });

  it("a UTF-8 header value is hashed as its wire bytes (Node hands them over as latin1)", () => {
    const req = signed({ headers: { "x-amz-meta-name": "café ✓" } });
    const wire = Buffer.from("café ✓", "utf8").toString("latin1");
    expect(() => verifySigV4(replaceHeader(req, "x-amz-meta-name", wire), VERIFY)).not.toThrow();
  });

  it("over HTTP/2, :authority stands in for host", () => {
    const req = signed();
    const h2 = {
      ...req,
      rawHeaders: req.rawHeaders.map((h, i) => (i % 2 === 0 && h === "host" ? ":authority" : h)),
    };
    expect(h2.rawHeaders).toContain(":authority");
    expect(() => verifySigV4(h2, VERIFY)).not.toThrow();
  });

  it("content-type need not be signed", () => {
    const req = withHeader(signed({ method: "PUT" }), "Content-Type", "text/plain");
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });

  it("host must be signed", () => {
    const req = manual({
      headers: [
        ["Host", HOST],
        ["x-amz-content-sha256", EMPTY_SHA256],
        ["x-amz-date", formatAmzDate(NOW)],
      ],
      signedHeaders: ["x-amz-content-sha256", "x-amz-date"],
      payloadHash: EMPTY_SHA256,
    });
    const err = failure(req);
    expect(err.code).toBe("AccessDenied");
    expect(err.extra.HeadersNotSigned).toBe("host");
  });

  it("an unsigned x-amz-* header → AccessDenied naming it (confused-deputy guard)", () => {
    const err = failure(
      withHeader(signed({ method: "PUT" }), "X-Amz-Copy-Source", "/other/secret"),
    );
    expect(err.code).toBe("AccessDenied");
    expect(err.message).toBe("There were headers present in the request which were not signed");
    expect(err.extra.HeadersNotSigned).toBe("x-amz-copy-source");
  });

  it("x-amz-content-sha256 present but not signed → InvalidRequest", () => {
    const req = manual({
      headers: [
        ["Host", HOST],
        ["x-amz-content-sha256", EMPTY_SHA256],
        ["x-amz-date", formatAmzDate(NOW)],
      ],
      signedHeaders: ["host", "x-amz-date"],
      payloadHash: EMPTY_SHA256,
    });
    expect(failure(req).code).toBe("InvalidRequest");
  });
});

describe("verifySigV4: x-amz-content-sha256 and streaming", () => {
  it("absent with header auth → InvalidRequest (as S3: Missing required header)", () => {
    const req = manual({
      headers: [
        ["Host", HOST],
        ["x-amz-date", formatAmzDate(NOW)],
      ],
      signedHeaders: ["host", "x-amz-date"],
      payloadHash: EMPTY_SHA256,
    });
    const err = failure(req);
    expect(err.code).toBe("InvalidRequest");
    expect(err.message).toContain("x-amz-content-sha256");
  });

  it.each([
    "abc",
    "e3b0".repeat(15),
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    "unsigned-payload",
  ])("value %s → InvalidArgument", (value) => {
    const err = failure(signed({ method: "PUT", payloadHash: value }));
    expect(err.code).toBe("InvalidArgument");
    expect(err.extra.ArgumentName).toBe("x-amz-content-sha256");
  });

  it.each(["GET", "POST", "DELETE"])("streaming on %s → InvalidRequest", (method) => {
    const req = signed({
      method,
      payloadHash: STREAMING_SIGNED,
      headers: { "x-amz-decoded-content-length": "1" },
    });
    expect(failure(req).code).toBe("InvalidRequest");
  });

  it("streaming without x-amz-decoded-content-length → MissingContentLength", () => {
    const req = signed({ method: "PUT", payloadHash: STREAMING_UNSIGNED_TRAILER });
    expect(failure(req).code).toBe("MissingContentLength");
  });

  it("streaming with a non-numeric x-amz-decoded-content-length → InvalidArgument", () => {
    const req = signed({
      method: "PUT",
      payloadHash: STREAMING_SIGNED,
      headers: { "x-amz-decoded-content-length": "12abc" },
    });
    expect(failure(req).code).toBe("InvalidArgument");
  });
});

describe("verifySigV4: presigned URLs", () => {
  it("a presigned GET verifies as presigned with an unsigned payload", () => {
    expect(verifySigV4(presigned(), VERIFY)).toEqual({
      accessKeyId: AK,
      authType: "presigned",
      payload: "unsigned",
      signedHeaders: ["host"],
      region: REGION,
    });
  });

  it("X-Amz-Signature is left out of the canonical query; other params stay in", () => {
    const req = presigned();
    // Adding an unsigned query parameter breaks it: the rest of the query is signed.
    expect(failure({ ...req, rawUrl: req.rawUrl + "&versionId=1" }).code).toBe(
      "SignatureDoesNotMatch",
    );
  });

  it("with a session token in the query", () => {
    const req = presigned({}, {}, {}, { ...CREDS, sessionToken: "session/tok+en" });
    expect(req.rawUrl).toContain("X-Amz-Security-Token=session%2Ftok%2Ben");
    expect(() => verifySigV4(req, VERIFY)).not.toThrow();
  });

  it("a signed extra header must be sent with the signed value", () => {
    const req = presigned({ method: "PUT" }, {}, { "x-amz-meta-owner": "alice" });
    expect(verifySigV4(req, VERIFY).signedHeaders).toEqual(["host", "x-amz-meta-owner"]);
    expect(failure(replaceHeader(req, "x-amz-meta-owner", "mallory")).code).toBe(
      "SignatureDoesNotMatch",
    );
  });

  it("X-Amz-Content-Sha256 in the query makes the payload hex", () => {
    const hash = "b".repeat(64);
    const url = new URL(
      presignUrl(
        {
          method: "PUT",
          origin: `https://${HOST}`,
          path: "/bucket/key",
          query: [["X-Amz-Content-Sha256", hash]],
        },
        CREDS,
        { region: REGION, now: NOW, expiresSeconds: 60 },
      ),
    );
    const v = verifySigV4(
      { method: "PUT", rawUrl: url.pathname + url.search, rawHeaders: ["Host", HOST] },
      VERIFY,
    );
    expect(v).toMatchObject({ payload: "hex", payloadSha256: hash });
  });

  it("expires exactly at X-Amz-Date + X-Amz-Expires, not before", () => {
    const req = presigned({ expires: 60 });
    expect(() =>
      verifySigV4(req, { ...VERIFY, now: new Date(NOW.getTime() + 60_000) }),
    ).not.toThrow();
    const err = failure(req, { ...VERIFY, now: new Date(NOW.getTime() + 61_000) });
    expect(err.code).toBe("AccessDenied");
    expect(err.message).toBe("Request has expired");
  });

  it("a missing auth parameter → AuthorizationQueryParametersError", () => {
    const req = presigned();
    const rawUrl = req.rawUrl.replace(/&X-Amz-SignedHeaders=[^&]*/, "");
    expect(failure({ ...req, rawUrl }).code).toBe("AuthorizationQueryParametersError");
  });

  it("a wrong X-Amz-Algorithm → AuthorizationQueryParametersError", () => {
    const req = presigned();
    const rawUrl = req.rawUrl.replace(
      "X-Amz-Algorithm=AWS4-HMAC-SHA256",
      "X-Amz-Algorithm=AWS4-HMAC-SHA1",
    );
    expect(failure({ ...req, rawUrl }).code).toBe("AuthorizationQueryParametersError");
  });
});

/** One field changed at a time; each must produce exactly this S3 error code. */
const TAMPERED: [string, () => IncomingSigV4Request, string][] = [
  ["method changed", () => ({ ...signed(), method: "DELETE" }), "SignatureDoesNotMatch"],
  [
    "path changed",
    () => ({ ...signed(), rawUrl: "/bucket/dir/other.txt" }),
    "SignatureDoesNotMatch",
  ],
  [
    "query value changed",
    () => {
      const req = signed({ query: [["prefix", "a"]] });
      return { ...req, rawUrl: req.rawUrl.replace("prefix=a", "prefix=b") };
    },
    "SignatureDoesNotMatch",
  ],
  [
    "signed header value changed",
    () => replaceHeader(signed({ headers: { range: "bytes=0-9" } }), "range", "bytes=0-99"),
    "SignatureDoesNotMatch",
  ],
  [
    "payload hash changed",
    () => replaceHeader(signed({ method: "PUT" }), "x-amz-content-sha256", "0".repeat(64)),
    "SignatureDoesNotMatch",
  ],
  [
    "signature upper-cased",
    () => {
      const req = signed();
      const auth = header(req, "authorization");
      return replaceHeader(
        req,
        "authorization",
        auth.replace(/Signature=(\w+)/, (_m, s: string) => `Signature=${s.toUpperCase()}`),
      );
    },
    "SignatureDoesNotMatch",
  ],
  [
    "signature truncated (lengths differ: no timingSafeEqual throw)",
    () => {
      const req = signed();
      return replaceHeader(req, "authorization", header(req, "authorization").slice(0, -2));
    },
    "SignatureDoesNotMatch",
  ],
  [
    "wrong secret",
    () => signed({ creds: { accessKeyId: AK, secretAccessKey: "not-the-secret" } }),
    "SignatureDoesNotMatch",
  ],
  [
    "added unsigned x-amz-meta header",
    () => withHeader(signed(), "x-amz-meta-extra", "1"),
    "AccessDenied",
  ],
  [
    "added unsigned x-amz-copy-source on a presigned PUT",
    () => presigned({ method: "PUT" }, { "x-amz-copy-source": "/victim/secret.txt" }),
    "AccessDenied",
  ],
  [
    "date 16 min in the past",
    () => signed({ now: new Date(NOW.getTime() - 16 * MIN) }),
    "RequestTimeTooSkewed",
  ],
  [
    "date 16 min in the future",
    () => signed({ now: new Date(NOW.getTime() + 16 * MIN) }),
    "RequestTimeTooSkewed",
  ],
  [
    "x-amz-date on another day than the credential scope",
    () => replaceHeader(signed(), "x-amz-date", "20260103T030405Z"),
    "AuthorizationHeaderMalformed",
  ],
  [
    "x-amz-date not ISO 8601 basic",
    () => replaceHeader(signed(), "x-amz-date", "2026-01-02T03:04:05Z"),
    "AccessDenied",
  ],
  ["no date at all", () => withoutHeader(signed(), "x-amz-date"), "AccessDenied"],
  ["wrong region", () => signed({ region: "eu-west-1" }), "AuthorizationHeaderMalformed"],
  ["wrong service", () => signed({ service: "iam" }), "AuthorizationHeaderMalformed"],
  [
    "unknown access key",
    () => signed({ creds: { accessKeyId: "AKIDUNKNOWN", secretAccessKey: SK } }),
    "InvalidAccessKeyId",
  ],
  [
    "Authorization without Signature",
    () => {
      const req = signed();
      return replaceHeader(
        req,
        "authorization",
        header(req, "authorization").replace(/, Signature=\w+/, ""),
      );
    },
    "AuthorizationHeaderMalformed",
  ],
  [
    "Credential with too few parts",
    () => {
      const req = signed();
      return replaceHeader(
        req,
        "authorization",
        header(req, "authorization").replace(`${AK}/`, ""),
      );
    },
    "AuthorizationHeaderMalformed",
  ],
  [
    "two Authorization headers",
    () => {
      const req = signed();
      return withHeader(req, "Authorization", header(req, "authorization"));
    },
    "AuthorizationHeaderMalformed",
  ],
  [
    "unsupported Authorization scheme",
    () => replaceHeader(signed(), "authorization", "Bearer abc"),
    "InvalidArgument",
  ],
  [
    "both Authorization header and presigned query",
    () => {
      const p = presigned();
      return { ...signed({ path: "/bucket/key" }), rawUrl: p.rawUrl };
    },
    "InvalidArgument",
  ],
  [
    "SigV2 Authorization header",
    () => replaceHeader(signed(), "authorization", `AWS ${AK}:frJIUN8DYpKDtOLCwo//yllqDzg=`),
    "InvalidRequest",
  ],
  [
    "SigV2 presigned query",
    () => ({
      method: "GET",
      rawUrl: `/bucket/key?AWSAccessKeyId=${AK}&Expires=1767323045&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D`,
      rawHeaders: ["Host", HOST],
    }),
    "InvalidRequest",
  ],
  [
    "anonymous",
    () => ({ method: "GET", rawUrl: "/bucket/key", rawHeaders: ["Host", HOST] }),
    "AccessDenied",
  ],
  [
    "presigned: expired",
    () => presigned({ now: new Date(NOW.getTime() - 3601_000) }),
    "AccessDenied",
  ],
  [
    "presigned: X-Amz-Date 16 min in the future",
    () => presigned({ now: new Date(NOW.getTime() + 16 * MIN) }),
    "RequestTimeTooSkewed",
  ],
  [
    "presigned: X-Amz-Expires 0",
    () => {
      const req = presigned();
      return { ...req, rawUrl: req.rawUrl.replace("X-Amz-Expires=3600", "X-Amz-Expires=0") };
    },
    "AuthorizationQueryParametersError",
  ],
  [
    "presigned: X-Amz-Expires 604801",
    () => {
      const req = presigned();
      return { ...req, rawUrl: req.rawUrl.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801") };
    },
    "AuthorizationQueryParametersError",
  ],
  [
    "presigned: X-Amz-Expires not an integer",
    () => {
      const req = presigned();
      return { ...req, rawUrl: req.rawUrl.replace("X-Amz-Expires=3600", "X-Amz-Expires=1e3") };
    },
    "AuthorizationQueryParametersError",
  ],
  [
    "presigned: wrong region",
    () => presigned({ region: "eu-west-1" }),
    "AuthorizationQueryParametersError",
  ],
  [
    "presigned: unknown access key",
    () => presigned({}, {}, {}, { accessKeyId: "AKIDUNKNOWN", secretAccessKey: SK }),
    "InvalidAccessKeyId",
  ],
  [
    "presigned: path changed",
    () => ({ ...presigned(), rawUrl: presigned().rawUrl.replace("/bucket/key", "/bucket/other") }),
    "SignatureDoesNotMatch",
  ],
  ["presigned: method changed", () => ({ ...presigned(), method: "PUT" }), "SignatureDoesNotMatch"],
  [
    "presigned: host changed",
    () => replaceHeader(presigned(), "host", "evil.example.test"),
    "SignatureDoesNotMatch",
  ],
];

describe("verifySigV4: tampered variants, one field at a time", () => {
  it("the untampered requests all verify", () => {
    expect(() => verifySigV4(signed(), VERIFY)).not.toThrow();
    expect(() => verifySigV4(presigned(), VERIFY)).not.toThrow();
    expect(() => verifySigV4(presigned({ method: "PUT" }), VERIFY)).not.toThrow();
  });

  it.each(TAMPERED)("%s", (_name, make, code) => {
    const err = failure(make());
    expect(err.code).toBe(code);
    // No error ever carries the secret, a string to sign or a canonical request.
    const text = JSON.stringify({ message: err.message, extra: err.extra });
    expect(text).not.toContain(SK);
    expect(text).not.toContain("AWS4-HMAC-SHA256\\n");
    expect(text).not.toContain(EMPTY_SHA256);
  });

  it("RequestTimeTooSkewed carries the times and the allowed skew", () => {
    const err = failure(signed({ now: new Date(NOW.getTime() + 16 * MIN) }));
    expect(err.extra).toEqual({
      RequestTime: "20260102T032005Z",
      ServerTime: NOW.toISOString(),
      MaxAllowedSkewMilliseconds: "900000",
    });
  });

  it("SigV2 is refused with the message clients understand; both forms name the rule", () => {
    const v2 = failure(replaceHeader(signed(), "authorization", `AWS ${AK}:c2lnbmF0dXJl`));
    expect(v2.message).toContain("Please use AWS4-HMAC-SHA256.");
    const both = failure({ ...signed({ path: "/bucket/key" }), rawUrl: presigned().rawUrl });
    expect(both.message).toContain("Only one auth mechanism allowed");
  });

  it("a wrong region names the region we serve", () => {
    expect(failure(signed({ region: "eu-west-1" })).extra.Region).toBe(REGION);
  });

  it("maxSkewMs is honoured", () => {
    const req = signed({ now: new Date(NOW.getTime() + 2 * MIN) });
    expect(failure(req, { ...VERIFY, maxSkewMs: MIN }).code).toBe("RequestTimeTooSkewed");
  });
});
