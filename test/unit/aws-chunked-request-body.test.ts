import { createHash } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { digestBase64 } from "../../s3/checksums.js";
import { S3Error } from "../../s3/errors.js";
import { verifiedBody, type RequestBodyHeaders } from "../../s3/request-body.js";
import type { ChunkSigningContext, VerifiedRequest } from "../../s3/sigv4-types.js";
import { deriveSigningKey, encodeAwsChunked } from "../helpers/aws-chunked-encoder.js";

const CTX: ChunkSigningContext = {
  signingKey: deriveSigningKey("secret-for-tests", "20250101", "us-east-1", "s3"),
  datetime: "20250101T000000Z",
  scope: "20250101/us-east-1/s3/aws4_request",
  seedSignature: "a".repeat(64),
};

function request(payload: VerifiedRequest["payload"], extra: Partial<VerifiedRequest> = {}) {
  return {
    accessKeyId: "AKIDTEST",
    authType: "header",
    payload,
    signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date"],
    region: "us-east-1",
    ...(payload.startsWith("streaming-signed") ? { chunkContext: CTX } : {}),
    ...extra,
  } satisfies VerifiedRequest;
}

interface Run {
  output: Buffer;
  error: S3Error | undefined;
  raw: PassThrough;
  contentLength: number | undefined;
}

/** Feeds `wire` through verifiedBody in 10 KiB writes and collects the result. */
async function run(
  verified: VerifiedRequest,
  headers: RequestBodyHeaders,
  wire: Buffer,
  opts: { endRaw?: boolean } = {},
): Promise<Run> {
  const raw = new PassThrough();
  const { body, contentLength } = verifiedBody(verified, headers, raw);
  const parts: Buffer[] = [];
  body.on("data", (b: Buffer) => parts.push(b));
  const done = new Promise<S3Error | undefined>((resolve) => {
    body.on("end", () => resolve(undefined));
    body.on("error", (e) => resolve(e as S3Error));
  });
  for (let i = 0; i < wire.length; i += 10240) raw.write(wire.subarray(i, i + 10240));
  if (opts.endRaw !== false) raw.end();
  const error = await done;
  return { output: Buffer.concat(parts), error, raw, contentLength };
}

const PAYLOAD = Buffer.alloc(100_000);
for (let i = 0; i < PAYLOAD.length; i++) PAYLOAD[i] = (i * 31) & 0xff;
const SHA256_HEX = createHash("sha256").update(PAYLOAD).digest("hex");

describe("verifiedBody: hex payload hash", () => {
  it("passes the body through when the SHA-256 matches", async () => {
    const r = await run(
      request("hex", { payloadSha256: SHA256_HEX }),
      { contentLength: PAYLOAD.length, checksums: {} },
      PAYLOAD,
    );
    expect(r.error).toBeUndefined();
    expect(r.output.equals(PAYLOAD)).toBe(true);
    expect(r.contentLength).toBe(PAYLOAD.length);
  });
  it("fails with XAmzContentSHA256Mismatch and withholds the final bytes", async () => {
    const tampered = Buffer.from(PAYLOAD);
    tampered[50] = (tampered[50] as number) ^ 1;
    const r = await run(
      request("hex", { payloadSha256: SHA256_HEX }),
      { contentLength: PAYLOAD.length, checksums: {} },
      tampered,
    );
    expect(r.error?.code).toBe("XAmzContentSHA256Mismatch");
    expect(r.output.length).toBeLessThan(PAYLOAD.length);
  });
});

describe("verifiedBody: unsigned payload", () => {
  it("checks the Content-Length: a short body is IncompleteBody", async () => {
    const r = await run(
      request("unsigned"),
      { contentLength: PAYLOAD.length + 1, checksums: {} },
      PAYLOAD,
    );
    expect(r.error?.code).toBe("IncompleteBody");
    expect(r.error?.extra).toMatchObject({ NumberBytesExpected: String(PAYLOAD.length + 1) });
    expect(r.output.length).toBeLessThan(PAYLOAD.length);
  });
  it("a long body is IncompleteBody too", async () => {
    const r = await run(request("unsigned"), { contentLength: 10, checksums: {} }, PAYLOAD);
    expect(r.error?.code).toBe("IncompleteBody");
    expect(r.output.length).toBeLessThan(10);
  });
  it("verifies Content-MD5 and x-amz-checksum-* headers", async () => {
    const good = await run(
      request("unsigned"),
      {
        contentLength: PAYLOAD.length,
        checksums: {
          "content-md5": digestBase64("MD5", PAYLOAD),
          "x-amz-checksum-crc64nvme": digestBase64("CRC64NVME", PAYLOAD),
          "x-amz-checksum-algorithm": "CRC64NVME",
        },
      },
      PAYLOAD,
    );
    expect(good.error).toBeUndefined();
    expect(good.output.equals(PAYLOAD)).toBe(true);
    const other = Buffer.from("something else");
    for (const [name, alg] of [
      ["content-md5", "MD5"],
      ["x-amz-checksum-crc32", "CRC32"],
      ["x-amz-checksum-sha1", "SHA1"],
    ] as const) {
      const r = await run(
        request("unsigned"),
        { contentLength: PAYLOAD.length, checksums: { [name]: digestBase64(alg, other) } },
        PAYLOAD,
      );
      expect(r.error?.code, name).toBe("BadDigest");
      expect(r.output.length).toBeLessThan(PAYLOAD.length);
    }
  });
  it("rejects malformed digests before reading the body", () => {
    const raw = new PassThrough();
    const call = (checksums: Record<string, string>) => () =>
      verifiedBody(request("unsigned"), { contentLength: 1, checksums }, raw);
    expect(call({ "content-md5": "bm90IGFuIG1kNQ==" })).toThrow(
      expect.objectContaining({ code: "InvalidDigest" }),
    );
    expect(call({ "x-amz-checksum-crc32": "AAAA" })).toThrow(
      expect.objectContaining({ code: "InvalidRequest" }),
    );
    expect(
      call({
        "x-amz-checksum-crc32": digestBase64("CRC32", PAYLOAD),
        "x-amz-checksum-crc32c": digestBase64("CRC32C", PAYLOAD),
      }),
    ).toThrow(expect.objectContaining({ code: "InvalidRequest" }));
    // Nothing was read from raw.
    expect(raw.readableFlowing).toBe(null);
  });
});

