// A client that disconnects mid-upload must not leave a truncated object (issue 11). For both
// rig servers as target and as source (gateway A: target MinIO, source versitygw; gateway B:
// target versitygw, source MinIO), in ready and forward mode, with every payload mode (unsigned,
// presigned, signed hex, aws-chunked signed, aws-chunked unsigned with a trailer), a good object
// is written first, then a PUT of other bytes through the gateway is cut at a random point
// (seeded; the seed is printed for replay). The object on the mode's side must still be the
// good one, byte for byte.
//
// What decides the outcome is what the backend sees: the gateway frames bodies without their
// own integrity as aws-chunked with a trailing CRC32 sent only after the last byte (listener's
// integrityTrailer), so a cut body is invalid to the backend. The backend's handling of the
// dropped connection is awaited through the counting proxy (its connection to the backend has
// closed) and then through a full round trip on the same backend.

import { createHash, randomBytes } from "node:crypto";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import {
  STREAMING_SIGNED,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  credentialScope,
} from "../../s3/sigv4-canonical.js";
import { presignUrl, signRequest } from "../../s3/sigv4-sign.js";
import type { RigServer } from "../rig/types.js";
import { deriveSigningKey, encodeAwsChunked } from "../helpers/aws-chunked-encoder.js";
import {
  CountingProxy,
  directClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";

const rig = inject("rig");
const run = randomBytes(4).toString("hex");
const USER = testCredential("truncate-user");
const SEED = Number(process.env.TRUNCATE_SEED ?? Date.now() % 1_000_000);
const SIZE = 512 * 1024;

/** A small seeded PRNG (mulberry32), so a failing cut point can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAYLOAD_MODES = [
  "unsigned",
  "presigned",
  "signed-hex",
  "aws-chunked-signed",
  "aws-chunked-trailer",
] as const;
type PayloadModeName = (typeof PAYLOAD_MODES)[number];

function direct(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

function md5(data: Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** The request line, headers and full body of a PUT in one payload mode. */
function buildPut(
  gw: TestGateway,
  path: string,
  data: Buffer,
  mode: PayloadModeName,
): { head: string; body: Buffer } {
  const host = new URL(gw.url).host;
  const region = "us-east-1";
  const now = new Date();
  let target = path;
  let headers: Record<string, string> = { host };
  let body = data;
  if (mode === "presigned") {
    const url = new URL(
      presignUrl({ method: "PUT", origin: gw.url, path }, USER, { region, expiresSeconds: 300 }),
    );
    target = `${url.pathname}${url.search}`;
    headers["content-length"] = String(data.length);
  } else if (mode === "unsigned" || mode === "signed-hex") {
    headers["content-length"] = String(data.length);
    const payloadHash =
      mode === "unsigned" ? UNSIGNED_PAYLOAD : createHash("sha256").update(data).digest("hex");
    headers = {
      ...headers,
      ...signRequest({ method: "PUT", path, headers, payloadHash }, USER, { region, now }),
    };
  } else {
    const streaming = mode === "aws-chunked-signed" ? STREAMING_SIGNED : STREAMING_UNSIGNED_TRAILER;
    const extra: Record<string, string> = {
      "x-amz-decoded-content-length": String(data.length),
      "content-encoding": "aws-chunked",
    };
    if (mode === "aws-chunked-trailer") extra["x-amz-trailer"] = "x-amz-checksum-crc32";
    if (mode === "aws-chunked-trailer") {
      const enc = encodeAwsChunked(data, {
        mode: "streaming-unsigned-trailer",
        trailerAlgorithm: "CRC32",
      });
      headers = { ...headers, ...extra, "content-length": String(enc.body.length) };
      headers = {
        ...headers,
        ...signRequest({ method: "PUT", path, headers, payloadHash: streaming }, USER, {
          region,
          now,
        }),
      };
      body = enc.body;
    } else {
      // Signed chunks: the seed signature comes from the signed headers, which include the
      // encoded length; a signed chunk header has a fixed size, so compute it first.
      const chunks = Math.ceil(data.length / 65536);
      const sigLen = ";chunk-signature=".length + 64;
      let encodedLength = 0;
      for (let i = 0; i < chunks; i++) {
        const n = Math.min(65536, data.length - i * 65536);
        encodedLength += n.toString(16).length + sigLen + 2 + n + 2;
      }
      encodedLength += 1 + sigLen + 2 + 2;
      headers = { ...headers, ...extra, "content-length": String(encodedLength) };
      const signed = signRequest({ method: "PUT", path, headers, payloadHash: streaming }, USER, {
        region,
        now,
      });
      headers = { ...headers, ...signed };
      const datetime = signed["x-amz-date"] as string;
      const scope = credentialScope(datetime.slice(0, 8), region, "s3");
      const seedSignature = /Signature=([0-9a-f]{64})/.exec(
        signed.authorization ?? "",
      )?.[1] as string;
      const enc = encodeAwsChunked(data, {
        mode: "streaming-signed",
        context: {
          signingKey: deriveSigningKey(USER.secretAccessKey, datetime.slice(0, 8), region, "s3"),
          datetime,
          scope,
          seedSignature,
        },
      });
      expect(enc.body.length).toBe(encodedLength);
      body = enc.body;
    }
  }
  const head =
    `PUT ${target} HTTP/1.1\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("") +
    "\r\n";
  return { head, body };
}

/** Sends the headers and the first `cut` body bytes, waits until the gateway has them, and drops the connection. */
async function sendCut(
  gw: TestGateway,
  certs: TestCerts,
  head: string,
  body: Buffer,
  cut: number,
  proxy: CountingProxy,
): Promise<void> {
  const socket: TLSSocket = await new Promise((done, fail) => {
    const s = tlsConnect(
      { host: "127.0.0.1", port: gw.port, ca: certs.ca, servername: "localhost" },
      () => done(s),
    );
    s.once("error", fail);
  });
  socket.on("error", () => undefined);
  socket.resume();
  const closedBefore = proxy.backendConnectionsClosed;
  const upBefore = proxy.bytesUp;
  await new Promise<void>((done) => socket.write(head, () => done()));
  await new Promise<void>((done) => socket.write(body.subarray(0, cut), () => done()));
  // Wait until bytes of this upload reached the backend (when the gateway got that far), then cut.
  await waitFor(() => proxy.bytesUp > upBefore || socket.destroyed, 5_000).catch(() => undefined);
  socket.destroy();
  // The upstream connection of the cut request closes (the gateway destroys it).
  await waitFor(
    () => proxy.backendConnectionsClosed > closedBefore || proxy.bytesUp === upBefore,
    10_000,
  );
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const PAIRS = [
  { name: "target MinIO, source versitygw", target: () => rig.minio, source: () => rig.versitygw },
  { name: "target versitygw, source MinIO", target: () => rig.versitygw, source: () => rig.minio },
] as const;

describe.each(PAIRS)("cut uploads, $name", (pair) => {
  let certs: TestCerts;
  let gw: TestGateway;
  let targetProxy: CountingProxy;
  let sourceProxy: CountingProxy;
  const random = prng(SEED);

  beforeAll(async () => {
    console.log(`gateway-front-truncate: TRUNCATE_SEED=${SEED}`);
    certs = await makeTestCerts();
    targetProxy = await CountingProxy.start(pair.target().endpoint);
    sourceProxy = await CountingProxy.start(pair.source().endpoint);
    gw = await startTestGateway({
      certs,
      target: { endpoint: targetProxy.endpoint, server: pair.target() },
      credentials: [USER],
      listener: { tlsReloadOnSignal: false },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await targetProxy?.close();
    await sourceProxy?.close();
  });

  it.each(["an existing bucket", "a missing bucket (the backend answers before the body ends)"])(
    "refuses a malformed aws-chunked body to %s and stays up",
    async (where) => {
      const missing = where.startsWith("a missing");
      const bucket = `gwcut-bad-${missing ? "x" : "e"}-${run}-${pair.target().kind.slice(0, 3)}`;
      if (!missing)
        await directClient(pair.target()).send(new CreateBucketCommand({ Bucket: bucket }));
      const { head, body } = buildPut(
        gw,
        `/${bucket}/bad-framing`,
        randomBytes(SIZE),
        "aws-chunked-signed",
      );
      // The CRLF after the first chunk's data (a 65,536-byte chunk: an 88-byte chunk header).
      const broken = Buffer.from(body);
      broken[88 + 65536] = 0x58;
      const socket: TLSSocket = await new Promise((done, fail) => {
        const s = tlsConnect(
          { host: "127.0.0.1", port: gw.port, ca: certs.ca, servername: "localhost" },
          () => done(s),
        );
        s.once("error", fail);
      });
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
      socket.on("error", () => undefined);
      const closed = new Promise<void>((done) => socket.once("close", () => done()));
      socket.write(head);
      socket.write(broken);
      await closed;
      expect(answer).toMatch(missing ? /^HTTP\/1\.1 (400|404)/ : /^HTTP\/1\.1 400/);
      // Nothing stored, and still serving.
      if (!missing) {
        const res = await direct(pair.target()).request({
          method: "HEAD",
          bucket,
          key: "bad-framing",
          okStatuses: [404],
        });
        expect(res.status).toBe(404);
      }
      const again = buildPut(gw, `/${bucket}/after`, Buffer.from("fine"), "unsigned");
      const ok: TLSSocket = await new Promise((done, fail) => {
        const s = tlsConnect(
          { host: "127.0.0.1", port: gw.port, ca: certs.ca, servername: "localhost" },
          () => done(s),
        );
        s.once("error", fail);
      });
      let okAnswer = "";
      ok.on("data", (c: Buffer) => (okAnswer += c.toString("latin1")));
      ok.write(again.head.replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n"));
      ok.write(again.body);
      await new Promise<void>((done) => ok.once("close", () => done()));
      expect(okAnswer).toMatch(missing ? /^HTTP\/1\.1 404/ : /^HTTP\/1\.1 200/);
    },
  );

  describe.each(["ready", "forward"] as const)("in %s mode", (mode) => {
    const bucket = `gwcut-${mode}-${run}-${pair.target().kind.slice(0, 3)}`;
    const sourceBucket = `${bucket}-src`;
    let home: { client: S3Client; bucket: string; proxy: () => CountingProxy };

    beforeAll(async () => {
      await directClient(pair.target()).send(new CreateBucketCommand({ Bucket: bucket }));
      await directClient(pair.source()).send(new CreateBucketCommand({ Bucket: sourceBucket }));
      const s = pair.source();
      await gw.gateway.store.attach(
        {
          bucket,
          sourceUrl: sourceProxy.endpoint,
          sourceBucket,
          sourceAccessKey: s.accessKeyId,
          sourceSecretKey: s.secretAccessKey,
          sourceRegion: s.region,
          sourceCa: "system",
        },
        { by: "test" },
      );
      if (mode === "forward") {
        await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
      }
      home =
        mode === "forward"
          ? { client: direct(pair.source()), bucket: sourceBucket, proxy: () => sourceProxy }
          : { client: direct(pair.target()), bucket, proxy: () => targetProxy };
    });

    it.each(PAYLOAD_MODES)("%s: the good object survives a cut upload", async (payloadMode) => {
      const key = `cut-${payloadMode}`;
      const good = randomBytes(SIZE);
      await home.client.request({ method: "PUT", bucket: home.bucket, key, body: good });
      const { head, body } = buildPut(gw, `/${bucket}/${key}`, randomBytes(SIZE), payloadMode);
      for (let round = 0; round < 3; round++) {
        // Anywhere from the first byte to the last one missing.
        const cut = 1 + Math.floor(random() * (body.length - 1));
        await sendCut(gw, certs, head, body, cut, home.proxy());
        // A full round trip on the same backend after its connection closed.
        const got = await home.client.request({ method: "GET", bucket: home.bucket, key });
        const chunks: Buffer[] = [];
        for await (const c of got.body) chunks.push(c as Buffer);
        const now = Buffer.concat(chunks);
        expect({ cut, of: body.length, size: now.length, md5: md5(now) }).toEqual({
          cut,
          of: body.length,
          size: good.length,
          md5: md5(good),
        });
      }
    });
  });
});
