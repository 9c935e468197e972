// The admin API's request checks at the HTTP level, in process: a body not covered by the
// signature is refused, a tampered body is refused, anonymous requests are refused, the
// irreversible transition needs explicit acknowledgement, and the metrics listener follows
// the state. Target and source are the rig's real servers.

import { createHash, randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3AttachValidator } from "../../gateway/admin/attach-validator.js";
import { parseConfig } from "../../gateway/config.js";
import { createLogger } from "../../gateway/logger.js";
import { startGateway, type RunningGateway } from "../../gateway/server.js";
import { signRequest } from "../../s3/sigv4-sign.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const ADMIN = {
  accessKeyId: "api-admin",
  secretAccessKey: `admin-${randomBytes(8).toString("hex")}`,
};

function s3(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

describe("admin API request checks", () => {
  let gw: RunningGateway;
  let logs = "";
  const bucket = `gw-api-${randomBytes(5).toString("hex")}`;

  beforeAll(async () => {
    await s3(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
    await s3(rig.versitygw).send(new CreateBucketCommand({ Bucket: bucket }));
    const dir = await mkdtemp(join(tmpdir(), "s3gw-api-it-"));
    const config = parseConfig(
      [
        "listen: 127.0.0.1:0",
        "admin: { listen: 127.0.0.1:0 }",
        "metrics: { listen: 127.0.0.1:0 }",
        `region: ${rig.minio.region}`,
        `target: { endpoint: "${rig.minio.endpoint}", accessKey: ${rig.minio.accessKeyId}, secretKey: "${rig.minio.secretAccessKey}" }`,
        `credentials: [{ accessKey: ${ADMIN.accessKeyId}, secretKey: "${ADMIN.secretAccessKey}", role: admin }]`,
        "state: { path: state.json }",
      ].join("\n"),
      { env: {}, baseDir: dir },
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString();
        done();
      },
    });
    gw = await startGateway({
      config,
      logger: createLogger({ destination: sink }),
      validator: new S3AttachValidator({ target: config.target }),
    });
  });

  afterAll(async () => {
    await gw?.close();
  });

  /** Sends a request signed over `signedBody` (hash) but carrying `body`. */
  async function send(
    method: string,
    path: string,
    options: { body?: unknown; signedBody?: unknown; payloadHash?: string; sign?: boolean } = {},
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const url = new URL(gw.admin.url);
    const body = options.body === undefined ? "" : JSON.stringify(options.body);
    const signedText = options.signedBody === undefined ? body : JSON.stringify(options.signedBody);
    const headers: Record<string, string> = { host: url.host, "content-type": "application/json" };
    const signed =
      options.sign === false
        ? {}
        : signRequest(
            {
              method,
              path,
              headers,
              payloadHash:
                options.payloadHash ?? createHash("sha256").update(signedText).digest("hex"),
            },
            ADMIN,
            { region: rig.minio.region },
          );
    const res = await request(`${gw.admin.url}${path}`, {
      method: method as "GET",
      headers: { ...headers, ...signed },
      body: body || null,
    });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  }

  const attachBody = () => ({
    sourceUrl: rig.versitygw.endpoint,
    sourceAccessKey: rig.versitygw.accessKeyId,
    sourceSecretKey: rig.versitygw.secretAccessKey,
    sourceRegion: rig.versitygw.region,
    sourceCa: "system",
  });

  it("refuses anonymous requests, unsigned payloads and tampered bodies, saving nothing", async () => {
    expect(await send("GET", "/admin/v1/buckets", { sign: false })).toMatchObject({
      status: 403,
      json: { code: "AccessDenied" },
    });
    expect(
      await send("POST", `/admin/v1/buckets/${bucket}`, {
        body: attachBody(),
        payloadHash: "UNSIGNED-PAYLOAD",
      }),
    ).toMatchObject({ status: 400, json: { code: "UnsignedPayload" } });
    // Signed for one source URL, sent with another: the body hash no longer matches.
    expect(
      await send("POST", `/admin/v1/buckets/${bucket}`, {
        signedBody: attachBody(),
        body: { ...attachBody(), sourceUrl: "http://evil.example:9000" },
      }),
    ).toMatchObject({ status: 400, json: { code: "XAmzContentSHA256Mismatch" } });
    expect(gw.store.list()).toEqual([]);
  });

  it("validates fields and needs confirmIrreversible for forward → migrate", async () => {
    expect(await send("POST", "/admin/v1/buckets/Bad_Name", { body: attachBody() })).toMatchObject({
      status: 400,
      json: { code: "InvalidBucketName" },
    });
    expect(
      await send("POST", `/admin/v1/buckets/${bucket}`, { body: { ...attachBody(), extra: 1 } }),
    ).toMatchObject({
      status: 400,
      json: { code: "InvalidArgument", message: "unknown field extra" },
    });

    const attached = await send("POST", `/admin/v1/buckets/${bucket}`, { body: attachBody() });
    expect(attached.status).toBe(201);
    expect(JSON.stringify(attached.json)).not.toContain(rig.versitygw.secretAccessKey);
    expect(
      (await send("POST", "/admin/v1/update", { body: { bucket, mode: "forward" } })).status,
    ).toBe(200);

    const unconfirmed = await send("POST", "/admin/v1/update", {
      body: { bucket, mode: "migrate" },
    });
    expect(unconfirmed).toMatchObject({ status: 409, json: { code: "ConfirmationRequired" } });
    expect(gw.store.get(bucket)?.mode).toBe("forward");

    const refused = await send("DELETE", `/admin/v1/buckets/${bucket}`);
    expect(refused).toMatchObject({
      status: 409,
      json: { code: "TransitionRefused", rule: "detach-only-from-ready-or-migrate" },
    });

    // A source change is validated before it is saved: a wrong secret is refused.
    const badSecret = await send("POST", "/admin/v1/update", {
      body: { bucket, sourceSecretKey: "not-the-right-secret" },
    });
    expect(badSecret).toMatchObject({ status: 422, json: { code: "SourceAccessDenied" } });
    expect(gw.store.get(bucket)?.sourceSecretKey).toBe(rig.versitygw.secretAccessKey);

    const confirmed = await send("POST", "/admin/v1/update", {
      body: { bucket, mode: "migrate", confirmIrreversible: true },
    });
    expect(confirmed).toMatchObject({
      status: 200,
      json: { buckets: [{ bucket, mode: "migrate" }] },
    });
  });

  it("exports each bucket's mode on the metrics listener and logs no secret", async () => {
    const res = await request(`${gw.metrics?.url}/metrics`);
    const text = await res.body.text();
    expect(text).toContain(`s3gw_bucket_mode{bucket="${bucket}",mode="migrate"} 1`);
    expect(text).toContain(`s3gw_bucket_mode{bucket="${bucket}",mode="forward"} 0`);
    expect(logs).toContain('"msg":"admin request"');
    for (const secret of [
      ADMIN.secretAccessKey,
      rig.versitygw.secretAccessKey,
      rig.minio.secretAccessKey,
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
