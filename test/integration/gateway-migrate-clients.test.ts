// The Debian S3 clients in migrate mode (issue 8, Proof): the AWS CLI, rclone and s3cmd run as
// programs against the gateway over TLS (target MinIO, source versitygw holding objects written
// before the switch). Uploads land on the target only; downloads of objects not yet copied are
// served from the source (the AWS CLI's large download is ranged, in parallel); deletes remove
// the key on both sides. Every step is checked with direct requests to both backends.
//
// These cases exercise object operations (`aws s3 cp` of one key, `rclone copyto`/`cat`,
// `s3cmd put/get/del` of one key); the merged listings these tools also use are proven in
// gateway-listing-clients.test.ts (`aws s3 ls`/`sync`, `rclone lsf`/`check`, `s3cmd ls`). A missing
// tool fails these tests: CI installs them.

import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import { writeCliClients, type CliClients } from "../helpers/cli-clients.js";
import {
  makeTestCerts,
  startTestGateway,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";

const rig = inject("rig");
const USER = testCredential("migrate-clients-user");
const MIB = 1024 * 1024;

function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 131 + seed * 17 + (i >> 11)) & 0xff;
  return buf;
}

function md5(data: Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** The md5 and ETag of a key on one backend, or undefined when it is absent. */
async function findDirect(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<{ md5: string; etag: string } | undefined> {
  const res = await client.request({ method: "GET", bucket, key, okStatuses: [404] });
  if (res.status === 404) {
    res.body.resume();
    return undefined;
  }
  const hash = createHash("md5");
  for await (const chunk of res.body) hash.update(chunk as Buffer);
  return { md5: hash.digest("hex"), etag: (res.headers.etag ?? "").replace(/"/g, "") };
}

describe("Debian S3 clients in migrate mode (target MinIO, source versitygw)", () => {
  const run = randomBytes(4).toString("hex");
  const bucket = `gwmc-${run}`;
  const sourceBucket = `${bucket}-src`;
  let certs: TestCerts;
  let gw: TestGateway;
  let dir: string;
  let direct: { target: S3Client; source: S3Client };
  let clients: CliClients;
  const small = pattern(10_000, 1);
  const large = pattern(20 * MIB, 2);
  const oldSmall = pattern(12_345, 3);
  const oldLarge = pattern(20 * MIB + 17, 4);
  let paths: { small: string; large: string };

  /** The key is on the target with these bytes and not on the source. */
  async function onTargetOnly(key: string, data: Buffer): Promise<string> {
    const t = await findDirect(direct.target, bucket, key);
    expect(t?.md5, `${key} on the target`).toBe(md5(data));
    expect(await findDirect(direct.source, sourceBucket, key), `${key} on the source`).toBe(
      undefined,
    );
    return t?.etag ?? "";
  }

  async function nowhere(key: string): Promise<void> {
    expect(await findDirect(direct.target, bucket, key), `${key} on the target`).toBe(undefined);
    expect(await findDirect(direct.source, sourceBucket, key), `${key} on the source`).toBe(
      undefined,
    );
  }

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: rig.minio.endpoint, server: rig.minio },
      credentials: [USER],
    });
    const mk = (s: typeof rig.minio): S3Client =>
      new S3Client({
        endpoint: s.endpoint,
        region: s.region,
        credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      });
    direct = { target: mk(rig.minio), source: mk(rig.versitygw) };
    await direct.target.request({ method: "PUT", bucket });
    await direct.source.request({ method: "PUT", bucket: sourceBucket });
    for (const tool of ["aws", "rclone", "s3cmd"]) {
      for (const [name, data] of [
        ["small", oldSmall],
        ["large", oldLarge],
      ] as const) {
        await direct.source.request({
          method: "PUT",
          bucket: sourceBucket,
          key: `old/${tool}/${name}.bin`,
          body: data,
        });
      }
    }
    const s = rig.versitygw;
    await gw.gateway.store.attach(
      {
        bucket,
        sourceUrl: s.endpoint,
        sourceBucket,
        sourceAccessKey: s.accessKeyId,
        sourceSecretKey: s.secretAccessKey,
        sourceRegion: s.region,
        sourceCa: "system",
      },
      { by: "test" },
    );
    await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
    await gw.gateway.store.update(
      { bucket },
      { mode: "migrate" },
      { by: "test", confirmIrreversible: true },
    );

    clients = await writeCliClients({
      gw,
      certs,
      credential: USER,
      region: rig.minio.region,
      dirPrefix: "s3gw-migrate-clients-",
      encoding: "latin1",
    });
    dir = clients.dir;
    paths = { small: join(dir, "small.bin"), large: join(dir, "large.bin") };
    await writeFile(paths.small, small);
    await writeFile(paths.large, large);
  });

  afterAll(async () => {
    await gw?.close();
    await direct?.target.close();
    await direct?.source.close();
  });

  it("aws s3 cp: up (20 MiB multipart) to the target, down (ranged, parallel) from the source, rm on both sides", async () => {
    const aws = clients.aws;
    const url = (key: string): string => `s3://${bucket}/${key}`;
    await aws("s3", "cp", paths.small, url("aws/small.bin"));
    await onTargetOnly("aws/small.bin", small);
    await aws("s3", "cp", paths.large, url("aws/large.bin"));
    expect(await onTargetOnly("aws/large.bin", large)).toMatch(/-3$/);

    const fallbackGets = (): number =>
      gw
        .logs()
        .split("\n")
        .filter(
          (l) =>
            l.includes('"operation":"GetObject"') && l.includes('"backends":["target","source"]'),
        ).length;
    const before = fallbackGets();
    for (const [name, data] of [
      ["small", oldSmall],
      ["large", oldLarge],
    ] as const) {
      const out = join(dir, `aws-old-${name}.out`);
      await aws("s3", "cp", url(`old/aws/${name}.bin`), out);
      expect(md5(await readFile(out)), name).toBe(md5(data));
    }
    const back = join(dir, "aws-large.out");
    await aws("s3", "cp", url("aws/large.bin"), back);
    expect(md5(await readFile(back))).toBe(md5(large));
    // The 20 MiB download is ranged (8 MiB parts, in parallel): one fallback GET per part, plus
    // the small one; reading copied nothing to the target.
    expect(fallbackGets() - before).toBeGreaterThanOrEqual(4);
    expect(await findDirect(direct.target, bucket, "old/aws/large.bin")).toBe(undefined);

    await aws("s3", "rm", url("old/aws/small.bin"));
    await nowhere("old/aws/small.bin");
    await aws("s3", "rm", url("aws/small.bin"));
    await nowhere("aws/small.bin");
  });

  it("rclone: copyto up (single and multipart) and down, cat of a source-only object", async () => {
    const rclone = clients.rclone;
    const remote = (key: string): string => `gw:${bucket}/${key}`;
    await rclone("copyto", paths.small, remote("rclone/small.bin"));
    await onTargetOnly("rclone/small.bin", small);
    await rclone(
      "copyto",
      "--s3-upload-cutoff",
      "5M",
      "--s3-chunk-size",
      "5M",
      paths.large,
      remote("rclone/large.bin"),
    );
    expect(await onTargetOnly("rclone/large.bin", large)).toMatch(/-4$/);

    const out = join(dir, "rclone-old-large.out");
    await rclone("copyto", remote("old/rclone/large.bin"), out);
    expect(md5(await readFile(out))).toBe(md5(oldLarge));
    // `rclone cat REMOTE:bucket/key` lists the key's directory first (a merged listing: the key
    // is on the source only), then GETs it.
    const byName = await rclone("cat", remote("old/rclone/small.bin"));
    expect(md5(Buffer.from(byName, "latin1"))).toBe(md5(oldSmall));
    // Naming the file with --files-from-raw and --no-traverse makes rclone fetch it without
    // listing (HEAD, then GET): the object path alone, with a ranged read.
    const list = join(dir, "rclone-files");
    await writeFile(list, "small.bin\n");
    const catArgs = ["cat", "--no-traverse", "--files-from-raw", list];
    const cat = await rclone(...catArgs, remote("old/rclone"));
    expect(md5(Buffer.from(cat, "latin1"))).toBe(md5(oldSmall));
    const part = await rclone(
      ...catArgs,
      "--offset",
      "100",
      "--count",
      "100",
      remote("old/rclone"),
    );
    expect(Buffer.from(part, "latin1").equals(oldSmall.subarray(100, 200))).toBe(true);
    expect(await findDirect(direct.target, bucket, "old/rclone/small.bin")).toBe(undefined);
  });

  it("s3cmd: put (single and multipart) to the target, get from the source, del on both sides", async () => {
    const s3cmd = clients.s3cmd;
    const url = (key: string): string => `s3://${bucket}/${key}`;
    await s3cmd("put", paths.small, url("s3cmd/small.bin"));
    await onTargetOnly("s3cmd/small.bin", small);
    await s3cmd("put", "--multipart-chunk-size-mb=5", paths.large, url("s3cmd/large.bin"));
    expect(await onTargetOnly("s3cmd/large.bin", large)).toMatch(/-4$/);

    const out = join(dir, "s3cmd-old-large.out");
    await s3cmd("get", "--force", url("old/s3cmd/large.bin"), out);
    expect(md5(await readFile(out))).toBe(md5(oldLarge));

    await s3cmd("del", url("old/s3cmd/small.bin"));
    await nowhere("old/s3cmd/small.bin");
    await s3cmd("del", url("s3cmd/small.bin"));
    await nowhere("s3cmd/small.bin");
  });
});
