// Test harness for the S3 data plane: a TLS certificate from a CA made for the test run, the
// gateway started in process over TLS in front of real rig servers, a loopback TCP proxy that
// counts the bytes the gateway sends a backend (and can cut connections: a fault and counting
// tool, not an S3 mock), and @aws-sdk/client-s3 clients that trust the test CA.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Agent as HttpsAgent } from "node:https";
import { mkdtemp, readFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Writable } from "node:stream";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { S3AttachValidator } from "../../gateway/admin/attach-validator.js";
import { parseConfig } from "../../gateway/config.js";
import { createLogger } from "../../gateway/logger.js";
import { s3ListenerFactory, type S3ListenerOptions } from "../../gateway/front/listener.js";
import { startGateway, type RunningGateway } from "../../gateway/server.js";
import { repoRoot } from "../rig/servers.js";
import type { RigServer } from "../rig/types.js";

/** The virtual-hosted-style base domain of test gateways (resolved to 127.0.0.1 by our agents). */
export const TEST_DOMAIN = "s3.test";

/** TLS material made for one test file. */
export interface TestCerts {
  readonly dir: string;
  readonly ca: string;
}

/** Makes a CA and a server certificate for localhost, 127.0.0.1 and *.s3.test. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), "s3gw-certs-"));
  await promisify(execFile)(join(repoRoot, "certs", "make-local-certs.sh"), [
    "--out",
    dir,
    "--days",
    "2",
    TEST_DOMAIN,
  ]);
  return { dir, ca: await readFile(join(dir, "ca.pem"), "utf8") };
}

/** A loopback TCP proxy in front of one backend that counts bytes and can cut connections. */
export class CountingProxy {
  /** Bytes received from the gateway (requests), in total. */
  bytesUp = 0;
  /** Bytes received from the backend (answers), in total. */
  bytesDown = 0;
  /** Connections to the backend that have closed (a cut upload's connection among them). */
  backendConnectionsClosed = 0;
  /** Called with the running byte counts on every chunk from the gateway. */
  onUp: ((bytesUp: number) => void) | undefined;
  /** Called with the running byte counts on every chunk from the backend. */
  onDown: ((bytesDown: number) => void) | undefined;
  private refusing = false;
  private stalling = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:<port>` */
    readonly endpoint: string,
  ) {}

  /** Starts a proxy to `backend` (`http://host:port`). */
  static async start(backend: string): Promise<CountingProxy> {
    const url = new URL(backend);
    const holder: { proxy?: CountingProxy } = {};
    const server = createServer((client) => {
      const p = holder.proxy as CountingProxy;
      if (p.refusing) {
        client.destroy();
        return;
      }
      if (p.stalling) {
        // Accept and never answer: a backend that hangs.
        p.sockets.add(client);
        client.resume();
        return;
      }
      const upstream = createConnection({ host: url.hostname, port: Number(url.port) });
      p.sockets.add(client);
      p.sockets.add(upstream);
      client.on("data", (chunk: Buffer) => {
        p.bytesUp += chunk.length;
        p.onUp?.(p.bytesUp);
      });
      upstream.on("data", (chunk: Buffer) => {
        p.bytesDown += chunk.length;
        p.onDown?.(p.bytesDown);
      });
      client.pipe(upstream);
      upstream.pipe(client);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        p.sockets.delete(client);
        p.sockets.delete(upstream);
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
      upstream.once("close", () => p.backendConnectionsClosed++);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    holder.proxy = new CountingProxy(server, `http://127.0.0.1:${port}`);
    return holder.proxy;
  }

  /** Cuts every open connection and refuses new ones until {@link restore}: the backend is "dead". */
  cut(): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Cuts every open connection and accepts new ones without ever answering: a hung backend. */
  stall(): void {
    this.cut();
    this.refusing = false;
    this.stalling = true;
  }

  /** Accepts and forwards connections again. */
  restore(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.refusing = false;
    this.stalling = false;
  }

  /** Stops the proxy. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A user credential of a test gateway. */
export interface TestCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly role?: "user" | "migrator" | "admin";
  readonly buckets?: readonly string[];
  readonly readOnly?: boolean;
}

/** Makes a credential with a random secret. */
export function testCredential(
  name: string,
  extra: Omit<TestCredential, "accessKeyId" | "secretAccessKey"> = {},
): TestCredential {
  return { accessKeyId: name, secretAccessKey: `sk-${randomBytes(12).toString("hex")}`, ...extra };
}

/** A gateway started for a test file. */
export interface TestGateway {
  readonly gateway: RunningGateway;
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every log line written so far. */
  logs(): string;
  close(): Promise<void>;
}

/** Starts a gateway over TLS in front of `target` (an endpoint, e.g. a counting proxy). */
export async function startTestGateway(options: {
  readonly certs: TestCerts;
  readonly target: { readonly endpoint: string; readonly server: RigServer };
  readonly credentials: readonly TestCredential[];
  readonly listener?: S3ListenerOptions;
  /** The folder of the state store; gateways given the same one share their state. */
  readonly stateDir?: string;
}): Promise<TestGateway> {
  const dir = options.stateDir ?? (await mkdtemp(join(tmpdir(), "s3gw-proxy-it-")));
  const creds = options.credentials.map((c) =>
    JSON.stringify({
      accessKey: c.accessKeyId,
      secretKey: c.secretAccessKey,
      role: c.role ?? "user",
      ...(c.buckets === undefined ? {} : { buckets: c.buckets }),
      ...(c.readOnly === undefined ? {} : { readOnly: c.readOnly }),
    }),
  );
  const t = options.target.server;
  const config = parseConfig(
    [
      "listen: 127.0.0.1:0",
      `tls: { cert: "${join(options.certs.dir, "server.pem")}", key: "${join(options.certs.dir, "server-key.pem")}" }`,
      `domains: [${TEST_DOMAIN}]`,
      "admin: { listen: 127.0.0.1:0 }",
      "metrics: { listen: 127.0.0.1:0 }",
      `region: ${t.region}`,
      `target: { endpoint: "${options.target.endpoint}", accessKey: ${t.accessKeyId}, secretKey: "${t.secretAccessKey}", region: ${t.region} }`,
      `credentials: [${creds.join(", ")}]`,
      // Each test gateway its own id: the default (host:pid) is one per process.
      `state: { path: state.json, gatewayId: gw-${randomBytes(4).toString("hex")} }`,
    ].join("\n"),
    { env: {}, baseDir: dir },
  );
  let logs = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs += chunk.toString();
      done();
    },
  });
  const gateway = await startGateway({
    config,
    logger: createLogger({ destination: sink }),
    validator: new S3AttachValidator({ target: config.target }),
    s3Listener: s3ListenerFactory(options.listener),
  });
  const url = (gateway.s3 as { url: string }).url;
  return {
    gateway,
    url,
    port: Number(new URL(url).port),
    logs: () => logs,
    close: () => gateway.close(),
  };
}

