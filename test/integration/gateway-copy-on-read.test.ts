// Copy-on-read (issue 13; docs/gateway.md, "Copy-on-read"): a fallback GET of a whole object
// also writes it to the target, once, completely, only with the source's exact bytes, and never
// for a key a client deleted. Target MinIO, source versitygw; an HTTP fault proxy in front of
// each logs the requests that reach it (PUTs to the target are counted there), holds a source
// GET where a test needs a chosen interleaving, or flips a byte of a source answer.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminClient } from "../../gateway/admin/client.js";
import {
  bytesOf,
  directClient,
  exists,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
  metric,
} from "../helpers/gateway-harness.js";
import { HttpFaultProxy } from "../helpers/http-fault-proxy.js";
import { repoRoot } from "../rig/servers.js";

const rig = inject("rig");
const USER = testCredential("cor-user");
const ADMIN = testCredential("cor-admin", { role: "admin" });
const MiB = 1024 * 1024;

/** Waits until `check` holds (polling a condition, not sleeping to win a race). */
async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function md5(b: Buffer): string {
  return createHash("md5").update(b).digest("hex");
}

/** MD5 of a streamed body, without keeping it. */
async function md5Of(body: unknown): Promise<string> {
  const h = createHash("md5");
  for await (const c of body as AsyncIterable<Uint8Array>) h.update(c);
  return h.digest("hex");
}

/** MD5 of the first `n` bytes of a streamed body; the rest is not read (the stream is destroyed). */
async function firstBytes(body: unknown, n: number): Promise<string> {
  const chunks: Buffer[] = [];
  let got = 0;
  const stream = body as AsyncIterable<Uint8Array> & { destroy(): void };
  for await (const c of stream) {
    chunks.push(Buffer.from(c));
    got += c.length;
    if (got >= n) break;
  }
  stream.destroy();
  return md5(Buffer.concat(chunks).subarray(0, n));
}

