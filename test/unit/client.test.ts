import { describe, it, expect } from "vitest";
import { PassThrough } from "node:stream";
import { S3Client, readBodyLimited, readBounded } from "../../s3/client.js";
import {
  S3ClientError,
  S3ConnectionError,
  classifyNetworkError,
  errorFromAnswer,
} from "../../s3/client-errors.js";
import {
  copySourceHeader,
  metadataFromHeaders,
  metadataToHeaders,
} from "../../s3/client-operations.js";
import { S3Error } from "../../s3/errors.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

function answer(
  status: number,
  body: string,
  extra: { key?: string; headers?: Record<string, string> } = {},
) {
  return errorFromAnswer({
    status,
    headers: extra.headers ?? {},
    body: Buffer.from(body),
    bucket: "b",
    key: extra.key,
    secrets: [SECRET],
  });
}

describe("errorFromAnswer", () => {
  it("takes code, message and ids from the Error document", () => {
    const err = answer(
      404,
      "<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>R1</RequestId><HostId>H1</HostId></Error>",
      { key: "k" },
    );
    expect(err).toBeInstanceOf(S3ClientError);
    expect(err).toBeInstanceOf(S3Error);
    expect([
      err.code,
      err.status,
      err.message,
      err.requestId,
      err.hostId,
      err.bucket,
      err.key,
    ]).toEqual(["NoSuchKey", 404, "gone", "R1", "H1", "b", "k"]);
    expect(err.kind).toBe("response");
  });

  it("keeps codes outside our table with the server's status", () => {
    const err = answer(301, "<Error><Code>PermanentRedirect</Code><Message>m</Message></Error>");
    expect([err.code, err.status]).toEqual(["PermanentRedirect", 301]);
  });

  const bodiless: Array<[number, string | undefined, string]> = [
    [404, "k", "NoSuchKey"],
    [404, undefined, "NoSuchBucket"],
    [403, "k", "AccessDenied"],
    [412, "k", "PreconditionFailed"],
    [416, "k", "InvalidRange"],
    [503, "k", "ServiceUnavailable"],
    [500, undefined, "InternalError"],
    [418, undefined, "HTTP418"],
  ];
  for (const [status, key, code] of bodiless) {
    it(`maps a bodiless ${status} (${key === undefined ? "bucket" : "object"}) to ${code}`, () => {
      expect(answer(status, "", { key }).code).toBe(code);
    });
  }

  it("prefers MinIO's x-minio-error-code on a bodiless HEAD answer", () => {
    const err = answer(404, "", {
      key: "k",
      headers: { "x-minio-error-code": "NoSuchBucket", "x-amz-request-id": "R" },
    });
    expect([err.code, err.requestId]).toEqual(["NoSuchBucket", "R"]);
  });

  it("falls back to the status for a body that is not an S3 Error (a proxy's HTML page)", () => {
    const err = answer(502, "<html><body>Bad gateway</body></html>");
    expect([err.code, err.status]).toEqual(["InternalError", 502]);
  });

  it("never keeps a message holding the secret or an echoed signature", () => {
    const leaky = [
      `<Error><Code>SignatureDoesNotMatch</Code><Message>key ${SECRET}</Message></Error>`,
      "<Error><Code>SignatureDoesNotMatch</Code><Message>StringToSign: AWS4-HMAC-SHA256 x</Message></Error>",
      `<Error><Code>AccessDenied</Code><Message>${"x".repeat(600)}</Message></Error>`,
    ];
    for (const body of leaky) {
      const err = answer(403, body);
      expect(err.message).not.toContain(SECRET);
      expect(err.message).not.toMatch(/StringToSign|xxxxxxxx/);
      expect(err.message.length).toBeGreaterThan(0);
    }
  });

  it("refuses a code that is not a plain identifier", () => {
    expect(answer(400, "<Error><Code>&lt;script&gt;</Code></Error>").code).toBe("BadRequest");
  });
});

