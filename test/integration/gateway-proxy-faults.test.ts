// The S3 data plane under bad input and failing backends. A loopback counting TCP proxy sits
// between the gateway and each real backend (MinIO target, versitygw source): refused requests
// must send it nothing, and cutting or stalling it plays a backend that dies or hangs.

import { randomBytes } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { presignUrl, signRequest } from "../../s3/sigv4-sign.js";
import { EMPTY_SHA256 } from "../../s3/sigv4-canonical.js";
import {
  CountingProxy,
  directClient,
  gatewayClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
  bytesOf,
  exists,
} from "../helpers/gateway-harness.js";

const rig = inject("rig");
const run = randomBytes(4).toString("hex");
const BUCKET_A = `gwf-a-${run}`;
const BUCKET_B = `gwf-b-${run}`;
const FORWARDED = `gwf-fwd-${run}`;

const USER = testCredential("fault-user");
const READ_ONLY = testCredential("fault-ro", { readOnly: true });
const LIMITED = testCredential("fault-limited", { buckets: [BUCKET_A] });
const ADMIN = testCredential("fault-admin", { role: "admin" });

let certs: TestCerts;
let gw: TestGateway;
let targetProxy: CountingProxy;
let sourceProxy: CountingProxy;
let tls: Agent;
const targetDirect = (): S3Client => directClient(rig.minio);

/** Bytes both backends have received so far. */
function backendBytes(): number {
  return targetProxy.bytesUp + sourceProxy.bytesUp;
}

/** A raw request to the gateway; returns status, S3 error code and headers. */
async function raw(
  method: string,
  pathAndQuery: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; code: string | undefined; headers: Record<string, unknown> }> {
  const res = await request(`${gw.url}${pathAndQuery}`, {
    method: method as "GET",
    headers,
    body: body ?? null,
    dispatcher: tls,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1],
    headers: res.headers,
  };
}

function host(): string {
  return new URL(gw.url).host;
}

/** Header-form signature of a bodyless request as `cred`, at `now`. */
function signed(
  method: string,
  path: string,
  cred: { accessKeyId: string; secretAccessKey: string },
  extra: Record<string, string> = {},
  now?: Date,
): Record<string, string> {
  const headers = { host: host(), ...extra };
  return {
    ...headers,
    ...signRequest({ method, path, headers, payloadHash: EMPTY_SHA256 }, cred, {
      region: rig.minio.region,
      ...(now === undefined ? {} : { now }),
    }),
  };
}

beforeAll(async () => {
  certs = await makeTestCerts();
  targetProxy = await CountingProxy.start(rig.minio.endpoint);
  sourceProxy = await CountingProxy.start(rig.versitygw.endpoint);
  gw = await startTestGateway({
    certs,
    target: { endpoint: targetProxy.endpoint, server: rig.minio },
    credentials: [USER, READ_ONLY, LIMITED, ADMIN],
    listener: { backendTimeouts: { connectMs: 1_000, headersMs: 1_500, bodyIdleMs: 1_500 } },
  });
  tls = new Agent({ connect: { ca: certs.ca } });
  for (const b of [BUCKET_A, BUCKET_B, FORWARDED]) {
    await targetDirect().send(new CreateBucketCommand({ Bucket: b }));
  }
  await directClient(rig.versitygw).send(new CreateBucketCommand({ Bucket: FORWARDED }));
  await gw.gateway.store.attach(
    {
      bucket: FORWARDED,
      sourceUrl: sourceProxy.endpoint,
      sourceBucket: FORWARDED,
      sourceAccessKey: rig.versitygw.accessKeyId,
      sourceSecretKey: rig.versitygw.secretAccessKey,
      sourceRegion: rig.versitygw.region,
      sourceCa: "system",
    },
    { by: "test" },
  );
  await gw.gateway.store.update({ bucket: FORWARDED }, { mode: "forward" }, { by: "test" });
  await targetDirect().send(
    new PutObjectCommand({ Bucket: BUCKET_B, Key: "secret.txt", Body: "of bucket B" }),
  );
});

