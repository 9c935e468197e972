import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import {
  createServer as createNetServer,
  connect,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { promisify } from "node:util";
import { describe, it, expect, inject, beforeAll, afterAll } from "vitest";
import { S3Client, S3ClientError, S3ConnectionError } from "../../s3/client.js";
import {
  copyObject,
  createBucket,
  deleteBucket,
  deleteObject,
  getObject,
  listBuckets,
  putObject,
} from "../../s3/client-operations.js";

const rig = inject("rig");
const CREDS = {
  accessKeyId: "AKIDFAULTTEST",
  secretAccessKey: "fault-secret-do-not-leak-0123456789",
};

async function listen(server: NetServer | HttpServer | TlsServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function closeServer(
  server: NetServer | HttpServer | TlsServer,
  sockets: Set<Socket>,
): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function trackSockets(server: NetServer | HttpServer | TlsServer): Set<Socket> {
  const sockets = new Set<Socket>();
  const add = (s: Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };
  server.on("connection", add);
  return sockets;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
}

describe("retries: a TCP server that closes every connection (network fault injector)", () => {
  let server: NetServer;
  let sockets: Set<Socket>;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    server = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    sockets = trackSockets(server);
    port = await listen(server);
  });
  afterAll(() => closeServer(server, sockets));

  const client = (): S3Client =>
    new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      credentials: CREDS,
      region: "us-east-1",
      retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    });

  it("retries a Buffer body `attempts` times, then fails with a connection error", async () => {
    const c = client();
    connections = 0;
    const err = await rejection(putObject(c, { bucket: "b", key: "k", body: Buffer.from("data") }));
    expect(err).toBeInstanceOf(S3ConnectionError);
    const conn = err as S3ConnectionError;
    expect(conn.kind).toBe("connection");
    expect(conn.code).toBe("ServiceUnavailable");
    expect(conn.status).toBe(503);
    expect(conn.attempts).toBe(4);
    expect(conn.cause).toBeDefined();
    expect(connections).toBe(4);
    await c.close();
  });

  it("sends a stream body once and never retries it", async () => {
    const c = client();
    connections = 0;
    const err = await rejection(
      putObject(c, {
        bucket: "b",
        key: "k",
        body: Readable.from([Buffer.from("data")]),
        contentLength: 4,
      }),
    );
    expect(err).toBeInstanceOf(S3ConnectionError);
    expect((err as S3ConnectionError).attempts).toBe(1);
    expect(connections).toBe(1);
    await c.close();
  });

  it("a closed port is a connection error, distinguishable from an S3 answer", async () => {
    const closed = createNetServer();
    const closedPort = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const c = new S3Client({
      endpoint: `http://127.0.0.1:${closedPort}`,
      credentials: CREDS,
      region: "us-east-1",
      retry: { attempts: 2, baseDelayMs: 1 },
    });
    const err = await rejection(listBuckets(c));
    expect(err).toBeInstanceOf(S3ConnectionError);
    expect((err as S3ConnectionError).failure).toBe("connect");
    expect((err as S3ConnectionError).attempts).toBe(2);
    expect(String((err as Error).message)).not.toContain(CREDS.secretAccessKey);
    await c.close();
  });
});

