// PostObject (browser-form uploads) through the gateway: boto3's generate_presigned_post, SigV4
// and SigV2, sent with curl's -F as a browser would, in ready and forward mode with the object
// on the mode's side only; success_action_status and success_action_redirect; and the refusal
// table (bad signature, expired, condition violated, oversized and undersized file, missing
// fields), each of which sends the backends zero bytes (counting proxies).

import { execFile } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import {
  CountingProxy,
  bytesOf,
  directClient,
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import { repoRoot } from "../rig/servers.js";

const rig = inject("rig");
const run = randomBytes(4).toString("hex");
const USER = testCredential("post-user");
const exec = promisify(execFile);

let certs: TestCerts;
let gw: TestGateway;
let targetProxy: CountingProxy;
let sourceProxy: CountingProxy;
let dir: string;

/** A presigned POST as boto3 makes it. */
interface PresignedPost {
  readonly url: string;
  readonly fields: Record<string, string>;
}

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

/** boto3's generate_presigned_post for `key`. */
async function presignedPost(
  bucket: string,
  key: string,
  options: { version: "s3v4" | "s3"; maxBytes?: number; expiresIn?: number },
): Promise<PresignedPost> {
  const { stdout } = await exec(
    "python3",
    [
      join(repoRoot, "test", "fixtures", "clients", "boto3-presigned-post.py"),
      gw.url,
      bucket,
      key,
      options.version,
      String(options.maxBytes ?? 10 * 1024 * 1024),
      String(options.expiresIn ?? 300),
    ],
    {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: dir,
        AWS_ACCESS_KEY_ID: USER.accessKeyId,
        AWS_SECRET_ACCESS_KEY: USER.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: "true",
      },
    },
  );
  return JSON.parse(stdout) as PresignedPost;
}

/** Sends a form with curl -F (fields in order, the file last); status, headers and body. */
async function curlForm(
  url: string,
  fields: Record<string, string>,
  file: Buffer | undefined,
): Promise<{ status: number; headers: string; body: string }> {
  const args = ["-sS", "--cacert", join(certs.dir, "ca.pem"), "-D", "-", "-o", "-"];
  for (const [k, v] of Object.entries(fields)) args.push("--form-string", `${k}=${v}`);
  if (file !== undefined) {
    const path = join(dir, `upload-${randomBytes(4).toString("hex")}.txt`);
    await writeFile(path, file);
    args.push("-F", `file=@${path};filename=hello.txt`);
  }
  args.push(url);
  const { stdout } = await exec("curl", args, { maxBuffer: 16 * 1024 * 1024 });
  // curl -D - prints every header block (a 100 Continue first); the last one is the answer.
  const blocks = stdout.split(/\r\n\r\n/);
  let i = 0;
  while (i < blocks.length - 1 && /^HTTP\/\S+ 100/.test(blocks[i] ?? "")) i++;
  const headers = blocks[i] ?? "";
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(headers)?.[1] ?? "0");
  return { status, headers, body: blocks.slice(i + 1).join("\r\n\r\n") };
}

beforeAll(async () => {
  certs = await makeTestCerts();
  dir = await mkdtemp(join(tmpdir(), "s3gw-post-"));
  targetProxy = await CountingProxy.start(rig.minio.endpoint);
  sourceProxy = await CountingProxy.start(rig.versitygw.endpoint);
  gw = await startTestGateway({
    certs,
    target: { endpoint: targetProxy.endpoint, server: rig.minio },
    credentials: [USER],
    listener: { tlsReloadOnSignal: false },
  });
});

afterAll(async () => {
  await gw?.close();
  await targetProxy?.close();
  await sourceProxy?.close();
});