afterAll(async () => {
  await gw?.close();
  await tls?.close();
  await targetProxy?.close();
  await sourceProxy?.close();
});

describe("refused requests reach no backend", () => {
  it("refuses every bad authentication with its S3 code and sends the backends nothing", async () => {
    const path = `/${BUCKET_A}/obj`;
    const before = backendBytes();
    const cases: [string, Promise<{ status: number; code: string | undefined }>, number, string][] =
      [
        [
          "bad signature",
          raw("GET", path, signed("GET", path, { ...USER, secretAccessKey: "wrong-secret" })),
          403,
          "SignatureDoesNotMatch",
        ],
        [
          "unknown key",
          raw(
            "GET",
            path,
            signed("GET", path, { accessKeyId: "nobody", secretAccessKey: "x".repeat(12) }),
          ),
          403,
          "InvalidAccessKeyId",
        ],
        [
          "skewed clock",
          raw("GET", path, signed("GET", path, USER, {}, new Date(Date.now() - 20 * 60_000))),
          403,
          "RequestTimeTooSkewed",
        ],
        ["anonymous", raw("GET", path, {}), 403, "AccessDenied"],
        [
          // SigV2 is verified (auth.sigv2 defaults to on): a bad V2 signature is refused as a
          // bad V4 one is.
          "SigV2 with a bad signature",
          raw("GET", path, {
            authorization: `AWS ${USER.accessKeyId}:c2lnbmF0dXJl`,
            date: new Date().toUTCString(),
          }),
          403,
          "SignatureDoesNotMatch",
        ],
        [
          "both auth forms",
          raw(
            "GET",
            new URL(
              presignUrl({ method: "GET", origin: gw.url, path }, USER, {
                region: rig.minio.region,
                expiresSeconds: 60,
              }),
            ).pathname +
              "?" +
              new URL(
                presignUrl({ method: "GET", origin: gw.url, path }, USER, {
                  region: rig.minio.region,
                  expiresSeconds: 60,
                }),
              ).search.slice(1),
            signed("GET", path, USER),
          ),
          400,
          "InvalidArgument",
        ],
        ["admin credential", raw("GET", path, signed("GET", path, ADMIN)), 403, "AccessDenied"],
      ];
    for (const [name, pending, status, code] of cases) {
      expect({ name, ...(await pending) }).toMatchObject({ name, status, code });
    }
    expect(backendBytes()).toBe(before);
  });

  it("refuses an unsigned x-amz-copy-source added to a presigned PUT (confused deputy)", async () => {
    const url = presignUrl({ method: "PUT", origin: gw.url, path: `/${BUCKET_A}/stolen` }, USER, {
      region: rig.minio.region,
      expiresSeconds: 60,
    });
    const before = backendBytes();
    const u = new URL(url);
    const res = await raw("PUT", `${u.pathname}${u.search}`, {
      "x-amz-copy-source": `/${BUCKET_B}/secret.txt`,
      "content-length": "0",
    });
    expect(res).toMatchObject({ status: 403, code: "AccessDenied" });
    expect(backendBytes()).toBe(before);
    expect(await exists(targetDirect(), BUCKET_A, "stolen")).toBe(false);
  });

  it("a read-only user reads but cannot write, and its write sends nothing", async () => {
    await targetDirect().send(new PutObjectCommand({ Bucket: BUCKET_A, Key: "ro.txt", Body: "r" }));
    const ro = gatewayClient(gw, certs, READ_ONLY, { region: rig.minio.region });
    const got = await ro.send(new GetObjectCommand({ Bucket: BUCKET_A, Key: "ro.txt" }));
    expect((await bytesOf(got.Body)).toString()).toBe("r");
    const before = backendBytes();
    await expect(
      ro.send(new PutObjectCommand({ Bucket: BUCKET_A, Key: "ro-write", Body: "w" })),
    ).rejects.toMatchObject({ name: "AccessDenied" });
    expect(backendBytes()).toBe(before);
    expect(await exists(targetDirect(), BUCKET_A, "ro-write")).toBe(false);
  });

  it("a user limited to bucket A cannot touch B, not even as a copy source, nor see it listed", async () => {
    const limited = gatewayClient(gw, certs, LIMITED, { region: rig.minio.region });
    await limited.send(new PutObjectCommand({ Bucket: BUCKET_A, Key: "mine", Body: "a" }));
    const before = backendBytes();
    await expect(
      limited.send(new GetObjectCommand({ Bucket: BUCKET_B, Key: "secret.txt" })),
    ).rejects.toMatchObject({ name: "AccessDenied" });
    await expect(
      limited.send(
        new CopyObjectCommand({
          Bucket: BUCKET_A,
          Key: "copied-secret",
          CopySource: `${BUCKET_B}/secret.txt`,
        }),
      ),
    ).rejects.toMatchObject({ name: "AccessDenied" });
    expect(backendBytes()).toBe(before);
    expect(await exists(targetDirect(), BUCKET_A, "copied-secret")).toBe(false);
    const listed = await limited.send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((b) => b.Name)).toEqual([BUCKET_A]);
    const all = await gatewayClient(gw, certs, USER, { region: rig.minio.region }).send(
      new ListBucketsCommand({}),
    );
    expect(all.Buckets?.map((b) => b.Name)).toEqual(expect.arrayContaining([BUCKET_A, BUCKET_B]));
  });

  it("refuses oversized headers with RequestHeaderSectionTooLarge", async () => {
    const before = backendBytes();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        `${gw.url}/${BUCKET_A}/obj`,
        { ca: certs.ca, headers: { "x-amz-meta-big": "x".repeat(40 * 1024) } },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain("<Code>RequestHeaderSectionTooLarge</Code>");
    expect(backendBytes()).toBe(before);
  });

  it("refuses a copy between a forward-mode bucket and a target bucket with NotImplemented", async () => {
    const client = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    await expect(
      client.send(
        new CopyObjectCommand({ Bucket: FORWARDED, Key: "x", CopySource: `${BUCKET_A}/mine` }),
      ),
    ).rejects.toMatchObject({ name: "NotImplemented", $metadata: { httpStatusCode: 501 } });
  });
});