/** An https agent trusting the test CA that resolves every name to 127.0.0.1 (for *.s3.test). */
export function testAgent(ca: string): HttpsAgent {
  return new HttpsAgent({
    ca,
    keepAlive: true,
    lookup: (_host, opts, cb) => {
      if ((opts as { all?: boolean }).all === true) {
        (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
          { address: "127.0.0.1", family: 4 },
        ]);
      } else cb(null, "127.0.0.1", 4);
    },
  });
}

/** An SDK client for the gateway, path-style unless `virtualHost`. */
export function gatewayClient(
  gw: TestGateway,
  certs: TestCerts,
  cred: TestCredential,
  options: {
    readonly virtualHost?: boolean;
    readonly region?: string;
    readonly maxAttempts?: number;
  } = {},
): S3Client {
  return new S3Client({
    endpoint: options.virtualHost === true ? `https://${TEST_DOMAIN}:${gw.port}` : gw.url,
    forcePathStyle: options.virtualHost !== true,
    region: options.region ?? "us-east-1",
    credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey },
    requestHandler: new NodeHttpHandler({ httpsAgent: testAgent(certs.ca) }),
    maxAttempts: options.maxAttempts ?? 1,
  });
}

/** The value of one sample of a test gateway's Prometheus metrics (0 when absent). */
export async function metric(gw: TestGateway, name: string, labels = ""): Promise<number> {
  const url = gw.gateway.metrics?.url;
  if (url === undefined) throw new Error("no metrics listener");
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(labels === "" ? `${name} ` : `${name}{${labels}} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** A direct SDK client for a rig server. */
export function directClient(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

/** The whole body of an SDK answer. */
export async function bytesOf(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Whether `key` exists in `bucket` (HEAD; 404 → false, any other error thrown). */
export async function exists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw err;
  }
}

/**
 * Attaches `bucket` of a test gateway to `sourceBucket` on `source` and moves it to `mode`
 * (through forward when the mode is migrate), then waits, as the admin API does, until every
 * gateway sharing the state has applied the change.
 */
export async function attachBucket(
  gw: TestGateway,
  input: {
    readonly bucket: string;
    readonly source: RigServer;
    readonly sourceBucket: string;
    readonly mode: "ready" | "forward" | "migrate";
  },
): Promise<void> {
  const store = gw.gateway.store;
  const s = input.source;
  await store.attach(
    {
      bucket: input.bucket,
      sourceUrl: s.endpoint,
      sourceBucket: input.sourceBucket,
      sourceAccessKey: s.accessKeyId,
      sourceSecretKey: s.secretAccessKey,
      sourceRegion: s.region,
      sourceCa: "system",
    },
    { by: "test" },
  );
  if (input.mode !== "ready") {
    await store.update({ bucket: input.bucket }, { mode: "forward" }, { by: "test" });
  }
  if (input.mode === "migrate") {
    await store.update(
      { bucket: input.bucket },
      { mode: "migrate" },
      { by: "test", confirmIrreversible: true },
    );
  }
  const pending = await store.waitForGateways(store.snapshot().version, { timeoutMs: 30_000 });
  if (pending.length > 0) throw new Error(`gateways did not apply the change: ${pending.length}`);
}