/** Runs `s3gw bucket migrate <args>` from source; never throws on a non-zero exit. */
function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "cli", "s3gw.ts"), "bucket", "migrate", ...args],
      { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

describe("copy-on-read (target MinIO, source versitygw)", () => {
  let certs: TestCerts;
  let gw: TestGateway;
  let client: S3Client;
  let admin: AdminClient;
  let direct: { target: S3Client; source: S3Client };
  let sourceProxy: HttpFaultProxy;
  let targetProxy: HttpFaultProxy;
  const run = randomBytes(4).toString("hex");
  const bucket = `gcor-${run}`;
  const sourceBucket = `${bucket}-src`;
  const offBucket = `gcor-off-${run}`;

  beforeAll(async () => {
    certs = await makeTestCerts();
    sourceProxy = await HttpFaultProxy.start(rig.versitygw.endpoint);
    targetProxy = await HttpFaultProxy.start(rig.minio.endpoint);
    gw = await startTestGateway({
      certs,
      target: { endpoint: targetProxy.endpoint, server: rig.minio },
      credentials: [USER, ADMIN],
    });
    client = gatewayClient(gw, certs, USER);
    admin = new AdminClient({
      endpoint: gw.gateway.admin.url,
      credentials: { accessKeyId: ADMIN.accessKeyId, secretAccessKey: ADMIN.secretAccessKey },
      region: rig.minio.region,
    });
    direct = { target: directClient(rig.minio), source: directClient(rig.versitygw) };
    for (const b of [bucket, offBucket]) {
      await direct.target.send(new CreateBucketCommand({ Bucket: b }));
      await direct.source.send(new CreateBucketCommand({ Bucket: `${b}-src` }));
      const s = rig.versitygw;
      await gw.gateway.store.attach(
        {
          bucket: b,
          sourceUrl: sourceProxy.endpoint,
          sourceBucket: `${b}-src`,
          sourceAccessKey: s.accessKeyId,
          sourceSecretKey: s.secretAccessKey,
          sourceRegion: s.region,
          sourceCa: "system",
        },
        { by: "test" },
      );
      await gw.gateway.store.update({ bucket: b }, { mode: "forward" }, { by: "test" });
      await gw.gateway.store.update(
        { bucket: b },
        { mode: "migrate" },
        { by: "test", confirmIrreversible: true },
      );
    }
    // Turned on through the admin API, as an operator would (`s3gw bucket migrate update`).
    await admin.update({ bucket, copyOnRead: true, copyOnReadMaxSize: 128 * MiB });
  });

  afterAll(async () => {
    await admin?.close();
    await gw?.close();
    await sourceProxy?.close();
    await targetProxy?.close();
  });

  /** PUTs of `key` that reached the target. */
  function targetPuts(b: string, key: string): number {
    return targetProxy.seen.filter(
      (r) => r.method === "PUT" && r.url.split("?")[0] === `/${b}/${key}`,
    ).length;
  }

  async function putSource(b: string, key: string, body: Buffer): Promise<void> {
    await direct.source.send(new PutObjectCommand({ Bucket: `${b}-src`, Key: key, Body: body }));
  }

  it("is off by default, and show/list say so", async () => {
    const shown = await admin.showWithStatus(offBucket);
    expect(shown.bucket.copyOnRead).toBe(false);
    expect(shown.bucket.tombstones).toBe(0);
    const on = (await admin.list()).find((s) => s.bucket === bucket);
    expect(on).toMatchObject({ copyOnRead: true, copyOnReadMaxSize: 128 * MiB });
    const body = randomBytes(4096);
    await putSource(offBucket, "plain", body);
    const got = await client.send(new GetObjectCommand({ Bucket: offBucket, Key: "plain" }));
    expect(md5(await bytesOf(got.Body))).toBe(md5(body));
    expect(targetPuts(offBucket, "plain")).toBe(0);
    expect(await exists(direct.target, offBucket, "plain")).toBe(false);
    expect(await metric(gw, "s3gw_migrate_copy_on_read_total", 'outcome="written"')).toBe(0);
  });

  it("s3gw bucket migrate update/show/list: --copy-on-read, its size, --no-copy-on-read", async () => {
    const env = {
      S3GW_ADMIN_URL: gw.gateway.admin.url,
      S3GW_ACCESS_KEY: ADMIN.accessKeyId,
      S3GW_SECRET_KEY: ADMIN.secretAccessKey,
      S3GW_REGION: rig.minio.region,
    };
    const on = await cli(
      [
        "update",
        "--bucket",
        offBucket,
        "--copy-on-read",
        "--copy-on-read-max-size",
        "1MiB",
        "--json",
      ],
      env,
    );
    expect(on.code).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({
      buckets: [{ bucket: offBucket, copyOnRead: true, copyOnReadMaxSize: MiB }],
    });
    const shown = await cli(["show", offBucket], env);
    expect(shown.stdout).toContain("copy-on-read:   on (≤ 1 MiB)");
    expect(shown.stdout).toContain("tombstones:     0");
    expect((await cli(["list"], env)).stdout).toContain("COPY-ON-READ");
    const off = await cli(["update", "--bucket", offBucket, "--no-copy-on-read", "--json"], env);
    expect(JSON.parse(off.stdout)).toMatchObject({ buckets: [{ copyOnRead: false }] });
    const bad = await cli(
      ["update", "--bucket", offBucket, "--copy-on-read-max-size", "lots"],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain("--copy-on-read-max-size lots is not a size");
  });

  it("50 concurrent GETs of one 64 MiB source-only object write it back exactly once", async () => {
    const body = randomBytes(64 * MiB);
    await putSource(bucket, "big", body);
    const want = md5(body);
    const written = await metric(gw, "s3gw_migrate_copy_on_read_total", 'outcome="written"');
    // All 50 at once: the source's answers are held until every GET has missed on the target
    // and asked the source, then released together. (A GET reaching MinIO while a write-back
    // of the key is under way waits for it: MinIO holds the key's lock for the whole of a PUT
    // with If-None-Match, so this in-process rig, where 50 TLS clients share one event loop
    // with the gateway, would otherwise time such reads out.)
    sourceProxy.hold = (r) => r.method === "GET" && r.url.startsWith(`/${sourceBucket}/big`);
    // One client reads the whole object; the 49 others its first MiB, then hang up (this
    // shared two-core rig cannot push 3.2 GB through one process in a test's time; the
    // write-back does not depend on how much the clients read).
    const reads = Array.from({ length: 50 }, async (_, i) => {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big" }));
      return i === 0 ? await md5Of(got.Body) : await firstBytes(got.Body, MiB);
    });
    await until(() => sourceProxy.heldRequests().length === 50, "50 source GETs");
    sourceProxy.hold = undefined;
    sourceProxy.release();
    const sums = await Promise.all(reads);
    expect(sums[0]).toBe(want);
    expect(new Set(sums.slice(1))).toEqual(new Set([md5(body.subarray(0, MiB))]));
    await until(
      async () =>
        (await metric(gw, "s3gw_migrate_copy_on_read_total", 'outcome="written"')) === written + 1,
      "the write-back",
    );
    expect(targetPuts(bucket, "big")).toBe(1);
    const onTarget = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: "big" }));
    expect(await md5Of(onTarget.Body)).toBe(want);
    expect(onTarget.ETag).toBe(`"${want}"`);
    expect(await metric(gw, "s3gw_migrate_copy_on_read_bytes_total")).toBeGreaterThanOrEqual(
      64 * MiB,
    );
  }, 300_000);

  it("a client that disconnects after 1 MiB still leaves the whole object on the target", async () => {
    const body = randomBytes(32 * MiB);
    await putSource(bucket, "cut", body);
    // The write-back's PUT is held at the target until the client has gone: it can only
    // complete after the client disconnected.
    const isPut = (r: { method: string; url: string }): boolean =>
      r.method === "PUT" && r.url.startsWith(`/${bucket}/cut`);
    targetProxy.hold = isPut;
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "cut" }));
    const stream = got.Body as NodeJS.ReadableStream & { destroy(): void };
    let read = 0;
    await new Promise<void>((resolve) => {
      stream.on("data", (c: Buffer) => {
        read += c.length;
        if (read >= MiB) {
          stream.destroy();
          resolve();
        }
      });
    });
    expect(read).toBeLessThan(body.length);
    await until(() => targetProxy.heldRequests().some(isPut), "the held write-back");
    expect(await exists(direct.target, bucket, "cut")).toBe(false);
    targetProxy.hold = undefined;
    targetProxy.release();
    await until(() => exists(direct.target, bucket, "cut"), "the write-back to land");
    const onTarget = await direct.target.send(new GetObjectCommand({ Bucket: bucket, Key: "cut" }));
    expect(md5(await bytesOf(onTarget.Body))).toBe(md5(body));
    expect(targetPuts(bucket, "cut")).toBe(1);
  });

  it("a source body that does not match its ETag leaves nothing on the target", async () => {
    const body = randomBytes(2 * MiB);
    await putSource(bucket, "flipped", body);
    sourceProxy.flip = (r) => r.method === "GET" && r.url.startsWith(`/${sourceBucket}/flipped`);
    const failures = await metric(
      gw,
      "s3gw_migrate_copy_on_read_failures_total",
      'reason="digest_mismatch"',
    );
    try {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "flipped" }));
      // The client gets what the (faulty) source sent; whether its SDK notices is its business.
      await bytesOf(got.Body).catch(() => Buffer.alloc(0));
    } catch {
      // A client-side checksum validation may refuse the answer: not what this test is about.
    } finally {
      sourceProxy.flip = undefined;
    }
    await until(
      async () =>
        (await metric(
          gw,
          "s3gw_migrate_copy_on_read_failures_total",
          'reason="digest_mismatch"',
        )) ===
        failures + 1,
      "the refused write-back",
    );
    expect(targetPuts(bucket, "flipped")).toBe(1);
    expect(await exists(direct.target, bucket, "flipped")).toBe(false);
  });

  it("a key deleted while its fallback read is under way is not written back", async () => {
    const body = randomBytes(64 * 1024);
    await putSource(bucket, "tomb", body);
    const tombstoned = await metric(gw, "s3gw_migrate_copy_on_read_total", 'outcome="tombstoned"');
    // Hold the source's GET: the fallback has checked for a tombstone and asked the source.
    sourceProxy.hold = (r) => r.method === "GET" && r.url.startsWith(`/${sourceBucket}/tomb`);
    const read = client.send(new GetObjectCommand({ Bucket: bucket, Key: "tomb" }));
    await until(() => sourceProxy.heldRequests().length > 0, "the held source GET");
    sourceProxy.hold = undefined;
    // A client DELETE's first step (its deletes would follow); then the source answers.
    await gw.gateway.store.addTombstone(bucket, "tomb");
    sourceProxy.release();
    const got = await read;
    expect(md5(await bytesOf(got.Body))).toBe(md5(body));
    await until(
      async () =>
        (await metric(gw, "s3gw_migrate_copy_on_read_total", 'outcome="tombstoned"')) ===
        tombstoned + 1,
      "the refused claim",
    );
    expect(targetPuts(bucket, "tomb")).toBe(0);
    expect(await exists(direct.target, bucket, "tomb")).toBe(false);
    // And a read after the tombstone does not reach the source at all.
    await expect(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: "tomb" })),
    ).rejects.toMatchObject({ name: "NoSuchKey" });
    expect((await admin.show(bucket)).tombstones).toBe(1);
  });

  it("a range read and a multipart object are not written back", async () => {
    const body = randomBytes(MiB);
    await putSource(bucket, "ranged", body);
    const part = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: "ranged", Range: "bytes=0-99" }),
    );
    expect((await bytesOf(part.Body)).length).toBe(100);
    const skipped = await metric(
      gw,
      "s3gw_migrate_copy_on_read_skipped_total",
      'reason="multipart_etag"',
    );
    const up = await direct.source.send(
      new CreateMultipartUploadCommand({ Bucket: sourceBucket, Key: "mp" }),
    );
    const parts = [];
    for (let n = 1; n <= 2; n++) {
      const p = await direct.source.send(
        new UploadPartCommand({
          Bucket: sourceBucket,
          Key: "mp",
          UploadId: up.UploadId,
          PartNumber: n,
          Body: randomBytes(5 * MiB),
        }),
      );
      parts.push({ PartNumber: n, ETag: p.ETag });
    }
    await direct.source.send(
      new CompleteMultipartUploadCommand({
        Bucket: sourceBucket,
        Key: "mp",
        UploadId: up.UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "mp" }));
    expect((await bytesOf(got.Body)).length).toBe(10 * MiB);
    expect(
      await metric(gw, "s3gw_migrate_copy_on_read_skipped_total", 'reason="multipart_etag"'),
    ).toBe(skipped + 1);
    expect(targetPuts(bucket, "ranged")).toBe(0);
    expect(targetPuts(bucket, "mp")).toBe(0);
  });
});