describe("error answers from a misbehaving endpoint (HTTP fault injector)", () => {
  let server: HttpServer;
  let sockets: Set<Socket>;
  let port: number;
  let requests = 0;
  let mode: "slowdown" | "echo" | "silent" | "error-in-200" = "slowdown";

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      requests++;
      req.resume();
      if (mode === "silent") return; // never answers: a headers timeout must fire
      if (mode === "slowdown") {
        res.writeHead(503, { "content-type": "application/xml", "x-amz-request-id": "RID503" });
        res.end(
          "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        );
        return;
      }
      if (mode === "error-in-200") {
        res.writeHead(200, { "content-type": "application/xml" });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?>\n\n  <Error><Code>InternalError</Code><Message>copy failed</Message><RequestId>R200</RequestId></Error>',
        );
        return;
      }
      // "echo": what some servers do on a signature mismatch, plus a hostile message.
      res.writeHead(403, { "content-type": "application/xml" });
      res.end(
        `<Error><Code>SignatureDoesNotMatch</Code><Message>secret was ${CREDS.secretAccessKey}</Message>` +
          `<StringToSign>AWS4-HMAC-SHA256\n20240101T000000Z</StringToSign><CanonicalRequest>GET /</CanonicalRequest>` +
          `<AWSAccessKeyId>${CREDS.accessKeyId}</AWSAccessKeyId><RequestId>RID403</RequestId></Error>`,
      );
    });
    sockets = trackSockets(server);
    port = await listen(server);
  });
  afterAll(() => closeServer(server, sockets));

  const client = (opts: { headersMs?: number } = {}): S3Client =>
    new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      credentials: CREDS,
      region: "us-east-1",
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      timeouts: { headersMs: opts.headersMs ?? 10_000 },
    });

  it("retries 503 SlowDown for a replayable body, then reports SlowDown", async () => {
    mode = "slowdown";
    requests = 0;
    const c = client();
    const err = await rejection(putObject(c, { bucket: "b", key: "k", body: "abc" }));
    expect(err).toBeInstanceOf(S3ClientError);
    expect(err).not.toBeInstanceOf(S3ConnectionError);
    expect((err as S3ClientError).code).toBe("SlowDown");
    expect((err as S3ClientError).requestId).toBe("RID503");
    expect(requests).toBe(3);
    await c.close();
  });

  it("does not retry 503 for a stream body", async () => {
    mode = "slowdown";
    requests = 0;
    const c = client();
    const err = await rejection(
      putObject(c, { bucket: "b", key: "k", body: Readable.from(["abc"]), contentLength: 3 }),
    );
    expect((err as S3ClientError).code).toBe("SlowDown");
    expect(requests).toBe(1);
    await c.close();
  });

  it("scrubs an echoed secret, StringToSign and CanonicalRequest from the error", async () => {
    mode = "echo";
    requests = 0;
    const c = client();
    const err = (await rejection(listBuckets(c))) as S3ClientError;
    expect(err.code).toBe("SignatureDoesNotMatch");
    expect(err.requestId).toBe("RID403");
    expect(requests).toBe(1); // 403 is not retried
    const everything = JSON.stringify({ ...err, message: err.message, stack: err.stack });
    expect(everything).not.toContain(CREDS.secretAccessKey);
    expect(everything).not.toMatch(/StringToSign|CanonicalRequest|20240101T000000Z/);
    await c.close();
  });

  it("turns an Error document inside a 200 answer into an error", async () => {
    mode = "error-in-200";
    const c = client();
    const err = (await rejection(
      copyObject(c, { bucket: "b", key: "k", sourceBucket: "s", sourceKey: "k" }),
    )) as S3ClientError;
    expect(err).toBeInstanceOf(S3ClientError);
    expect(err.code).toBe("InternalError");
    expect(err.requestId).toBe("R200");
    await c.close();
  });

  it("a server that never answers hits the headers timeout and is a connection error", async () => {
    mode = "silent";
    const c = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      credentials: CREDS,
      region: "us-east-1",
      retry: { attempts: 1 },
      timeouts: { headersMs: 300 },
    });
    const err = await rejection(listBuckets(c));
    expect(err).toBeInstanceOf(S3ConnectionError);
    expect((err as S3ConnectionError).failure).toBe("timeout");
    await c.close();
  });

  it("an abort signal rejects with its reason and stops retrying", async () => {
    mode = "silent";
    const c = client();
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const pending = rejection(listBuckets(c, { signal: controller.signal }));
    // Abort once the request reached the server (a condition, not a sleep).
    const before = requests;
    await expect.poll(() => requests, { timeout: 5_000, interval: 10 }).toBeGreaterThan(before);
    controller.abort(reason);
    expect(await pending).toBe(reason);
    await c.close();
  });
});

describe("TLS with a private CA (loopback TLS proxy in front of MinIO)", () => {
  let dir: string;
  let cert: Buffer;
  let proxy: TlsServer;
  let sockets: Set<Socket>;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "h3-tls-"));
    await promisify(execFile)("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=s3-client-test",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    cert = await readFile(join(dir, "cert.pem"));
    const key = await readFile(join(dir, "key.pem"));
    const target = new URL(rig.minio.endpoint);
    proxy = createTlsServer({ cert, key }, (socket) => {
      const upstream = connect(Number(target.port), target.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
    });
    sockets = trackSockets(proxy);
    port = await listen(proxy);
  });

  afterAll(async () => {
    await closeServer(proxy, sockets);
    await rm(dir, { recursive: true, force: true });
  });

  it("works with the CA bundle: a signed put, get and list over https", async () => {
    const c = new S3Client({
      endpoint: `https://127.0.0.1:${port}`,
      credentials: rig.minio,
      region: rig.minio.region,
      ca: cert,
    });
    const bucket = `h3-tls-${randomBytes(4).toString("hex")}`;
    await createBucket(c, { bucket });
    try {
      await putObject(c, { bucket, key: "secure key", body: "over tls" });
      expect(await text((await getObject(c, { bucket, key: "secure key" })).body)).toBe("over tls");
      expect((await listBuckets(c)).buckets.map((b) => b.name)).toContain(bucket);
    } finally {
      await deleteObject(c, { bucket, key: "secure key" });
      await deleteBucket(c, { bucket });
      await c.close();
    }
  });

  it("refuses the self-signed certificate without the CA, without retrying", async () => {
    const c = new S3Client({
      endpoint: `https://127.0.0.1:${port}`,
      credentials: rig.minio,
      region: rig.minio.region,
      retry: { attempts: 3, baseDelayMs: 1 },
    });
    const err = await rejection(listBuckets(c));
    expect(err).toBeInstanceOf(S3ConnectionError);
    expect((err as S3ConnectionError).failure).toBe("tls");
    expect((err as S3ConnectionError).attempts).toBe(1);
    await c.close();
  });
});
