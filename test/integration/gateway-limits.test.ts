// The gateway's limits (DESIGN 3.6, issue 3 Proof): oversized or invalid XML bodies refused
// with S3's error before anything reaches a backend, and with flat memory while a client pushes
// a 200 MiB junk body at a separate gateway process; idle and minimum-rate timeouts that let a
// slow but steady upload finish and cut a stalled or trickling one without leaving an object;
// and a graceful SIGTERM that drains an in-flight GET and refuses new connections.

import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile, mkdtemp } from "node:fs/promises";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  CompleteMultipartUploadCommand,
  DeleteObjectsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client as OurS3Client } from "../../s3/client.js";
import { signRequest } from "../../s3/sigv4-sign.js";
import { encodeS3Path, uriEncode } from "../../s3/uri-encode.js";
import {
  CountingProxy,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestCredential,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { repoRoot } from "../rig/servers.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("limits-user");
const MIB = 1024 * 1024;

/** Our own S3 client straight to a rig server, for direct checks. */
function directOf(server: RigServer): OurS3Client {
  return new OurS3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

/** Whether `key` exists on a backend. */
async function existsDirect(client: OurS3Client, bucket: string, key: string): Promise<boolean> {
  const res = await client.request({ method: "HEAD", bucket, key, okStatuses: [404] });
  res.body.resume();
  return res.status !== 404;
}

/** Options of https.request for a SigV4 (UNSIGNED-PAYLOAD) request to the gateway. */
function signedOptions(input: {
  readonly port: number;
  readonly ca: string;
  readonly method: string;
  readonly bucket: string;
  readonly key?: string;
  readonly query?: readonly [string, string][];
  readonly headers?: Record<string, string>;
  readonly cred: TestCredential;
  readonly region: string;
}): RequestOptions {
  const path = encodeS3Path(input.bucket, input.key);
  const query = input.query ?? [];
  const host = `127.0.0.1:${input.port}`;
  const headers = { host, ...(input.headers ?? {}) };
  const signed = signRequest(
    { method: input.method, path, query, headers, payloadHash: "UNSIGNED-PAYLOAD" },
    { accessKeyId: input.cred.accessKeyId, secretAccessKey: input.cred.secretAccessKey },
    { region: input.region },
  );
  const search = query.map(([k, v]) =>
    v === "" ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`,
  );
  return {
    host: "127.0.0.1",
    port: input.port,
    method: input.method,
    path: search.length === 0 ? path : `${path}?${search.join("&")}`,
    headers: { ...headers, ...signed },
    ca: input.ca,
    agent: false,
  };
}

/** What came back for a request whose body a test wrote itself. */
interface Outcome {
  status: number | undefined;
  body: string;
  /** Bytes of body the client managed to write before the answer or the connection ended. */
  sent: number;
  /** Milliseconds from the first body byte to the answer or the connection's end. */
  elapsedMs: number;
  error: string | undefined;
}

/**
 * Sends a request and writes its body from `next` (a chunk, or undefined to stop writing),
 * pacing with `pauseMs` between chunks, until the body is done, an answer arrives or the
 * connection ends. Never ends the request itself unless the body is complete.
 */
function sendPaced(
  options: RequestOptions,
  next: (sent: number) => Buffer | undefined,
  pauseMs: number,
): Promise<Outcome> {
  return new Promise((done) => {
    const started = Date.now();
    const out: Outcome = { status: undefined, body: "", sent: 0, elapsedMs: 0, error: undefined };
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      out.elapsedMs = Date.now() - started;
      req.destroy();
      done(out);
    };
    const req = httpsRequest(options, (res) => {
      out.status = res.statusCode;
      res.setEncoding("utf8");
      res.on("data", (c: string) => (out.body += c));
      res.on("end", settle);
      res.on("error", settle);
    });
    req.on("error", (err) => {
      out.error = err.message;
      // An answer may still be arriving; give its end the chance to settle first.
      if (out.status === undefined) settle();
    });
    req.on("close", () => {
      if (out.status === undefined) settle();
    });
    const pump = (): void => {
      while (!settled && out.status === undefined) {
        const chunk = next(out.sent);
        if (chunk === undefined) return; // stall: write nothing more, never end
        if (chunk.length === 0) {
          req.end();
          return;
        }
        out.sent += chunk.length;
        const more = req.write(chunk);
        if (pauseMs > 0) {
          setTimeout(pump, pauseMs);
          return;
        }
        if (!more) {
          req.once("drain", pump);
          return;
        }
      }
    };
    req.flushHeaders();
    pump();
  });
}

/** The S3 error code in an XML error body. */
function codeOf(body: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
}

function sdkStatus(err: unknown): { name: string; status: number | undefined } {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return { name: e.name ?? "", status: e.$metadata?.httpStatusCode };
}

describe("XML body limits (target MinIO behind a counting proxy)", () => {
  const bucket = `gwl-xml-${randomBytes(4).toString("hex")}`;
  let certs: TestCerts;
  let proxy: CountingProxy;
  let gw: TestGateway;
  let client: S3Client;
  let direct: OurS3Client;

  beforeAll(async () => {
    certs = await makeTestCerts();
    proxy = await CountingProxy.start(rig.minio.endpoint);
    gw = await startTestGateway({
      certs,
      target: { endpoint: proxy.endpoint, server: rig.minio },
      credentials: [USER],
      listener: { maxXmlBodyBytes: { deleteObjects: 64 * 1024, completeMultipart: 64 * 1024 } },
    });
    client = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    direct = directOf(rig.minio);
    await direct.request({ method: "PUT", bucket });
  });

  afterAll(async () => {
    await gw?.close();
    await proxy?.close();
    await direct?.close();
  });

  /** Runs `fn` and returns how many bytes the gateway sent the backend meanwhile. */
  async function backendBytesDuring(fn: () => Promise<void>): Promise<number> {
    const before = proxy.bytesUp;
    await fn();
    return proxy.bytesUp - before;
  }

  it("refuses DeleteObjects naming 1,001 keys with MalformedXML and sends the backend nothing", async () => {
    const objects = Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` }));
    let caught: unknown;
    const sent = await backendBytesDuring(async () => {
      caught = await client
        .send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }))
        .then(
          () => undefined,
          (err: unknown) => err,
        );
    });
    expect(sdkStatus(caught)).toEqual({ name: "MalformedXML", status: 400 });
    expect(sent).toBe(0);
  });

  it("refuses DeleteObjects and CompleteMultipartUpload bodies above the cap with MaxMessageLengthExceeded", async () => {
    const longKeys = Array.from({ length: 1000 }, (_, i) => ({ Key: `${"x".repeat(100)}-${i}` }));
    let deleteErr: unknown;
    let completeErr: unknown;
    const sent = await backendBytesDuring(async () => {
      deleteErr = await client
        .send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: longKeys } }))
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      const parts = Array.from({ length: 2000 }, (_, i) => ({
        PartNumber: i + 1,
        ETag: `"${createHash("md5").update(String(i)).digest("hex")}"`,
      }));
      completeErr = await client
        .send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: "big",
            UploadId: "no-such-upload",
            MultipartUpload: { Parts: parts },
          }),
        )
        .then(
          () => undefined,
          (err: unknown) => err,
        );
    });
    expect(sdkStatus(deleteErr)).toEqual({ name: "MaxMessageLengthExceeded", status: 400 });
    expect(sdkStatus(completeErr)).toEqual({ name: "MaxMessageLengthExceeded", status: 400 });
    expect(sent).toBe(0);
  });

  it("refuses an ill-formed DeleteObjects body with MalformedXML before the backend", async () => {
    const junk = randomBytes(8 * 1024);
    let outcome: Outcome | undefined;
    const sent = await backendBytesDuring(async () => {
      let given = false;
      outcome = await sendPaced(
        signedOptions({
          port: gw.port,
          ca: certs.ca,
          method: "POST",
          bucket,
          query: [["delete", ""]],
          headers: { "content-length": String(junk.length) },
          cred: USER,
          region: rig.minio.region,
        }),
        () => (given ? Buffer.alloc(0) : ((given = true), junk)),
        0,
      );
    });
    expect(outcome?.status).toBe(400);
    expect(codeOf(outcome?.body ?? "")).toBe("MalformedXML");
    expect(sent).toBe(0);
  });

  it("still forwards a valid DeleteObjects (the body is validated, then sent whole)", async () => {
    for (const key of ["a", "b", "c"]) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `del/${key}`, Body: key }));
    }
    const res = await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: [{ Key: "del/a" }, { Key: "del/b" }, { Key: "del/c" }] },
      }),
    );
    expect(res.Deleted?.map((d) => d.Key).sort()).toEqual(["del/a", "del/b", "del/c"]);
    for (const key of ["a", "b", "c"])
      expect(await existsDirect(direct, bucket, `del/${key}`)).toBe(false);
  });
});

