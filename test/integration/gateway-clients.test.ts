// The Debian S3 clients as clients (issue 3, Proof): the AWS CLI, s3cmd and rclone, run as
// programs against the gateway over TLS with the CA made for this run, in `ready` and in
// `forward` mode (target MinIO, source versitygw). Each tool puts (small, empty, and a file
// large enough to make it use multipart), gets, lists, range-gets where it can, copies, deletes,
// multi-deletes, and the AWS CLI presigns a GET that curl fetches. After every write a direct
// check on both backends (our own S3Client) proves the data is on the side the mode says, and
// only there.
//
// s3cmd addresses buckets virtual-hosted style by default (`host_bucket`). glibc does not
// resolve `*.localhost` (nor `*.s3.test`) to loopback, so s3cmd is given an HTTP CONNECT proxy
// (its own `proxy_host` setting) that tunnels every hostname to the gateway: the TLS name, the
// certificate check and the Host header stay `<bucket>.s3.test`. Path style is tested as well.
//
// Every tool's configuration lives in a temp dir (HOME too), never the user's home. A missing
// tool fails these tests: CI installs them (`apt-get install -y awscli s3cmd rclone`).

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import {
  makeTestCerts,
  startTestGateway,
  TEST_DOMAIN,
  testCredential,
  type TestCerts,
  type TestGateway,
} from "../helpers/gateway-harness.js";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const USER = testCredential("clients-user");
const TOOL_TIMEOUT_MS = 120_000;
const MIB = 1024 * 1024;

/** The outcome of one tool run. */
interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program with a clean environment (no AWS_* or RCLONE_* from the caller). */
function runTool(
  file: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<ToolResult> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...env },
        timeout: TOOL_TIMEOUT_MS,
        maxBuffer: 64 * MIB,
        encoding: "latin1",
      },
      (err, stdout, stderr) => {
        const code =
          err === null
            ? 0
            : typeof err.code === "number"
              ? err.code
              : err.code === "ENOENT"
                ? 127
                : 1;
        done({ code, stdout, stderr: err !== null && code === 127 ? String(err) : stderr });
      },
    );
  });
}

/** Runs a program and fails the test with its output unless it exits 0. */
async function mustRun(
  file: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<string> {
  const r = await runTool(file, args, env);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  }
  return r.stdout;
}

function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 131 + seed * 17 + (i >> 11)) & 0xff;
  return buf;
}

