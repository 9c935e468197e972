/**
 * The real AWS SDK for JavaScript against the real verifier and body pipeline, through a tiny
 * node:http server that stores what it decoded. No S3 server is involved: the claim tested is
 * "what our gateway would send upstream equals what the client sent", not S3 behaviour.
 */
import { createHash } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable, finished } from "node:stream";
import {
  DeleteObjectsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type ChecksumAlgorithm,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderErrorXml, toS3Error } from "../../s3/errors.js";
import { verifiedBody } from "../../s3/request-body.js";
import { signingKey } from "../../s3/signing-key.js";
import { signRequest } from "../../s3/sigv4-sign.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import { encodeAwsChunked, type EncodeOptions } from "../helpers/aws-chunked-encoder.js";

const ACCESS_KEY = "AKIDSDKSTREAMING";
const SECRET = "sdk-streaming-test-secret";
const REGION = "us-east-1";
const TIMEOUT_MS = 20_000;

/** Decoded bodies by request target, as the gateway would have sent them upstream. */
const stored = new Map<string, Buffer>();
let server: Server;
let port = 0;
let s3: S3Client;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
}

function numberHeader(req: IncomingMessage, name: string): number | undefined {
  const v = header(req, name);
  return v === undefined ? undefined : Number(v);
}

/** Verify, decode, store; or answer the S3 error once the client finished sending. */
function handle(req: IncomingMessage, res: import("node:http").ServerResponse): void {
  const target = req.url ?? "/";
  const fail = (err: unknown): void => {
    const e = toS3Error(err);
    // Drain what the client still sends so it reads our answer instead of a reset.
    req.resume();
    finished(req, () => {
      res.writeHead(e.status, { "content-type": "application/xml", connection: "close" });
      res.end(renderErrorXml(e, { requestId: "test", resource: target }));
    });
  };
  let body: Readable;
  try {
    const verified = verifySigV4(
      { method: req.method ?? "GET", rawUrl: target, rawHeaders: req.rawHeaders },
      { lookupSecret: (id) => (id === ACCESS_KEY ? SECRET : undefined), region: REGION },
    );
    const checksums: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value !== "string") continue;
      if (name.startsWith("x-amz-checksum-") || name === "content-md5") checksums[name] = value;
    }
    ({ body } = verifiedBody(
      verified,
      {
        contentLength: numberHeader(req, "content-length"),
        decodedContentLength: numberHeader(req, "x-amz-decoded-content-length"),
        trailer: header(req, "x-amz-trailer"),
        checksums,
      },
      req,
    ));
  } catch (err) {
    fail(err);
    return;
  }
  const parts: Buffer[] = [];
  body.on("data", (b: Buffer) => parts.push(b));
  body.on("error", fail);
  body.on("end", () => {
    const data = Buffer.concat(parts);
    stored.set(target, data);
    res.setHeader("ETag", `"${createHash("md5").update(data).digest("hex")}"`);
    if (target.includes("?delete")) {
      res.setHeader("content-type", "application/xml");
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a</Key></Deleted><Deleted><Key>b/c</Key></Deleted></DeleteResult>',
      );
      return;
    }
    res.end();
  });
}

beforeAll(async () => {
  server = createServer(handle);
  server.requestTimeout = TIMEOUT_MS;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  s3 = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  s3?.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Deterministic content, different per offset, as a Readable of 64 KiB pieces. */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed + (i >>> 12)) & 0xff;
  return b;
}
function streamOf(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
    })(),
  );
}

describe("@aws-sdk/client-s3 with its default checksums → verifySigV4 → verifiedBody", () => {
  it("PutObject with a 5 MiB stream body (STREAMING-UNSIGNED-PAYLOAD-TRAILER, CRC32) is stored intact", async () => {
    const data = pattern(5 * 1024 * 1024, 1);
    const out = await s3.send(
      new PutObjectCommand({
        Bucket: "bkt",
        Key: "stream/5mib",
        Body: streamOf(data),
        ContentLength: data.length,
      }),
    );
    const got = stored.get("/bkt/stream/5mib?x-id=PutObject");
    expect(got?.length).toBe(data.length);
    expect(got?.equals(data)).toBe(true);
    expect(out.ETag).toBe(`"${createHash("md5").update(data).digest("hex")}"`);
  });

  for (const algorithm of ["CRC32C", "SHA256", "SHA1"] as ChecksumAlgorithm[]) {
    it(`PutObject with a stream body and a ${algorithm} trailer is stored intact`, async () => {
      const data = pattern(300_000, 2);
      await s3.send(
        new PutObjectCommand({
          Bucket: "bkt",
          Key: `stream/${algorithm}`,
          Body: streamOf(data),
          ContentLength: data.length,
          ChecksumAlgorithm: algorithm,
        }),
      );
      expect(stored.get(`/bkt/stream/${algorithm}?x-id=PutObject`)?.equals(data)).toBe(true);
    });
  }

  it("PutObject with a Buffer body (hex payload hash and an x-amz-checksum-crc32 header)", async () => {
    const data = pattern(100_000, 3);
    await s3.send(new PutObjectCommand({ Bucket: "bkt", Key: "buffer", Body: data }));
    expect(stored.get("/bkt/buffer?x-id=PutObject")?.equals(data)).toBe(true);
  });

  it("UploadPart with a stream body", async () => {
    const data = pattern(1024 * 1024 + 17, 4);
    const out = await s3.send(
      new UploadPartCommand({
        Bucket: "bkt",
        Key: "mp",
        UploadId: "upload-1",
        PartNumber: 3,
        Body: streamOf(data),
        ContentLength: data.length,
      }),
    );
    expect(stored.get("/bkt/mp?partNumber=3&uploadId=upload-1&x-id=UploadPart")?.equals(data)).toBe(
      true,
    );
    expect(out.ETag).toBeDefined();
  });

  it("DeleteObjects (always carries a CRC32) passes its checksum and arrives byte-exact", async () => {
    const out = await s3.send(
      new DeleteObjectsCommand({
        Bucket: "bkt",
        Delete: { Objects: [{ Key: "a" }, { Key: "b/c" }] },
      }),
    );
    expect(out.Deleted?.map((d) => d.Key)).toEqual(["a", "b/c"]);
    const xml = stored.get("/bkt/?delete=")?.toString("utf8") ?? "";
    expect(xml).toContain("<Key>a</Key>");
    expect(xml).toContain("<Key>b/c</Key>");
  });
});