describe("idle and minimum-rate timeouts (target MinIO)", () => {
  const bucket = `gwl-rate-${randomBytes(4).toString("hex")}`;
  let certs: TestCerts;
  let gw: TestGateway;
  let direct: OurS3Client;
  const RATE = { bytesPerSecond: 32 * 1024, windowMs: 500 };
  const IDLE_MS = 1000;

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER],
      listener: { idleTimeoutMs: IDLE_MS, minUploadRate: RATE },
    });
    direct = directOf(rig.minio);
    await direct.request({ method: "PUT", bucket });
  });

  afterAll(async () => {
    await gw?.close();
    await direct?.close();
  });

  function putOptions(key: string, length: number): RequestOptions {
    return signedOptions({
      port: gw.port,
      ca: certs.ca,
      method: "PUT",
      bucket,
      key,
      headers: { "content-length": String(length) },
      cred: USER,
      region: rig.minio.region,
    });
  }

  it("lets a slow but steady upload run far past the idle timeout and many rate windows", async () => {
    const data = randomBytes(MIB);
    const chunk = 16 * 1024;
    // 16 KiB every 60 ms ≈ 270 KiB/s: well above the minimum rate, about 4 s in all.
    const outcome = await sendPaced(
      putOptions("steady", data.length),
      (sent) => (sent >= data.length ? Buffer.alloc(0) : data.subarray(sent, sent + chunk)),
      60,
    );
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    expect(outcome.elapsedMs).toBeGreaterThan(3 * IDLE_MS);
    const res = await direct.request({ method: "GET", bucket, key: "steady" });
    const hash = createHash("md5");
    for await (const c of res.body) hash.update(c as Buffer);
    expect(hash.digest("hex")).toBe(createHash("md5").update(data).digest("hex"));
  });

  it("cuts a stalled upload and leaves no object", async () => {
    const first = randomBytes(64 * 1024);
    let given = false;
    const outcome = await sendPaced(
      putOptions("stalled", 4 * MIB),
      () => (given ? undefined : ((given = true), first)),
      0,
    );
    // Cut by the rate window (RequestTimeout) or the idle timeout, whichever comes first.
    expect(outcome.elapsedMs).toBeLessThan(IDLE_MS + 3 * RATE.windowMs + 2000);
    if (outcome.status !== undefined) {
      expect(outcome.status).toBe(400);
      expect(codeOf(outcome.body)).toBe("RequestTimeout");
    }
    expect(await existsDirect(direct, bucket, "stalled")).toBe(false);
  });

  it("cuts a trickling upload below the minimum rate with RequestTimeout and leaves no object", async () => {
    // 1 KiB every 50 ms ≈ 20 KiB/s: never idle, but under 32 KiB/s.
    const outcome = await sendPaced(
      putOptions("trickle", 4 * MIB),
      () => Buffer.alloc(1024, 0x61),
      50,
    );
    expect(outcome.status).toBe(400);
    expect(codeOf(outcome.body)).toBe("RequestTimeout");
    expect(outcome.sent).toBeLessThan(4 * MIB);
    expect(await existsDirect(direct, bucket, "trickle")).toBe(false);
  });
});