describe("classifyNetworkError", () => {
  const table: Array<[string, string | undefined]> = [
    ["ECONNREFUSED", "connect"],
    ["ECONNRESET", "reset"],
    ["UND_ERR_SOCKET", "reset"],
    ["UND_ERR_CONNECT_TIMEOUT", "timeout"],
    ["UND_ERR_HEADERS_TIMEOUT", "timeout"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "tls"],
    // The code Node gives for a server certificate signed by an unknown CA.
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "tls"],
    ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "tls"],
    ["UND_ERR_INVALID_ARG", undefined],
    ["UND_ERR_REQ_CONTENT_LENGTH_MISMATCH", undefined],
  ];
  for (const [code, failure] of table) {
    it(`${code} → ${failure ?? "not a connection failure"}`, () => {
      expect(classifyNetworkError(Object.assign(new Error("x"), { code }))).toBe(failure);
    });
  }
  it("an error without a code is not a connection failure", () => {
    expect(classifyNetworkError(new Error("boom"))).toBeUndefined();
  });
  it("S3ConnectionError is a 503 ServiceUnavailable with its cause", () => {
    const cause = new Error("refused");
    const err = new S3ConnectionError("connect", { cause, attempts: 2, endpoint: "http://h:1" });
    expect([err.code, err.status, err.kind, err.failure, err.attempts]).toEqual([
      "ServiceUnavailable",
      503,
      "connection",
      "connect",
      2,
    ]);
    expect(err.cause).toBe(cause);
    expect(err).toBeInstanceOf(S3ClientError);
  });
});

describe("metadata headers", () => {
  it("round-trips standard metadata and x-amz-meta-* (lower-cased)", () => {
    const headers = metadataToHeaders({
      contentType: "text/plain",
      cacheControl: "no-cache",
      contentDisposition: "inline",
      contentEncoding: "gzip",
      contentLanguage: "en",
      expires: "Thu, 01 Jan 2037 00:00:00 GMT",
      userMetadata: { Color: "blue" },
    });
    expect(headers).toEqual({
      "content-type": "text/plain",
      "cache-control": "no-cache",
      "content-disposition": "inline",
      "content-encoding": "gzip",
      "content-language": "en",
      expires: "Thu, 01 Jan 2037 00:00:00 GMT",
      "x-amz-meta-color": "blue",
    });
    expect(metadataFromHeaders({ ...headers, etag: '"e"', "content-length": "3" })).toEqual({
      contentType: "text/plain",
      cacheControl: "no-cache",
      contentDisposition: "inline",
      contentEncoding: "gzip",
      contentLanguage: "en",
      expires: "Thu, 01 Jan 2037 00:00:00 GMT",
      userMetadata: { color: "blue" },
    });
  });

  it("drops aws-chunked from Content-Encoding: it is a transfer coding, not object metadata", () => {
    expect(metadataFromHeaders({ "content-encoding": "aws-chunked" })).toEqual({});
    expect(metadataFromHeaders({ "content-encoding": "aws-chunked, gzip" }).contentEncoding).toBe(
      "gzip",
    );
  });
});

describe("copySourceHeader", () => {
  it("encodes the key once, keeps slashes, and adds the version id", () => {
    expect(copySourceHeader("b", "a b/c+d%/é")).toBe("b/a%20b/c%2Bd%25/%C3%A9");
    expect(copySourceHeader("b", "k", "v 1")).toBe("b/k?versionId=v%201");
  });
});

describe("S3Client options", () => {
  const creds = { accessKeyId: "A", secretAccessKey: "S" };
  it("refuses endpoints with a path, query or credentials", () => {
    for (const endpoint of ["http://h:1/path", "http://h:1/?x=1", "http://u:p@h:1", "ftp://h"]) {
      expect(() => new S3Client({ endpoint, credentials: creds, region: "r" }), endpoint).toThrow(
        TypeError,
      );
    }
  });
  it("requires a content length with a stream body", async () => {
    const c = new S3Client({ endpoint: "http://127.0.0.1:9", credentials: creds, region: "r" });
    await expect(
      c.request({ method: "PUT", bucket: "b", key: "k", body: new PassThrough() }),
    ).rejects.toThrow(/contentLength/);
    await c.close();
  });
});

describe("bounded body reads", () => {
  it("reads at most the limit and destroys the rest of the stream", async () => {
    const s = new PassThrough();
    s.write(Buffer.alloc(10, 1));
    s.write(Buffer.alloc(10, 2));
    const buf = await readBounded(s, 15);
    expect(buf.length).toBe(15);
    expect(s.destroyed).toBe(true);
  });
  it("a body over the limit is an error, not a truncated document", async () => {
    const s = new PassThrough();
    s.end(Buffer.alloc(11));
    await expect(readBodyLimited(s, 10)).rejects.toThrow(/larger than 10 bytes/);
    const ok = new PassThrough();
    ok.end(Buffer.alloc(10));
    expect((await readBodyLimited(ok, 10)).length).toBe(10);
  });
});