describe("verifiedBody: aws-chunked", () => {
  it("decodes a signed body with a trailer; contentLength is the decoded length", async () => {
    const enc = encodeAwsChunked(PAYLOAD, {
      mode: "streaming-signed-trailer",
      context: CTX,
      chunkSize: 8192,
      trailerAlgorithm: "CRC32C",
    });
    const r = await run(
      request("streaming-signed-trailer"),
      {
        contentLength: enc.body.length,
        decodedContentLength: PAYLOAD.length,
        trailer: "x-amz-checksum-crc32c",
        checksums: {},
      },
      enc.body,
    );
    expect(r.error).toBeUndefined();
    expect(r.contentLength).toBe(PAYLOAD.length);
    expect(r.output.equals(PAYLOAD)).toBe(true);
  });
  it("also checks a whole-body checksum header on a streaming body", async () => {
    const enc = encodeAwsChunked(PAYLOAD, { mode: "streaming-signed", context: CTX });
    const r = await run(
      request("streaming-signed"),
      {
        decodedContentLength: PAYLOAD.length,
        checksums: { "x-amz-checksum-sha256": digestBase64("SHA256", Buffer.from("x")) },
      },
      enc.body,
    );
    expect(r.error?.code).toBe("BadDigest");
    expect(r.output.length).toBeLessThan(PAYLOAD.length);
  });
  it("requires x-amz-decoded-content-length", () => {
    expect(() =>
      verifiedBody(request("streaming-unsigned-trailer"), { checksums: {} }, new PassThrough()),
    ).toThrow(expect.objectContaining({ code: "MissingContentLength" }));
  });
  it("a bad chunk signature fails the body but leaves raw open, unpiped and paused", async () => {
    const enc = encodeAwsChunked(PAYLOAD, {
      mode: "streaming-signed",
      context: CTX,
      chunkSize: 8192,
      chunkSignature: (i, s) => (i === 3 ? "f".repeat(64) : s),
    });
    const r = await run(
      request("streaming-signed"),
      { decodedContentLength: PAYLOAD.length, checksums: {} },
      enc.body,
      { endRaw: false },
    );
    expect(r.error?.code).toBe("SignatureDoesNotMatch");
    expect(r.output.length).toBeLessThanOrEqual(3 * 8192);
    expect(r.raw.destroyed).toBe(false);
    expect(r.raw.readableFlowing).toBe(false);
  });
});

describe("verifiedBody: the client side going away", () => {
  it("a raw stream that errors mid-body fails the body with IncompleteBody", async () => {
    const raw = new PassThrough();
    const { body } = verifiedBody(
      request("unsigned"),
      { contentLength: PAYLOAD.length, checksums: {} },
      raw,
    );
    const parts: Buffer[] = [];
    body.on("data", (b: Buffer) => parts.push(b));
    const failed = new Promise<S3Error>((resolve) =>
      body.on("error", (e) => resolve(e as S3Error)),
    );
    raw.write(PAYLOAD.subarray(0, 5000));
    raw.destroy(new Error("ECONNRESET"));
    const err = await failed;
    expect(err.code).toBe("IncompleteBody");
    expect(Buffer.concat(parts).length).toBeLessThan(5000);
  });
  it("destroying the body (upstream failed) stops reading raw without destroying it", async () => {
    const raw: Readable = new PassThrough();
    const { body } = verifiedBody(
      request("unsigned"),
      { contentLength: PAYLOAD.length, checksums: {} },
      raw,
    );
    const closed = new Promise((resolve) => body.once("close", resolve));
    body.destroy();
    await closed;
    expect(raw.destroyed).toBe(false);
    expect(raw.listenerCount("data")).toBe(0);
  });
});