function md5(data: Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** What a direct GET on a backend finds under a key. */
interface Found {
  readonly md5: string;
  readonly size: number;
  readonly etag: string;
}

/** GETs a key directly on a backend (streamed into a hash); undefined when it is absent. */
async function findDirect(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<Found | undefined> {
  const res = await client.request({ method: "GET", bucket, key, okStatuses: [404] });
  if (res.status === 404) {
    res.body.resume();
    return undefined;
  }
  const hash = createHash("md5");
  let size = 0;
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { md5: hash.digest("hex"), size, etag: (res.headers.etag ?? "").replace(/"/g, "") };
}

/**
 * A loopback HTTP CONNECT proxy that tunnels every `host:port` to the gateway and records the
 * names it was asked for (proof that the client addressed `<bucket>.<domain>`).
 */
async function startConnectProxy(gatewayPort: number): Promise<{
  readonly port: number;
  readonly hosts: string[];
  close(): Promise<void>;
}> {
  const hosts: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 16 * 1024) client.destroy();
        return;
      }
      client.off("data", onData);
      const line = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      const m = /^CONNECT (\S+) HTTP\/1\.[01]$/.exec(line);
      if (m === null) {
        client.end("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
        return;
      }
      hosts.push(m[1] ?? "");
      const upstream = createConnection({ host: "127.0.0.1", port: gatewayPort }, () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      sockets.add(upstream);
      upstream.on("close", () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => upstream.destroy());
      client.on("close", () => upstream.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr !== null ? addr.port : 0,
    hosts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("Debian S3 clients through the gateway (target MinIO, source versitygw)", () => {
  const target = (): RigServer => rig.minio;
  const source = (): RigServer => rig.versitygw;
  const run = randomBytes(4).toString("hex");
  let certs: TestCerts;
  let gw: TestGateway;
  let proxy: Awaited<ReturnType<typeof startConnectProxy>>;
  let dir: string;
  let direct: { target: S3Client; source: S3Client };
  /** Environments of the tools: configuration files in `dir`, HOME = `dir`. */
  let awsEnv: Record<string, string>;
  let s3cmdPath: string;
  let s3cmdVhost: string;
  let rcloneConf: string;
  let baseEnv: Record<string, string>;
  const files: Record<"small" | "empty" | "large", { path: string; data: Buffer }> = {
    small: { path: "", data: pattern(10_000, 1) },
    empty: { path: "", data: Buffer.alloc(0) },
    large: { path: "", data: pattern(20 * MIB, 2) },
  };

  beforeAll(async () => {
    certs = await makeTestCerts();
    gw = await startTestGateway({
      certs,
      target: { endpoint: target().endpoint, server: target() },
      credentials: [USER],
    });
    proxy = await startConnectProxy(gw.port);
    direct = {
      target: new S3Client({
        endpoint: target().endpoint,
        region: target().region,
        credentials: {
          accessKeyId: target().accessKeyId,
          secretAccessKey: target().secretAccessKey,
        },
      }),
      source: new S3Client({
        endpoint: source().endpoint,
        region: source().region,
        credentials: {
          accessKeyId: source().accessKeyId,
          secretAccessKey: source().secretAccessKey,
        },
      }),
    };
    dir = await mkdtemp(join(tmpdir(), "s3gw-clients-"));
    for (const [name, f] of Object.entries(files)) {
      f.path = join(dir, `${name}.bin`);
      await writeFile(f.path, f.data);
    }
    const region = target().region;
    const caPath = join(certs.dir, "ca.pem");
    baseEnv = { HOME: dir, TMPDIR: dir };

    await writeFile(
      join(dir, "aws-config"),
      [
        "[default]",
        `region = ${region}`,
        "s3 =",
        "    addressing_style = path",
        "    signature_version = s3v4",
        "",
      ].join("\n"),
    );
    await writeFile(
      join(dir, "aws-credentials"),
      `[default]\naws_access_key_id = ${USER.accessKeyId}\naws_secret_access_key = ${USER.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    awsEnv = {
      ...baseEnv,
      AWS_CONFIG_FILE: join(dir, "aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "aws-credentials"),
      AWS_CA_BUNDLE: caPath,
      AWS_EC2_METADATA_DISABLED: "true",
    };

    const s3cmdCommon = [
      "[default]",
      `access_key = ${USER.accessKeyId}`,
      `secret_key = ${USER.secretAccessKey}`,
      `bucket_location = ${region}`,
      "use_https = True",
      "check_ssl_certificate = True",
      "check_ssl_hostname = True",
      `ca_certs_file = ${caPath}`,
      "signature_v2 = False",
      "progress_meter = False",
      "guess_mime_type = False",
    ];
    s3cmdPath = join(dir, "s3cmd-path.cfg");
    await writeFile(
      s3cmdPath,
      [
        ...s3cmdCommon,
        `host_base = 127.0.0.1:${gw.port}`,
        `host_bucket = 127.0.0.1:${gw.port}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    s3cmdVhost = join(dir, "s3cmd-vhost.cfg");
    await writeFile(
      s3cmdVhost,
      [
        ...s3cmdCommon,
        `host_base = ${TEST_DOMAIN}:${gw.port}`,
        `host_bucket = %(bucket)s.${TEST_DOMAIN}:${gw.port}`,
        "proxy_host = 127.0.0.1",
        `proxy_port = ${proxy.port}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );

    rcloneConf = join(dir, "rclone.conf");
    await writeFile(
      rcloneConf,
      [
        "[gw]",
        "type = s3",
        "provider = Other",
        `access_key_id = ${USER.accessKeyId}`,
        `secret_access_key = ${USER.secretAccessKey}`,
        `endpoint = ${gw.url}`,
        `region = ${region}`,
        "force_path_style = true",
        "no_check_bucket = true",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
  });

  afterAll(async () => {
    await gw?.close();
    await proxy?.close();
    await direct?.target.close();
    await direct?.source.close();
  });

  describe.each(["ready", "forward"] as const)("in %s mode", (mode) => {
    const bucket = `gwc-${mode}-${run}`;
    const sourceBucket = `${bucket}-src`;
    let home: { client: S3Client; bucket: string };
    let other: { client: S3Client; bucket: string };

    beforeAll(async () => {
      await direct.target.request({ method: "PUT", bucket });
      await direct.source.request({ method: "PUT", bucket: sourceBucket });
      const s = source();
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
      if (mode === "forward") {
        await gw.gateway.store.update({ bucket }, { mode: "forward" }, { by: "test" });
      }
      const t = { client: direct.target, bucket };
      const src = { client: direct.source, bucket: sourceBucket };
      home = mode === "forward" ? src : t;
      other = mode === "forward" ? t : src;
    });

    /** The object is on the mode's side with these bytes, and absent on the other side. */
    async function onHomeOnly(key: string, data: Buffer): Promise<Found> {
      const found = await findDirect(home.client, home.bucket, key);
      expect(found, `${key} on the ${mode === "forward" ? "source" : "target"}`).toBeDefined();
      expect(found?.size).toBe(data.length);
      expect(found?.md5).toBe(md5(data));
      expect(await findDirect(other.client, other.bucket, key), `${key} on the other side`).toBe(
        undefined,
      );
      return found as Found;
    }

    /** The key is on neither backend. */
    async function nowhere(key: string): Promise<void> {
      expect(await findDirect(home.client, home.bucket, key), `${key} deleted`).toBe(undefined);
      expect(await findDirect(other.client, other.bucket, key)).toBe(undefined);
    }

    it("aws CLI: cp (small, empty, 20 MiB multipart), get, range, ls, copy, presign, rm, rm --recursive, delete-objects", async () => {
      const aws = (...args: string[]): Promise<string> =>
        mustRun("aws", ["--endpoint-url", gw.url, ...args], awsEnv);
      const s3url = (key: string): string => `s3://${bucket}/${key}`;

      await aws("s3", "cp", files.small.path, s3url("aws/small.bin"));
      await onHomeOnly("aws/small.bin", files.small.data);
      await aws("s3", "cp", files.empty.path, s3url("aws/empty"));
      await onHomeOnly("aws/empty", files.empty.data);
      await aws("s3", "cp", files.large.path, s3url("aws/sub/large.bin"));
      const large = await onHomeOnly("aws/sub/large.bin", files.large.data);
      // 20 MiB in the CLI's default 8 MiB parts: a three-part multipart upload.
      expect(large.etag).toMatch(/-3$/);

      const back = join(dir, `aws-${mode}-large.out`);
      await aws("s3", "cp", s3url("aws/sub/large.bin"), back);
      expect(md5(await readFile(back))).toBe(md5(files.large.data));
      const emptyBack = join(dir, `aws-${mode}-empty.out`);
      await aws("s3", "cp", s3url("aws/empty"), emptyBack);
      expect((await readFile(emptyBack)).length).toBe(0);

      const rangeOut = join(dir, `aws-${mode}-range.out`);
      const head = JSON.parse(
        await aws(
          "s3api",
          "get-object",
          "--bucket",
          bucket,
          "--key",
          "aws/small.bin",
          "--range",
          "bytes=100-199",
          rangeOut,
        ),
      ) as { ContentRange?: string; ContentLength?: number };
      expect(head.ContentRange).toBe(`bytes 100-199/${files.small.data.length}`);
      expect((await readFile(rangeOut)).equals(files.small.data.subarray(100, 200))).toBe(true);

      // Delimiter listing: the two files and the `sub/` common prefix.
      const ls = await aws("s3", "ls", s3url("aws/"));
      expect(ls).toMatch(/PRE sub\//);
      expect(ls).toMatch(/ 10000 small\.bin/);
      expect(ls).toMatch(/ 0 empty/);
      const recursive = await aws("s3", "ls", "--recursive", s3url("aws/"));
      expect(
        recursive
          .trim()
          .split("\n")
          .map((l) => l.trim().split(/\s+/).pop()),
      ).toEqual(["aws/empty", "aws/small.bin", "aws/sub/large.bin"]);
      const v2 = JSON.parse(
        await aws(
          "s3api",
          "list-objects-v2",
          "--bucket",
          bucket,
          "--prefix",
          "aws/",
          "--delimiter",
          "/",
        ),
      ) as {
        Contents?: { Key: string }[];
        CommonPrefixes?: { Prefix: string }[];
        KeyCount?: number;
      };
      expect(v2.Contents?.map((c) => c.Key)).toEqual(["aws/empty", "aws/small.bin"]);
      expect(v2.CommonPrefixes).toEqual([{ Prefix: "aws/sub/" }]);

      await aws("s3", "cp", s3url("aws/small.bin"), s3url("aws/copy.bin"));
      await onHomeOnly("aws/copy.bin", files.small.data);

      const presigned = (
        await aws("s3", "presign", s3url("aws/small.bin"), "--expires-in", "300")
      ).trim();
      expect(presigned).toContain("X-Amz-Signature=");
      const fetched = join(dir, `aws-${mode}-presigned.out`);
      await mustRun(
        "curl",
        [
          "--silent",
          "--show-error",
          "--fail",
          "--cacert",
          join(certs.dir, "ca.pem"),
          "-o",
          fetched,
          presigned,
        ],
        baseEnv,
      );
      expect((await readFile(fetched)).equals(files.small.data)).toBe(true);

      await aws("s3", "rm", s3url("aws/copy.bin"));
      await nowhere("aws/copy.bin");

      // DeleteObjects through s3api, then `s3 rm --recursive` for everything left.
      await aws("s3", "cp", files.small.path, s3url("aws/multi/a"));
      await aws("s3", "cp", files.small.path, s3url("aws/multi/b"));
      await onHomeOnly("aws/multi/a", files.small.data);
      const deleted = JSON.parse(
        await aws(
          "s3api",
          "delete-objects",
          "--bucket",
          bucket,
          "--delete",
          JSON.stringify({ Objects: [{ Key: "aws/multi/a" }, { Key: "aws/multi/b" }] }),
        ),
      ) as { Deleted?: { Key: string }[]; Errors?: unknown[] };
      expect(deleted.Deleted?.map((d) => d.Key).sort()).toEqual(["aws/multi/a", "aws/multi/b"]);
      expect(deleted.Errors ?? []).toEqual([]);
      await nowhere("aws/multi/a");
      await nowhere("aws/multi/b");

      await aws("s3", "rm", "--recursive", s3url("aws/"));
      for (const key of ["aws/small.bin", "aws/empty", "aws/sub/large.bin"]) await nowhere(key);
      expect(
        (
          await runTool(
            "aws",
            ["--endpoint-url", gw.url, "s3", "ls", "--recursive", s3url("aws/")],
            awsEnv,
          )
        ).stdout,
      ).toBe("");
    });

    for (const style of ["path", "virtual-host"] as const) {
      it(`s3cmd (${style} style): put (small, empty, 20 MiB multipart), get, ls, cp, del, del --recursive`, async () => {
        const cfg = style === "path" ? s3cmdPath : s3cmdVhost;
        const connectsBefore = proxy.hosts.length;
        const s3cmd = (...args: string[]): Promise<string> =>
          mustRun("s3cmd", ["-c", cfg, "--no-progress", ...args], baseEnv);
        const p = `s3cmd-${style}/`;
        const s3url = (key: string): string => `s3://${bucket}/${p}${key}`;

        await s3cmd("put", files.small.path, s3url("small.bin"));
        await onHomeOnly(`${p}small.bin`, files.small.data);
        await s3cmd("put", files.empty.path, s3url("empty"));
        await onHomeOnly(`${p}empty`, files.empty.data);
        await s3cmd("put", "--multipart-chunk-size-mb=5", files.large.path, s3url("sub/large.bin"));
        const large = await onHomeOnly(`${p}sub/large.bin`, files.large.data);
        expect(large.etag).toMatch(/-4$/);

        const back = join(dir, `s3cmd-${mode}-${style}-large.out`);
        await s3cmd("get", "--force", s3url("sub/large.bin"), back);
        expect(md5(await readFile(back))).toBe(md5(files.large.data));

        const ls = await s3cmd("ls", s3url(""));
        expect(ls).toMatch(new RegExp(`DIR +s3://${bucket}/${p}sub/`));
        expect(ls).toContain(s3url("small.bin"));
        const all = await s3cmd("ls", "--recursive", s3url(""));
        expect(
          all
            .trim()
            .split("\n")
            .map((l) => l.trim().split(/\s+/).pop()),
        ).toEqual([s3url("empty"), s3url("small.bin"), s3url("sub/large.bin")]);

        await s3cmd("cp", s3url("small.bin"), s3url("copy.bin"));
        await onHomeOnly(`${p}copy.bin`, files.small.data);
        await s3cmd("del", s3url("copy.bin"));
        await nowhere(`${p}copy.bin`);

        // s3cmd deletes recursively with DeleteObjects (POST ?delete).
        await s3cmd("del", "--recursive", "--force", s3url(""));
        for (const key of ["small.bin", "empty", "sub/large.bin"]) await nowhere(`${p}${key}`);

        const tunnels = proxy.hosts.slice(connectsBefore);
        if (style === "virtual-host") {
          expect(tunnels.length).toBeGreaterThan(0);
          expect(new Set(tunnels)).toEqual(new Set([`${bucket}.${TEST_DOMAIN}:${gw.port}`]));
        } else {
          expect(tunnels).toEqual([]);
        }
        const logged = gw
          .logs()
          .split("\n")
          .filter(
            (l) => l.includes('"operation":"DeleteObjects"') && l.includes(`"bucket":"${bucket}"`),
          );
        expect(logged.length).toBeGreaterThan(0);
      });
    }

    it("rclone: copy (small, empty, 20 MiB multipart), get, cat range, lsf, server-side copy, deletefile, delete", async () => {
      const rclone = (...args: string[]): Promise<string> =>
        mustRun(
          "rclone",
          [
            "--config",
            rcloneConf,
            "--ca-cert",
            join(certs.dir, "ca.pem"),
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            ...args,
          ],
          baseEnv,
        );
      const remote = (key: string): string => `gw:${bucket}/rclone/${key}`;

      await rclone("copyto", files.small.path, remote("small.bin"));
      await onHomeOnly("rclone/small.bin", files.small.data);
      await rclone("copyto", files.empty.path, remote("empty"));
      await onHomeOnly("rclone/empty", files.empty.data);
      await rclone(
        "copyto",
        "--s3-upload-cutoff",
        "5M",
        "--s3-chunk-size",
        "5M",
        files.large.path,
        remote("sub/large.bin"),
      );
      const large = await onHomeOnly("rclone/sub/large.bin", files.large.data);
      expect(large.etag).toMatch(/-4$/);

      const back = join(dir, `rclone-${mode}-large.out`);
      await rclone("copyto", remote("sub/large.bin"), back);
      expect(md5(await readFile(back))).toBe(md5(files.large.data));
      const part = await rclone("cat", "--offset", "100", "--count", "100", remote("small.bin"));
      expect(Buffer.from(part, "latin1").equals(files.small.data.subarray(100, 200))).toBe(true);

      expect((await rclone("lsf", `gw:${bucket}/rclone`)).trim().split("\n")).toEqual([
        "empty",
        "small.bin",
        "sub/",
      ]);
      expect(
        (await rclone("lsf", "-R", "--files-only", `gw:${bucket}/rclone`)).trim().split("\n"),
      ).toEqual(["empty", "small.bin", "sub/large.bin"]);

      await rclone("copyto", remote("small.bin"), remote("copy.bin"));
      await onHomeOnly("rclone/copy.bin", files.small.data);
      await rclone("deletefile", remote("copy.bin"));
      await nowhere("rclone/copy.bin");

      await rclone("delete", `gw:${bucket}/rclone`);
      for (const key of ["small.bin", "empty", "sub/large.bin"]) await nowhere(`rclone/${key}`);
    });
  });
});
