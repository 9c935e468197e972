/**
 * The real AWS SDK for JavaScript v3 (default configuration, path style) and its presigner sign
 * requests to a tiny node:http server that runs verifySigV4 on exactly what Node hands over
 * (method, url, rawHeaders). Every request must verify. No S3 behaviour is claimed here, only
 * that our verifier accepts what the SDK's signer produces, for awkward keys and queries.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VerifiedRequest } from "../../s3/sigv4-types.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import { S3Error } from "../../s3/errors.js";

const AK = "AKIDSDKTEST";
const SK = "sdk/test+secret/0123456789ABCDEFGHIJKLMNOP";
const REGION = "us-east-1";
const BUCKET = "sdk-bucket";

/** One request the server saw, with the verifier's verdict. */
interface Seen {
  method: string;
  url: string;
  verified?: VerifiedRequest;
  error?: string;
  bodyBytes: number;
}

const seen: Seen[] = [];
let server: Server;
let endpoint: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const entry: Seen = { method: req.method ?? "", url: req.url ?? "", bodyBytes: 0 };
  seen.push(entry);
  try {
    entry.verified = verifySigV4(
      { method: req.method ?? "", rawUrl: req.url ?? "", rawHeaders: req.rawHeaders },
      { region: REGION, lookupSecret: (ak) => (ak === AK ? SK : undefined) },
    );
  } catch (err) {
    entry.error = err instanceof S3Error ? `${err.code}: ${err.message}` : String(err);
  }
  // Drain the body (aws-chunked bodies are decoded elsewhere; here only bytes are counted).
  req.on("data", (chunk: Buffer) => {
    entry.bodyBytes += chunk.length;
  });
  req.on("end", () => {
    if (entry.error !== undefined) {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>x</Message></Error>`,
      );
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.searchParams.get("list-type") === "2") {
      res.writeHead(200, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
          `<Name>${BUCKET}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>` +
          `<IsTruncated>false</IsTruncated></ListBucketResult>`,
      );
    } else if (req.method === "GET" || req.method === "HEAD") {
      res.writeHead(200, { "content-length": "5", etag: '"5d41402abc4b2a76b9719d911017c592"' });
      res.end(req.method === "GET" ? "hello" : undefined);
    } else if (req.method === "PUT") {
      res.writeHead(200, { etag: '"5d41402abc4b2a76b9719d911017c592"', "content-length": "0" });
      res.end();
    } else if (req.method === "DELETE") {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(405, { "content-length": "0" });
      res.end();
    }
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function client(): S3Client {
  return new S3Client({
    region: REGION,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: AK, secretAccessKey: SK },
  });
}

/** Every request seen since `from` verified; returns them. */
function allVerified(from: number): Seen[] {
  const batch = seen.slice(from);
  expect(batch.length).toBeGreaterThan(0);
  for (const s of batch) expect(s.error, `${s.method} ${s.url}`).toBeUndefined();
  return batch;
}

/** The key a request addressed, decoded from the raw request line (percent-decoding once). */
function keyOf(url: string): string {
  const path = url.split("?")[0] ?? "";
  return Buffer.from(decodeURIComponent(path).slice(`/${BUCKET}/`.length), "utf8").toString();
}

const KEYS: [string, string][] = [
  ["space", "dir/with space.txt"],
  ["plus", "a+b+c"],
  ["percent", "100% sure %2F"],
  ["sub-delims '()!*", "it's (really)! *"],
  ["unicode NFC", "caf\u00e9/r\u00e9sum\u00e9".normalize("NFC")],
  ["unicode NFD", "caf\u00e9/r\u00e9sum\u00e9".normalize("NFD")],
  ["double slash", "a//b"],
  ["1,024-byte key", "\u00e9".repeat(300) + "k".repeat(1024 - 600)],
];

describe("@aws-sdk/client-s3 requests verify", () => {
  it("the 1,024-byte key is 1,024 bytes and NFC differs from NFD", () => {
    expect(Buffer.byteLength(KEYS[7]?.[1] ?? "")).toBe(1024);
    expect(KEYS[4]?.[1]).not.toBe(KEYS[5]?.[1]);
  });

  it.each(KEYS)("GetObject, HeadObject, PutObject, DeleteObject — key with %s", async (_n, key) => {
    const s3 = client();
    try {
      const from = seen.length;
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(await got.Body?.transformToString()).toBe("hello");
      await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from("small body") }),
      );
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      const batch = allVerified(from);
      expect(batch.map((s) => s.method)).toEqual(["GET", "HEAD", "PUT", "DELETE"]);
      // The SDK did not normalise the key on the way (a//b, NFC/NFD all arrive as given).
      for (const s of batch) expect(keyOf(s.url)).toBe(key);
      for (const s of batch) expect(s.verified?.accessKeyId).toBe(AK);
      const put = batch[2] as Seen;
      expect(put.bodyBytes).toBeGreaterThanOrEqual("small body".length);
    } finally {
      s3.destroy();
    }
  });

  it("PutObject with a stream body (aws-chunked with a trailer) verifies its seed", async () => {
    const s3 = client();
    try {
      const from = seen.length;
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "streamed object",
          Body: Readable.from([Buffer.from("chunk one, "), Buffer.from("chunk two")]),
          // The SDK needs the decoded length of a stream for x-amz-decoded-content-length.
          ContentLength: "chunk one, chunk two".length,
        }),
      );
      const [put] = allVerified(from);
      // Current SDKs send streams as STREAMING-UNSIGNED-PAYLOAD-TRAILER (PITFALLS.md).
      expect(put?.verified?.payload).toMatch(/^streaming-/);
      expect(put?.bodyBytes).toBeGreaterThan("chunk one, chunk two".length);
    } finally {
      s3.destroy();
    }
  });

  it("ListObjectsV2 with a prefix holding a space and a +", async () => {
    const s3 = client();
    try {
      const from = seen.length;
      await s3.send(
        new ListObjectsV2Command({
          Bucket: BUCKET,
          Prefix: "dir with space+plus/",
          Delimiter: "/",
        }),
      );
      const [list] = allVerified(from);
      expect(list?.url).toContain("prefix=dir%20with%20space%2Bplus%2F");
    } finally {
      s3.destroy();
    }
  });
});

describe("@aws-sdk/s3-request-presigner URLs verify", () => {
  it.each(KEYS)("presigned GET and PUT — key with %s", async (_n, key) => {
    const s3 = client();
    try {
      const from = seen.length;
      const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), {
        expiresIn: 600,
      });
      const get = await fetch(getUrl, { signal: AbortSignal.timeout(10_000) });
      expect(get.status).toBe(200);
      expect(await get.text()).toBe("hello");

      const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: key }), {
        expiresIn: 600,
      });
      const put = await fetch(putUrl, {
        method: "PUT",
        body: "presigned body",
        signal: AbortSignal.timeout(10_000),
      });
      expect(put.status).toBe(200);
      await put.arrayBuffer();

      const batch = allVerified(from);
      expect(batch.map((s) => [s.method, s.verified?.authType])).toEqual([
        ["GET", "presigned"],
        ["PUT", "presigned"],
      ]);
      for (const s of batch) expect(keyOf(s.url)).toBe(key);
    } finally {
      s3.destroy();
    }
  });
});