describe.each(["ready", "forward"] as const)("PostObject in %s mode", (mode) => {
  const bucket = `gwpost-${mode}-${run}`;
  const sourceBucket = `${bucket}-src`;
  let home: { client: S3Client; bucket: string };
  let other: { client: S3Client; bucket: string };

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
  });

  async function onHomeOnly(key: string, data: Buffer, contentType?: string): Promise<void> {
    const got = await home.client.request({ method: "GET", bucket: home.bucket, key });
    expect(md5(await bytesOf(got.body)), `${key} on the home side`).toBe(md5(data));
    if (contentType !== undefined) expect(got.headers["content-type"]).toBe(contentType);
    const elsewhere = await other.client.request({
      method: "HEAD",
      bucket: other.bucket,
      key,
      okStatuses: [404],
    });
    expect(elsewhere.status, `${key} on the other side`).toBe(404);
  }

  it.each(["s3v4", "s3"] as const)(
    "boto3 generate_presigned_post (%s) sent with curl -F: 201 with a PostResponse, object stored",
    async (version) => {
      const key = `forms/${version}/\${filename}`;
      const post = await presignedPost(bucket, key, { version });
      expect(post.fields[version === "s3" ? "AWSAccessKeyId" : "x-amz-algorithm"]).toBeDefined();
      const data = randomBytes(300_000);
      const r = await curlForm(post.url, post.fields, data);
      expect(r.status, r.body).toBe(201);
      expect(r.body).toContain(`<Key>forms/${version}/hello.txt</Key>`);
      expect(r.body).toContain(`<ETag>&quot;${md5(data)}&quot;</ETag>`);
      await onHomeOnly(`forms/${version}/hello.txt`, data, "text/plain");
    },
  );

  it("honours success_action_redirect with a 303 naming bucket, key and etag", async () => {
    const policy = {
      expiration: new Date(Date.now() + 60_000).toISOString(),
      conditions: [
        { bucket },
        ["starts-with", "$key", "redirected/"],
        ["starts-with", "$success_action_redirect", "https://app.example/"],
      ],
    };
    const fields = signedV2Fields(policy, {
      key: "redirected/one",
      success_action_redirect: "https://app.example/done",
    });
    const data = Buffer.from("redirect me");
    const r = await curlForm(`${gw.url}/${bucket}`, fields, data);
    expect(r.status).toBe(303);
    expect(r.headers).toMatch(
      new RegExp(
        `location: https://app\\.example/done\\?bucket=${bucket}&key=redirected%2Fone&etag=`,
        "i",
      ),
    );
    await onHomeOnly("redirected/one", data);
  });
});

/** SigV2 form fields for a policy document, signed by USER. */
function signedV2Fields(
  policy: unknown,
  extra: Record<string, string>,
  secret = USER.secretAccessKey,
): Record<string, string> {
  const text = Buffer.from(JSON.stringify(policy)).toString("base64");
  return {
    ...extra,
    AWSAccessKeyId: USER.accessKeyId,
    policy: text,
    signature: createHmac("sha1", secret).update(text).digest("base64"),
  };
}

describe("refused forms reach no backend", () => {
  const bucket = `gwpost-refuse-${run}`;

  beforeAll(async () => {
    await directClient(rig.minio).send(new CreateBucketCommand({ Bucket: bucket }));
  });

  it("refuses each bad form with S3's code and sends the backends nothing", async () => {
    const good = (extra: unknown[] = []) => ({
      expiration: new Date(Date.now() + 60_000).toISOString(),
      conditions: [
        { bucket },
        ["starts-with", "$key", "ok/"],
        ["content-length-range", 10, 1000],
        ...extra,
      ],
    });
    const expired = {
      ...good(),
      expiration: new Date(Date.now() - 1_000).toISOString(),
    };
    const file = Buffer.alloc(100, 1);
    const cases: [string, Record<string, string>, Buffer | undefined, number, string][] = [
      [
        "bad signature",
        signedV2Fields(good(), { key: "ok/a" }, "wrong-secret"),
        file,
        403,
        "SignatureDoesNotMatch",
      ],
      ["expired policy", signedV2Fields(expired, { key: "ok/a" }), file, 403, "AccessDenied"],
      [
        "key outside the policy",
        signedV2Fields(good(), { key: "other/a" }),
        file,
        403,
        "AccessDenied",
      ],
      [
        "field not in the policy",
        signedV2Fields(good(), { key: "ok/a", "x-amz-meta-x": "1" }),
        file,
        403,
        "AccessDenied",
      ],
      [
        "file over content-length-range",
        signedV2Fields(good(), { key: "ok/a" }),
        Buffer.alloc(1001, 1),
        400,
        "EntityTooLarge",
      ],
      [
        "file under content-length-range",
        signedV2Fields(good(), { key: "ok/a" }),
        Buffer.alloc(9, 1),
        400,
        "EntityTooSmall",
      ],
      ["no file", signedV2Fields(good(), { key: "ok/a" }), undefined, 400, "InvalidArgument"],
      ["no key", signedV2Fields(good(), {}), file, 400, "InvalidArgument"],
      ["no signature", { key: "ok/a", policy: "e30=" }, file, 403, "AccessDenied"],
      [
        "unknown key",
        { ...signedV2Fields(good(), { key: "ok/a" }), AWSAccessKeyId: "nobody" },
        file,
        403,
        "InvalidAccessKeyId",
      ],
    ];
    const before = targetProxy.bytesUp + sourceProxy.bytesUp;
    for (const [name, fields, f, status, code] of cases) {
      const r = await curlForm(`${gw.url}/${bucket}`, fields, f);
      const got = /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1];
      expect({ name, status: r.status, code: got }).toEqual({ name, status, code });
    }
    expect(targetProxy.bytesUp + sourceProxy.bytesUp - before).toBe(0);
  });
});