describe("protocol details", () => {
  /** Sends a PUT with Expect: 100-continue; reports whether 100 came and the final status. */
  function putExpecting(
    headers: Record<string, string>,
    body: Buffer,
  ): Promise<{ continued: boolean; status: number }> {
    return new Promise((resolve, reject) => {
      let continued = false;
      const req = httpsRequest(`${gw.url}/${BUCKET_A}/expect`, {
        method: "PUT",
        ca: certs.ca,
        headers: { ...headers, expect: "100-continue", "content-length": String(body.length) },
      });
      req.on("continue", () => {
        continued = true;
        req.end(body);
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve({ continued, status: res.statusCode ?? 0 }));
        if (!continued) req.destroy();
      });
      req.on("error", (err) => (continued ? reject(err) : undefined));
    });
  }

  it("answers Expect: 100-continue only after authentication", async () => {
    const body = Buffer.from("continued body");
    const sign = (cred: { accessKeyId: string; secretAccessKey: string }) => {
      const headers = { host: host(), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" };
      return {
        ...headers,
        ...signRequest(
          { method: "PUT", path: `/${BUCKET_A}/expect`, headers, payloadHash: "UNSIGNED-PAYLOAD" },
          cred,
          { region: rig.minio.region },
        ),
      };
    };
    const before = backendBytes();
    expect(await putExpecting(sign({ ...USER, secretAccessKey: "bad-secret" }), body)).toEqual({
      continued: false,
      status: 403,
    });
    expect(backendBytes()).toBe(before);
    expect(await putExpecting(sign(USER), body)).toEqual({ continued: true, status: 200 });
    const got = await targetDirect().send(
      new GetObjectCommand({ Bucket: BUCKET_A, Key: "expect" }),
    );
    expect((await bytesOf(got.Body)).equals(body)).toBe(true);
  });
});

