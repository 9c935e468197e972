// The gateway's front end as clients meet it (issue 11): Signature Version 2 from real clients
// (boto3 with signature_version="s3", the Debian aws-cli v1 with `signature_version = s3`, their
// presigned URLs fetched with curl) in ready and forward mode with the data on the mode's side;
// SigV2 refusals that send a backend nothing; Expect headers S3 ignores; slow-header clients
// whose sockets are really closed, hundreds at once without starving a fast client; a missing
// Host; client disconnects logged at info with the bytes received; certificate rotation on
// SIGHUP and on file change, with a keep-alive connection kept across it and a bad pair refused.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, rename, writeFile } from "node:fs/promises";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { crc32 } from "node:zlib";
import { S3Client } from "../../s3/client.js";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { signV2 } from "../../s3/sigv2-verify.js";
import { EMPTY_SHA256 } from "../../s3/sigv4-canonical.js";
import { signRequest } from "../../s3/sigv4-sign.js";
import {
  CountingProxy,
  bytesOf,
  directClient,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { repoRoot } from "../rig/servers.js";

const rig = inject("rig");
const run = randomBytes(4).toString("hex");
const USER = testCredential("front-user");
const exec = promisify(execFile);
const HEADERS_TIMEOUT_MS = 1_500;

let certs: TestCerts;
let gw: TestGateway;
let targetProxy: CountingProxy;
let sourceProxy: CountingProxy;
let tls: Agent;
let dir: string;

function backendBytes(): number {
  return targetProxy.bytesUp + sourceProxy.bytesUp;
}

/** Our own S3 client straight to a rig server (for the direct checks). */
function direct(server: typeof rig.minio): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

function md5(data: Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** A raw request to the gateway: status, S3 error code, body. */
async function raw(
  method: string,
  pathAndQuery: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<{ status: number; code: string | undefined; text: string }> {
  const res = await request(`${gw.url}${pathAndQuery}`, {
    method: method as "GET",
    headers,
    body: body ?? null,
    dispatcher: tls,
  });
  const text = await res.body.text();
  return { status: res.statusCode, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], text };
}

/** A SigV2 header-form request's headers. */
function v2Headers(
  method: string,
  resource: string,
  cred: { accessKeyId: string; secretAccessKey: string } = USER,
  date = new Date().toUTCString(),
): Record<string, string> {
  const sig = signV2(cred.secretAccessKey, `${method}\n\n\n${date}\n${resource}`);
  return { date, authorization: `AWS ${cred.accessKeyId}:${sig}` };
}

/** A SigV4 header-form bodyless request's headers. */
function v4Headers(method: string, path: string, extra: Record<string, string> = {}) {
  const headers = { host: new URL(gw.url).host, ...extra };
  return {
    ...headers,
    ...signRequest({ method, path, headers, payloadHash: EMPTY_SHA256 }, USER, {
      region: rig.minio.region,
    }),
  };
}

/** Runs a program with a clean environment; rejects with its output on a non-zero exit. */
async function tool(file: string, args: string[], env: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await exec(file, args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...env },
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${file} ${args.join(" ")}: ${e.message}\n${e.stderr ?? ""}\n${e.stdout ?? ""}`,
    );
  }
}

beforeAll(async () => {
  certs = await makeTestCerts();
  dir = await mkdtemp(join(tmpdir(), "s3gw-front-"));
  targetProxy = await CountingProxy.start(rig.minio.endpoint);
  sourceProxy = await CountingProxy.start(rig.versitygw.endpoint);
  gw = await startTestGateway({
    certs,
    target: { endpoint: targetProxy.endpoint, server: rig.minio },
    credentials: [USER],
    listener: { headersTimeoutMs: HEADERS_TIMEOUT_MS, tlsReloadOnSignal: false },
  });
  tls = new Agent({ connect: { ca: certs.ca } });
});

afterAll(async () => {
  await gw?.close();
  await tls?.close();
  await targetProxy?.close();
  await sourceProxy?.close();
});

describe.each(["ready", "forward"] as const)("SigV2 clients in %s mode", (mode) => {
  const bucket = `gwfront-${mode}-${run}`;
  const sourceBucket = `${bucket}-src`;
  let home: { client: S3Client; bucket: string };
  let other: { client: S3Client; bucket: string };
  let env: Record<string, string>;

  beforeAll(async () => {
    await directClient(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
    await directClient(rig.versitygw).send(new CreateBucketCommand({ Bucket: sourceBucket }));
    await gw.gateway.store.attach(
      {
        bucket,
        sourceUrl: sourceProxy.endpoint,
        sourceBucket,
        sourceAccessKey: rig.versitygw.accessKeyId,
        sourceSecretKey: rig.versitygw.secretAccessKey,
        sourceRegion: rig.versitygw.region,
        sourceCa: "system",
      },
      { by: "test" },
    );
    if (mode === "forward") {
      await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
    }
    const t = { client: direct(rig.minio), bucket };
    const s = { client: direct(rig.versitygw), bucket: sourceBucket };
    home = mode === "forward" ? s : t;
    other = mode === "forward" ? t : s;
    const home$ = await mkdtemp(join(dir, `home-${mode}-`));
    await writeFile(
      join(home$, "aws-config"),
      "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3\n",
    );
    await writeFile(
      join(home$, "aws-credentials"),
      `[default]\naws_access_key_id = ${USER.accessKeyId}\naws_secret_access_key = ${USER.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    env = {
      HOME: home$,
      AWS_CONFIG_FILE: join(home$, "aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(home$, "aws-credentials"),
      AWS_ACCESS_KEY_ID: USER.accessKeyId,
      AWS_SECRET_ACCESS_KEY: USER.secretAccessKey,
      AWS_CA_BUNDLE: join(certs.dir, "ca.pem"),
      AWS_EC2_METADATA_DISABLED: "true",
    };
  });

  /** The key holds `data` on the mode's side and is absent on the other. */
  async function onHomeOnly(key: string, data: Buffer): Promise<void> {
    const got = await home.client.request({ method: "GET", bucket: home.bucket, key });
    expect(md5(await bytesOf(got.body)), `${key} on the home side`).toBe(md5(data));
    const elsewhere = await other.client.request({
      method: "HEAD",
      bucket: other.bucket,
      key,
      okStatuses: [404],
    });
    expect(elsewhere.status, `${key} on the other side`).toBe(404);
  }

  it("boto3 (signature_version='s3'): put, get, range, list, delete; its presigned GET and PUT with curl", async () => {
    const script = join(repoRoot, "test", "fixtures", "clients", "boto3-sigv2.py");
    const out = await tool("python3", [script, gw.url, bucket, "boto3"], env);
    const urls = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { get: string; put: string };
    expect(urls.get).toContain("AWSAccessKeyId=");
    await onHomeOnly("boto3/header put.bin", Buffer.from("boto3 sigv2 ".repeat(1000)));
    const cacert = join(certs.dir, "ca.pem");
    const got = await tool("curl", ["-sSf", "--cacert", cacert, urls.get], {});
    expect(got).toBe("presigned v2 body");
    const file = join(dir, `put-${mode}.bin`);
    const data = randomBytes(70_000);
    await writeFile(file, data);
    await tool("curl", ["-sSf", "--cacert", cacert, "-T", file, urls.put], {});
    await onHomeOnly("boto3/presigned-put", data);
  });

  it("aws-cli v1 with signature_version = s3: cp up and down, and `aws s3 presign` fetched with curl", async () => {
    const file = join(dir, `cli-${mode}.bin`);
    const data = randomBytes(100_000);
    await writeFile(file, data);
    await tool(
      "aws",
      ["--endpoint-url", gw.url, "s3", "cp", file, `s3://${bucket}/cli/obj.bin`],
      env,
    );
    await onHomeOnly("cli/obj.bin", data);
    const url = (
      await tool(
        "aws",
        ["--endpoint-url", gw.url, "s3", "presign", `s3://${bucket}/cli/obj.bin`],
        env,
      )
    ).trim();
    // aws-cli 1.45's `s3 presign` signs V4 whatever the config says (boto3 covers V2 presigning).
    const back = join(dir, `cli-${mode}.out`);
    await tool("curl", ["-sSf", "--cacert", join(certs.dir, "ca.pem"), "-o", back, url], {});
    expect(md5(await readFile(back))).toBe(md5(data));
  });

  it("s3cmd with signature_v2 = True: put, get, and `s3cmd signurl` fetched with curl", async () => {
    const cfg = join(env.HOME as string, "s3cmd.cfg");
    await writeFile(
      cfg,
      [
        "[default]",
        `access_key = ${USER.accessKeyId}`,
        `secret_key = ${USER.secretAccessKey}`,
        `host_base = 127.0.0.1:${gw.port}`,
        `host_bucket = 127.0.0.1:${gw.port}`,
        "use_https = True",
        `ca_certs_file = ${join(certs.dir, "ca.pem")}`,
        "signature_v2 = True",
        "signurl_use_https = True",
        "progress_meter = False",
        "guess_mime_type = False",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const file = join(dir, `s3cmd-${mode}.bin`);
    const data = randomBytes(50_000);
    await writeFile(file, data);
    const s3cmd = (...args: string[]): Promise<string> =>
      tool("s3cmd", ["-c", cfg, ...args], { HOME: env.HOME as string });
    await s3cmd("put", file, `s3://${bucket}/s3cmd/obj.bin`);
    await onHomeOnly("s3cmd/obj.bin", data);
    const back = join(dir, `s3cmd-${mode}.out`);
    await s3cmd("get", "--force", `s3://${bucket}/s3cmd/obj.bin`, back);
    expect(md5(await readFile(back))).toBe(md5(data));
    const url = (await s3cmd("signurl", `s3://${bucket}/s3cmd/obj.bin`, "+300")).trim();
    expect(url).toContain("AWSAccessKeyId=");
    const viaUrl = join(dir, `s3cmd-${mode}-signed.out`);
    await tool("curl", ["-sSf", "--cacert", join(certs.dir, "ca.pem"), "-o", viaUrl, url], {});
    expect(md5(await readFile(viaUrl))).toBe(md5(data));
  });

  it("refuses bad SigV2 requests with S3's codes and sends the backends nothing", async () => {
    const path = `/${bucket}/boto3/presigned-get`;
    const before = backendBytes();
    const expired = Math.floor(Date.now() / 1000) - 10;
    const expiredSig = signV2(USER.secretAccessKey, `GET\n\n\n${expired}\n${path}`);
    const cases: [string, Promise<{ status: number; code: string | undefined }>, number, string][] =
      [
        [
          "bad signature",
          raw("GET", path, v2Headers("GET", path, { ...USER, secretAccessKey: "wrong-secret" })),
          403,
          "SignatureDoesNotMatch",
        ],
        [
          "unknown key",
          raw("GET", path, v2Headers("GET", path, { accessKeyId: "nobody", secretAccessKey: "x" })),
          403,
          "InvalidAccessKeyId",
        ],
        [
          "skewed clock",
          raw(
            "GET",
            path,
            v2Headers("GET", path, USER, new Date(Date.now() - 3_600_000).toUTCString()),
          ),
          403,
          "RequestTimeTooSkewed",
        ],
        [
          "other key than signed",
          raw("GET", `${path}-other`, v2Headers("GET", path)),
          403,
          "SignatureDoesNotMatch",
        ],
        [
          "expired presigned",
          raw(
            "GET",
            `${path}?AWSAccessKeyId=${USER.accessKeyId}&Expires=${expired}&Signature=${encodeURIComponent(expiredSig)}`,
            {},
          ),
          403,
          "AccessDenied",
        ],
        [
          "presigned without Signature",
          raw("GET", `${path}?AWSAccessKeyId=${USER.accessKeyId}&Expires=${expired + 100}`, {}),
          403,
          "AccessDenied",
        ],
        [
          "both forms",
          raw(
            "GET",
            `${path}?AWSAccessKeyId=${USER.accessKeyId}&Expires=1&Signature=x`,
            v2Headers("GET", path),
          ),
          400,
          "InvalidArgument",
        ],
      ];
    for (const [name, p, status, code] of cases) {
      const r = await p;
      expect({ name, status: r.status, code: r.code }).toEqual({ name, status, code });
    }
    expect(backendBytes() - before).toBe(0);
  });
});

describe("request handling", () => {
  it("completes a FULL_OBJECT CRC32 multipart upload (the object's checksum header is not the XML body's)", async () => {
    const bucket = `gwfront-crc-${run}`;
    await directClient(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
    const client = gatewayClient(gw, certs, USER);
    const b64 = (n: number): string => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      return b.toString("base64");
    };
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1024)];
    const created = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: "full-object",
        ChecksumAlgorithm: "CRC32",
        ChecksumType: "FULL_OBJECT",
      }),
    );
    const done = [];
    for (const [i, data] of parts.entries()) {
      const r = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: "full-object",
          UploadId: created.UploadId,
          PartNumber: i + 1,
          Body: data,
          ChecksumCRC32: b64(crc32(data)),
        }),
      );
      done.push({ ETag: r.ETag, PartNumber: i + 1, ChecksumCRC32: b64(crc32(data)) });
    }
    const whole = b64(crc32(Buffer.concat(parts)));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: "full-object",
        UploadId: created.UploadId,
        ChecksumCRC32: whole,
        ChecksumType: "FULL_OBJECT",
        MultipartUpload: { Parts: done },
      }),
    );
    const head = await directClient(rig.minio).send(
      new HeadObjectCommand({ Bucket: bucket, Key: "full-object", ChecksumMode: "ENABLED" }),
    );
    expect(head.ContentLength).toBe(5 * 1024 * 1024 + 1024);
    expect(head.ChecksumCRC32).toBe(whole);
    client.destroy();
  });

  it.each(["", "something-else", "x=y; q"])(
    "ignores Expect: %j as S3 does (no 417)",
    async (expect$) => {
      const headers = v4Headers("GET", "/", { expect: expect$, connection: "close" });
      const head = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      const answer = await exchange(await openTls(), `GET / HTTP/1.1\r\n${head}\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
    },
  );

  it("answers a request without Host with an S3 XML 400", async () => {
    const socket = await openTls();
    const answer = await exchange(socket, "GET / HTTP/1.1\r\nconnection: close\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain("<Code>InvalidRequest</Code>");
  });

  it("answers more than 2,000 headers with an S3 XML answer, not a bare 400", async () => {
    const extra: Record<string, string> = {};
    for (let i = 0; i < 2_100; i++) extra[`x-h${i}`] = "1";
    const r = await raw("GET", "/", { ...extra, ...v4Headers("GET", "/") });
    // The gateway parses them all (the 32 KiB header cap bounds them) and answers as S3 does;
    // here MinIO's own MetadataTooLarge comes back as our XML error.
    expect(r.text).toMatch(/^<\?xml/);
    expect(r.code).toBeDefined();
  });

  it("closes a slow-header client's socket within the header timeout (the descriptor is released)", async () => {
    const socket = await openTls();
    let answer = "";
    socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    const started = Date.now();
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    // One byte at a time, for far longer than the timeout: the gateway must cut it.
    const text = `GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ${"a".repeat(1000)}`;
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= text.length) return;
      socket.write(text[i++] as string, () => undefined);
    }, 100);
    socket.on("error", () => undefined);
    await closed;
    clearInterval(timer);
    expect(answer).toContain("RequestTimeout");
    // Gone, not just answered: the socket closed while the client was still sending.
    expect(i).toBeLessThan(text.length);
    expect(Date.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS + 2_500);
  });

  it("serves a fast client while 300 slow-header clients are connected", async () => {
    const slow: TLSSocket[] = [];
    for (let n = 0; n < 300; n++) {
      const s = await openTls();
      s.on("error", () => undefined);
      // Reading, so the client notices when the gateway closes the socket.
      s.resume();
      s.write("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n");
      slow.push(s);
    }
    const client = gatewayClient(gw, certs, USER);
    const started = Date.now();
    await client.send(new ListBucketsCommand({}));
    expect(Date.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS);
    client.destroy();
    await Promise.all(
      slow.map(
        (s) => new Promise<void>((done) => (s.destroyed ? done() : s.once("close", () => done()))),
      ),
    );
  });

  it("logs a client that disconnects mid-upload at info, without a stack, with the bytes received", async () => {
    const bucket = `gwfront-abort-${run}`;
    await directClient(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
    const key = `aborted-${run}`;
    const size = 8 * 1024 * 1024;
    const path = `/${bucket}/${key}`;
    const headers = {
      host: new URL(gw.url).host,
      "content-length": String(size),
    };
    const auth = signRequest(
      { method: "PUT", path, headers, payloadHash: "UNSIGNED-PAYLOAD" },
      USER,
      {
        region: rig.minio.region,
      },
    );
    const socket = await openTls();
    socket.on("error", () => undefined);
    const head = Object.entries({ ...headers, ...auth })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(`PUT ${path} HTTP/1.1\r\n${head}\r\n`);
    const sent = 3 * 1024 * 1024;
    await new Promise<void>((done) => socket.write(Buffer.alloc(sent, 7), () => done()));
    // Wait until the gateway has passed most of it on, then cut.
    await waitFor(() => targetProxy.bytesUp > 0 && gw.logs().length > 0, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    await waitFor(
      () => gw.logs().includes(`"operation":"PutObject"`) && /"status":499/.test(gw.logs()),
      10_000,
    );
    const lines = gw
      .logs()
      .split("\n")
      .filter((l) => l.includes("PutObject"));
    const access = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "s3 request" && l.status === 499);
    expect(access?.bytesIn).toBeGreaterThan(1024 * 1024);
    expect(gw.logs()).not.toMatch(/"level":50[^\n]*client connection closed/);
    expect(gw.logs()).not.toContain("internal error");
    const gone = await direct(rig.minio).request({
      method: "HEAD",
      bucket,
      key,
      okStatuses: [404],
    });
    expect(gone.status).toBe(404);
  });
});

describe("certificate rotation", () => {
  let rot: TestGateway;
  let rotDir: string;

  beforeAll(async () => {
    // A gateway of its own, whose certificate files live in a directory the test rewrites.
    rotDir = await mkdtemp(join(tmpdir(), "s3gw-rotate-"));
    for (const f of ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]) {
      await copyFile(join(certs.dir, f), join(rotDir, f));
    }
    rot = await startTestGateway({
      certs: { dir: rotDir, ca: certs.ca },
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER],
      listener: { tlsPollIntervalMs: 100, tlsReloadOnSignal: true },
    });
  });

  afterAll(async () => {
    await rot?.close();
  });

  /** The SANs of the certificate a new connection to `rot` gets, read with `openssl s_client`. */
  async function servedSans(): Promise<string> {
    const { stdout } = await exec("bash", [
      "-c",
      `openssl s_client -connect 127.0.0.1:${rot.port} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName`,
    ]);
    return stdout;
  }

  /** Makes a new server pair signed by the same CA with `domain` among its SANs, in `out`. */
  async function newPair(domain: string): Promise<string> {
    const out = await mkdtemp(join(tmpdir(), "s3gw-newpair-"));
    await copyFile(join(rotDir, "ca.pem"), join(out, "ca.pem"));
    await copyFile(join(rotDir, "ca-key.pem"), join(out, "ca-key.pem"));
    await exec(join(repoRoot, "certs", "make-local-certs.sh"), [
      "--out",
      out,
      "--days",
      "2",
      "s3.test",
      domain,
    ]);
    return out;
  }

  it("keeps a keep-alive connection across a reload; new connections see the new SANs; a bad pair is refused", async () => {
    const agent = new Agent({
      connect: { ca: certs.ca },
      keepAliveTimeout: 60_000,
      connections: 1,
    });
    const path = "/";
    const signedGet = () => {
      const headers = { host: new URL(rot.url).host };
      return {
        ...headers,
        ...signRequest({ method: "GET", path, headers, payloadHash: EMPTY_SHA256 }, USER, {
          region: rig.minio.region,
        }),
      };
    };
    let sockets = 0;
    const get = async (): Promise<number> => {
      const res = await request(`${rot.url}/`, { headers: signedGet(), dispatcher: agent });
      await res.body.text();
      return res.statusCode;
    };
    agent.on("connect", () => sockets++);
    expect(await get()).toBe(200);
    expect(await servedSans()).not.toContain("bucket-host.example");

    // Rotation by file change: the new pair is renamed into place (key first, then cert).
    const fresh = await newPair("bucket-host.example");
    await rename(join(fresh, "server-key.pem"), join(rotDir, "server-key.pem"));
    await rename(join(fresh, "server.pem"), join(rotDir, "server.pem"));
    await waitFor(() => rot.logs().includes("TLS certificate reloaded"), 10_000);
    await waitFor(async () => (await servedSans()).includes("bucket-host.example"), 10_000);
    expect(await get()).toBe(200);
    expect(sockets).toBe(1);

    // A corrupt pair: a key that does not match the certificate. Refused, logged, old one kept.
    const other = await newPair("never-served.example");
    const logsBefore = rot.logs().length;
    await copyFile(join(other, "server.pem"), join(rotDir, "server.pem"));
    await waitFor(
      () => rot.logs().slice(logsBefore).includes("TLS certificate not reloaded"),
      10_000,
    );
    expect(await servedSans()).toContain("bucket-host.example");
    expect(await get()).toBe(200);
    expect(sockets).toBe(1);

    // SIGHUP with a good pair in place again.
    const third = await newPair("after-sighup.example");
    await copyFile(join(third, "server-key.pem"), join(rotDir, "server-key.pem"));
    await copyFile(join(third, "server.pem"), join(rotDir, "server.pem"));
    process.kill(process.pid, "SIGHUP");
    await waitFor(async () => (await servedSans()).includes("after-sighup.example"), 10_000);
    expect(await get()).toBe(200);
    expect(sockets).toBe(1);
    await agent.close();
  });
});

/** Opens a TLS connection to the gateway. */
function openTls(): Promise<TLSSocket> {
  return new Promise((done, fail) => {
    const s = tlsConnect(
      { host: "127.0.0.1", port: gw.port, ca: certs.ca, servername: "localhost" },
      () => done(s),
    );
    s.once("error", fail);
  });
}

/** Writes `text` and resolves with everything read until the server closes. */
function exchange(socket: TLSSocket, text: string): Promise<string> {
  return new Promise((done) => {
    let answer = "";
    socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    socket.on("error", () => undefined);
    socket.once("close", () => done(answer));
    socket.write(text);
  });
}

/** Polls a condition until it holds (every 50 ms), failing after `timeoutMs`. */
async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