/** A running `s3gw serve` child process. */
interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
}

async function startGatewayProcess(configPath: string): Promise<GatewayProcess> {
  const cli = resolve(repoRoot, "cli", "s3gw.ts");
  const child = spawn(process.execPath, ["--import", "tsx", cli, "serve", "--config", configPath], {
    cwd: repoRoot,
    env: { ...process.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`gateway did not start:\n${out}`)), 60_000);
    const check = (): void => {
      for (const line of out.split("\n")) {
        if (!line.includes("S3 endpoint listening")) continue;
        clearTimeout(timer);
        done(Number(new URL((JSON.parse(line) as { url: string }).url).port));
        return;
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`gateway exited ${code}:\n${out}`));
    });
  });
  return { child, port, output: () => out };
}

/** Resident set size of a process in bytes (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

describe("an s3gw serve process: flat memory under junk XML, graceful SIGTERM", () => {
  const bucket = `gwl-proc-${randomBytes(4).toString("hex")}`;
  const ADMIN = testCredential("limits-admin", { role: "admin" });
  let certs: TestCerts;
  let gw: GatewayProcess;
  let direct: OurS3Client;
  const big = randomBytes(48 * MIB);

  beforeAll(async () => {
    certs = await makeTestCerts();
    const dir = await mkdtemp(join(tmpdir(), "s3gw-limits-"));
    const t = rig.minio;
    const config = join(dir, "gateway.yaml");
    await writeFile(
      config,
      [
        "listen: 127.0.0.1:0",
        `tls: { cert: "${join(certs.dir, "server.pem")}", key: "${join(certs.dir, "server-key.pem")}" }`,
        "admin: { listen: 127.0.0.1:0 }",
        `region: ${t.region}`,
        `target: { endpoint: "${t.endpoint}", accessKey: ${t.accessKeyId}, secretKey: "${t.secretAccessKey}", region: ${t.region} }`,
        "credentials:",
        `  - { accessKey: ${USER.accessKeyId}, secretKey: "${USER.secretAccessKey}" }`,
        `  - { accessKey: ${ADMIN.accessKeyId}, secretKey: "${ADMIN.secretAccessKey}", role: admin }`,
        `state: { path: "${join(dir, "state.json")}" }`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    direct = directOf(t);
    await direct.request({ method: "PUT", bucket });
    await direct.request({ method: "PUT", bucket, key: "big", body: big });
    gw = await startGatewayProcess(config);
  });

  afterAll(async () => {
    if (gw !== undefined && gw.child.exitCode === null && gw.child.signalCode === null) {
      const exited = new Promise((done) => gw.child.once("exit", done));
      gw.child.kill("SIGKILL");
      await exited;
    }
    await direct?.close();
  });

  /** Pushes up to 200 MiB of junk as the body of `query` on `key`; samples the gateway's RSS. */
  async function junkWithRss(
    query: [string, string][],
    key: string | undefined,
  ): Promise<{ outcome: Outcome; peak: number }> {
    const pid = gw.child.pid as number;
    let peak = await rssOf(pid);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssOf(pid));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const total = 200 * MIB;
    const junk = Buffer.alloc(MIB, 0x3c); // "<<<<…"
    const outcome = await sendPaced(
      signedOptions({
        port: gw.port,
        ca: certs.ca,
        method: "POST",
        bucket,
        ...(key === undefined ? {} : { key }),
        query,
        headers: { "content-length": String(total) },
        cred: USER,
        region: rig.minio.region,
      }),
      (sent) => (sent >= total ? Buffer.alloc(0) : junk),
      0,
    );
    sampling = false;
    await sampler;
    return { outcome, peak };
  }

  it("refuses a 200 MiB junk DeleteObjects and CompleteMultipartUpload without reading them (RSS flat)", async () => {
    // Warm up the code paths (TLS, auth, error rendering) so the baseline includes them.
    await junkWithRss([["delete", ""]], undefined);
    const baseline = await rssOf(gw.child.pid as number);
    for (const [query, key] of [
      [[["delete", ""]], undefined],
      [[["uploadId", "junk"]], "object"],
    ] as const) {
      const { outcome, peak } = await junkWithRss([...query] as [string, string][], key);
      // The answer comes from the Content-Length alone; the gateway stops reading (at most
      // 1 MiB is drained so the client can read the answer) and closes the connection.
      if (outcome.status !== undefined) {
        expect(outcome.status).toBe(400);
        expect(codeOf(outcome.body)).toBe("MaxMessageLengthExceeded");
      } else {
        expect(outcome.error).toBeDefined();
      }
      expect(outcome.sent).toBeLessThan(100 * MIB);
      expect(peak - baseline).toBeLessThan(8 * MIB);
    }
  });

  it("drains an in-flight GET on SIGTERM (the client gets the whole body) and refuses new connections", async () => {
    const got = createHash("md5");
    let received = 0;
    const exited = new Promise<number | null>((done) =>
      gw.child.once("exit", (code) => done(code)),
    );
    const options = signedOptions({
      port: gw.port,
      ca: certs.ca,
      method: "GET",
      bucket,
      key: "big",
      cred: USER,
      region: rig.minio.region,
    });
    const body = new Promise<{ status: number | undefined; complete: boolean }>((done, fail) => {
      const req = httpsRequest(options, (res) => {
        res.once("data", (first: Buffer) => {
          got.update(first);
          received += first.length;
          // Hold the body back (the GET stays in flight) until the gateway is shutting down.
          res.pause();
          void (async () => {
            gw.child.kill("SIGTERM");
            await waitFor(() => gw.output().includes('"msg":"shutting down"'), 10_000);
            await waitFor(async () => (await connectRefused(gw.port)) === true, 10_000);
            res.on("data", (c: Buffer) => {
              got.update(c);
              received += c.length;
            });
            res.on("end", () => done({ status: res.statusCode, complete: res.complete }));
            res.on("error", fail);
            res.resume();
          })().catch(fail);
        });
      });
      req.on("error", fail);
      req.end();
    });
    const { status, complete } = await body;
    expect(status).toBe(200);
    expect(complete).toBe(true);
    expect(received).toBe(big.length);
    expect(got.digest("hex")).toBe(createHash("md5").update(big).digest("hex"));
    expect(await exited).toBe(0);
  });
});

/** Waits until `condition` holds, polling; fails after `timeoutMs`. */
async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a TCP connection to the port is refused (the listener no longer accepts). */
function connectRefused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED"));
  });
}
