// A gateway killed (SIGKILL) between writing a client DELETE's tombstone and sending its
// deletes (issue 13): after a restart on the same state, the tombstone stands, so the key stays
// deleted for readers and for the copier, and a repeated DELETE completes. `s3gw serve` runs as
// a child process; an HTTP fault proxy in front of each backend holds the DELETEs (never
// forwarding them), which stops the gateway at exactly that point without a timer.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminClient } from "../../gateway/admin/client.js";
import {
  directClient,
  exists,
  gatewayClient,
  makeTestCerts,
  testCredential,
  TEST_DOMAIN,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { HttpFaultProxy } from "../helpers/http-fault-proxy.js";
import { repoRoot } from "../rig/servers.js";

const rig = inject("rig");
const CLI = join(repoRoot, "cli", "s3gw.ts");
const USER = testCredential("tc-user");
const MIGRATOR = testCredential("tc-migrator", { role: "migrator" });
const ADMIN = testCredential("tc-admin", { role: "admin" });

/** Waits until `check` holds (polling a condition, not sleeping to win a race). */
async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A running `s3gw serve` child. */
interface Child {
  readonly child: ChildProcess;
  readonly s3Url: string;
  readonly adminUrl: string;
}

async function serve(configPath: string): Promise<Child> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--config", configPath], {
    cwd: repoRoot,
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const urls: { s3?: string; admin?: string } = {};
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`gateway did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      for (const line of out.split("\n")) {
        if (line.includes("admin API listening"))
          urls.admin = (JSON.parse(line) as { url: string }).url;
        if (line.includes("S3 endpoint listening"))
          urls.s3 = (JSON.parse(line) as { url: string }).url;
      }
      if (urls.s3 !== undefined && urls.admin !== undefined) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`gateway exited ${code}:\n${out}`));
    });
  });
  return { child, s3Url: urls.s3 as string, adminUrl: urls.admin as string };
}

async function kill(c: Child, signal: NodeJS.Signals): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise<void>((done) => c.child.once("exit", () => done()));
  c.child.kill(signal);
  await exited;
}

describe("a gateway killed between a delete's tombstone and its deletes (s3gw serve, SIGKILL)", () => {
  let certs: TestCerts;
  let configPath: string;
  let gw: Child | undefined;
  let sourceProxy: HttpFaultProxy;
  let targetProxy: HttpFaultProxy;
  const direct = { target: directClient(rig.minio), source: directClient(rig.versitygw) };
  const run = randomBytes(4).toString("hex");
  const bucket = `gtc-${run}`;
  const sourceBucket = `${bucket}-src`;

  const clientOf = (c: Child, cred: typeof USER): S3Client =>
    gatewayClient(
      { url: c.s3Url, port: Number(new URL(c.s3Url).port) } as TestGateway,
      certs,
      cred,
    );
  const adminOf = (c: Child): AdminClient =>
    new AdminClient({
      endpoint: c.adminUrl,
      credentials: { accessKeyId: ADMIN.accessKeyId, secretAccessKey: ADMIN.secretAccessKey },
      region: rig.minio.region,
    });

  beforeAll(async () => {
    certs = await makeTestCerts();
    sourceProxy = await HttpFaultProxy.start(rig.versitygw.endpoint);
    targetProxy = await HttpFaultProxy.start(rig.minio.endpoint);
    const dir = await mkdtemp(join(tmpdir(), "s3gw-tomb-crash-"));
    const t = rig.minio;
    const creds = [USER, MIGRATOR, ADMIN].map((c) =>
      JSON.stringify({
        accessKey: c.accessKeyId,
        secretKey: c.secretAccessKey,
        role: c.role ?? "user",
      }),
    );
    configPath = join(dir, "gateway.yaml");
    await writeFile(
      configPath,
      [
        "listen: 127.0.0.1:0",
        `tls: { cert: "${join(certs.dir, "server.pem")}", key: "${join(certs.dir, "server-key.pem")}" }`,
        `domains: [${TEST_DOMAIN}]`,
        "admin: { listen: 127.0.0.1:0 }",
        `region: ${t.region}`,
        `target: { endpoint: "${targetProxy.endpoint}", accessKey: ${t.accessKeyId}, secretKey: "${t.secretAccessKey}", region: ${t.region} }`,
        `credentials: [${creds.join(", ")}]`,
        `state: { path: "${join(dir, "state.db")}" }`,
      ].join("\n"),
    );
    await direct.target.send(new CreateBucketCommand({ Bucket: bucket }));
    await direct.source.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    await direct.source.send(
      new PutObjectCommand({ Bucket: sourceBucket, Key: "doomed", Body: "old bytes" }),
    );
    gw = await serve(configPath);
    const admin = adminOf(gw);
    const s = rig.versitygw;
    await admin.attach(bucket, {
      sourceUrl: sourceProxy.endpoint,
      sourceBucket,
      sourceAccessKey: s.accessKeyId,
      sourceSecretKey: s.secretAccessKey,
      sourceRegion: s.region,
      sourceCa: "system",
    });
    await admin.update({ bucket, mode: "forward" });
    await admin.update({ bucket, mode: "migrate", confirmIrreversible: true });
    await admin.close();
  });

  afterAll(async () => {
    if (gw) await kill(gw, "SIGTERM");
    await sourceProxy?.close();
    await targetProxy?.close();
  });

  it("the tombstone survives: no resurrection, the migration write is refused, a repeated DELETE completes", async () => {
    const first = gw as Child;
    const isDelete = (r: { method: string; url: string }): boolean =>
      r.method === "DELETE" && r.url.split("?")[0]?.endsWith("/doomed") === true;
    sourceProxy.hold = isDelete;
    targetProxy.hold = isDelete;
    const deleting = clientOf(first, USER)
      .send(new DeleteObjectCommand({ Bucket: bucket, Key: "doomed" }))
      .then(
        () => "answered",
        () => "failed",
      );
    // The tombstone is durable before the deletes go out: once either backend sees a DELETE,
    // the gateway is past the tombstone and before any delete took effect.
    await until(
      () => sourceProxy.heldRequests().length + targetProxy.heldRequests().length > 0,
      "a held DELETE",
    );
    await kill(first, "SIGKILL");
    expect(await deleting).toBe("failed");
    // The held deletes never reach a backend: the source still has the old object.
    sourceProxy.hold = undefined;
    targetProxy.hold = undefined;
    sourceProxy.drop();
    targetProxy.drop();
    expect(await exists(direct.source, sourceBucket, "doomed")).toBe(true);

    gw = await serve(configPath);
    const admin = adminOf(gw);
    try {
      expect((await admin.show(bucket)).tombstones).toBe(1);
    } finally {
      await admin.close();
    }
    const client = clientOf(gw, USER);
    const migrator = clientOf(gw, MIGRATOR);
    // The copier's copy of the old object is refused.
    const put = await migrator
      .send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "doomed",
          Body: "old bytes",
          IfNoneMatch: "*",
        }),
      )
      .then(
        (r) => r.$metadata.httpStatusCode,
        (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode,
      );
    expect(put).toBe(412);
    // A read does not serve the source's copy.
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "doomed" })),
    ).rejects.toMatchObject({
      name: "NoSuchKey",
    });
    // The client's retry finishes the delete on both sides.
    const again = await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "doomed" }));
    expect(again.$metadata.httpStatusCode).toBe(204);
    expect(await exists(direct.source, sourceBucket, "doomed")).toBe(false);
    expect(await exists(direct.target, bucket, "doomed")).toBe(false);
  });
});