describe("failing backends", () => {
  it("a backend cut mid-PUT leaves no object, and the client gets an error", async () => {
    const client = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    const size = 24 * 1024 * 1024;
    const start = targetProxy.bytesUp;
    targetProxy.onUp = (n) => {
      if (n - start > 4 * 1024 * 1024) targetProxy.cut();
    };
    try {
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < size; i += 1024 * 1024) yield randomBytes(1024 * 1024);
        })(),
      );
      await expect(
        client.send(
          new PutObjectCommand({
            Bucket: BUCKET_A,
            Key: "cut-put",
            Body: body,
            ContentLength: size,
          }),
        ),
      ).rejects.toBeDefined();
    } finally {
      targetProxy.onUp = undefined;
      targetProxy.restore();
    }
    expect(await exists(targetDirect(), BUCKET_A, "cut-put")).toBe(false);
  });

  it("a backend cut mid-GET aborts the client connection: never a short 200", async () => {
    const data = randomBytes(16 * 1024 * 1024);
    await targetDirect().send(
      new PutObjectCommand({ Bucket: BUCKET_A, Key: "cut-get", Body: data }),
    );
    const client = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    const start = targetProxy.bytesDown;
    targetProxy.onDown = (n) => {
      if (n - start > 2 * 1024 * 1024) targetProxy.cut();
    };
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: BUCKET_A, Key: "cut-get" }));
      expect(res.$metadata.httpStatusCode).toBe(200);
      await expect(bytesOf(res.Body)).rejects.toBeDefined();
    } finally {
      targetProxy.onDown = undefined;
      targetProxy.restore();
    }
  });

  it("answers 503 ServiceUnavailable, in bounded time, for a dead or hung backend", async () => {
    const client = gatewayClient(gw, certs, USER, { region: rig.minio.region });
    for (const fault of ["cut", "stall"] as const) {
      sourceProxy[fault]();
      const started = Date.now();
      try {
        await expect(
          client.send(new GetObjectCommand({ Bucket: FORWARDED, Key: "anything" })),
        ).rejects.toMatchObject({ name: "ServiceUnavailable", $metadata: { httpStatusCode: 503 } });
      } finally {
        sourceProxy.restore();
      }
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    // And the forward-mode bucket works again once the backend is back.
    await client.send(new PutObjectCommand({ Bucket: FORWARDED, Key: "back", Body: "ok" }));
    expect(await exists(directClient(rig.versitygw), FORWARDED, "back")).toBe(true);
    expect(await exists(targetDirect(), FORWARDED, "back")).toBe(false);
  });
});

describe("observability", () => {
  it("counts requests and auth failures in Prometheus and logs no secrets or signatures", async () => {
    const text = await (await request(`${gw.gateway.metrics?.url}/metrics`)).body.text();
    expect(text).toMatch(
      new RegExp(
        `s3gw_s3_requests_total\\{bucket="${FORWARDED}",mode="forward",operation="PutObject",backend="source",status="200"\\} [1-9]`,
      ),
    );
    expect(text).toMatch(/s3gw_s3_auth_failures_total\{code="SignatureDoesNotMatch"\} [1-9]/);
    expect(text).toContain("s3gw_s3_request_duration_seconds_bucket");
    const logs = gw.logs();
    expect(logs).toContain('"msg":"s3 request"');
    for (const secret of [
      USER.secretAccessKey,
      READ_ONLY.secretAccessKey,
      rig.minio.secretAccessKey,
      rig.versitygw.secretAccessKey,
    ]) {
      expect(logs).not.toContain(secret);
    }
    expect(logs).not.toMatch(/Signature=|X-Amz-Signature/);
  });
});