interface RawAnswer {
  status: number;
  code: string | undefined;
}

interface RawStreamingPut {
  key: string;
  mode: EncodeOptions["mode"];
  payload: Buffer;
  /** Declared x-amz-decoded-content-length minus the real one. */
  lengthDelta?: number;
  encode?: Partial<EncodeOptions>;
  /** Changes the encoded body before sending. */
  mutate?: (body: Buffer, enc: ReturnType<typeof encodeAwsChunked>) => void;
}

const PAYLOAD_HASHES: Record<EncodeOptions["mode"], string> = {
  "streaming-signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "streaming-signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "streaming-unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
};

/** Signs with our signer, encodes with the test encoder, sends with node:http. */
async function rawStreamingPut(spec: RawStreamingPut): Promise<RawAnswer> {
  const path = `/bkt/${spec.key}`;
  const hasTrailer = spec.mode !== "streaming-signed";
  const signedHeaders: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(spec.payload.length + (spec.lengthDelta ?? 0)),
    ...(hasTrailer ? { "x-amz-trailer": "x-amz-checksum-crc32c" } : {}),
  };
  const added = signRequest(
    { method: "PUT", path, headers: signedHeaders, payloadHash: PAYLOAD_HASHES[spec.mode] },
    { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    { region: REGION },
  );
  const datetime = added["x-amz-date"] as string;
  const seed = /Signature=([0-9a-f]{64})/.exec(added.authorization ?? "")?.[1] ?? "";
  const date = datetime.slice(0, 8);
  const enc = encodeAwsChunked(spec.payload, {
    mode: spec.mode,
    context: {
      signingKey: signingKey(SECRET, date, REGION, "s3"),
      datetime,
      scope: `${date}/${REGION}/s3/aws4_request`,
      seedSignature: seed,
    },
    chunkSize: 65536,
    ...(hasTrailer ? { trailerAlgorithm: "CRC32C" as const } : {}),
    ...spec.encode,
  });
  const body = Buffer.from(enc.body);
  spec.mutate?.(body, enc);
  return new Promise<RawAnswer>((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method: "PUT",
        path,
        headers: { ...signedHeaders, ...added, "content-length": String(body.length) },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (b: Buffer) => parts.push(b));
        res.on("end", () => {
          const xml = Buffer.concat(parts).toString("utf8");
          resolve({ status: res.statusCode ?? 0, code: /<Code>([^<]+)<\/Code>/.exec(xml)?.[1] });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("raw request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

describe("tampered aws-chunked requests through node:http are refused and nothing is stored", () => {
  const payload = pattern(4 * 65536 + 500, 9);

  it("the untampered signed request (control) is accepted and stored", async () => {
    for (const mode of ["streaming-signed", "streaming-signed-trailer"] as const) {
      const key = `control-${mode}`;
      const answer = await rawStreamingPut({ key, mode, payload });
      expect(answer).toEqual({ status: 200, code: undefined });
      expect(stored.get(`/bkt/${key}`)?.equals(payload)).toBe(true);
    }
  });

  const cases: Array<Omit<RawStreamingPut, "payload"> & { status: number; code: string }> = [
    {
      key: "flipped-chunk-byte",
      mode: "streaming-signed-trailer",
      mutate: (body, enc) => {
        const at = (enc.chunks[2]?.dataOffset ?? 0) + 100;
        body[at] = (body[at] as number) ^ 0x80;
      },
      status: 403,
      code: "SignatureDoesNotMatch",
    },
    {
      key: "wrong-chunk-signature",
      mode: "streaming-signed",
      encode: {
        chunkSignature: (i, s) => (i === 1 ? s.replace(/.$/, s.endsWith("0") ? "1" : "0") : s),
      },
      status: 403,
      code: "SignatureDoesNotMatch",
    },
    {
      key: "wrong-trailer-checksum",
      mode: "streaming-signed-trailer",
      encode: { trailerValue: "AAAAAA==" },
      status: 400,
      code: "BadDigest",
    },
    {
      key: "decoded-length-plus-1",
      mode: "streaming-signed-trailer",
      lengthDelta: 1,
      status: 400,
      code: "IncompleteBody",
    },
    {
      key: "decoded-length-minus-1",
      mode: "streaming-signed-trailer",
      lengthDelta: -1,
      status: 400,
      code: "IncompleteBody",
    },
    {
      key: "unsigned-flipped-byte",
      mode: "streaming-unsigned-trailer",
      mutate: (body, enc) => {
        const at = (enc.chunks[4]?.dataOffset ?? 0) + 10;
        body[at] = (body[at] as number) ^ 0x01;
      },
      status: 400,
      code: "BadDigest",
    },
  ];
  for (const c of cases) {
    it(`${c.key} → ${c.status} ${c.code}`, async () => {
      const answer = await rawStreamingPut({ ...c, payload });
      expect(answer).toEqual({ status: c.status, code: c.code });
      expect(stored.has(`/bkt/${c.key}`)).toBe(false);
    });
  }
});
