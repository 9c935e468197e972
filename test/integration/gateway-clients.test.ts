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
// Every tool's configuration lives in a temp dir (HOME too), never the user's home
// (test/helpers/cli-clients.ts). A missing tool fails these tests: CI installs them
// (`apt-get install -y awscli s3cmd rclone`).

import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Client } from "../../s3/client.js";
import { run, runTool, writeCliClients, type CliClients } from "../helpers/cli-clients.js";
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
const MIB = 1024 * 1024;

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
  const runId = randomBytes(4).toString("hex");
  let certs: TestCerts;
  let gw: TestGateway;
  let proxy: Awaited<ReturnType<typeof startConnectProxy>>;
  let dir: string;
  let direct: { target: S3Client; source: S3Client };
  /** The tools' configuration files and environments (HOME = `dir`). */
  let clients: CliClients;
  let s3cmdVhost: string;
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
    clients = await writeCliClients({
      gw,
      certs,
      credential: USER,
      region: target().region,
      dirPrefix: "s3gw-clients-",
      encoding: "latin1",
    });
    dir = clients.dir;
    for (const [name, f] of Object.entries(files)) {
      f.path = join(dir, `${name}.bin`);
      await writeFile(f.path, f.data);
    }
    s3cmdVhost = await clients.s3cmdConfig("s3cmd-vhost.cfg", {
      hostBase: `${TEST_DOMAIN}:${gw.port}`,
      hostBucket: `%(bucket)s.${TEST_DOMAIN}:${gw.port}`,
      extra: ["proxy_host = 127.0.0.1", `proxy_port = ${proxy.port}`],
    });
  });

  afterAll(async () => {
    await gw?.close();
    await proxy?.close();
    await direct?.target.close();
    await direct?.source.close();
  });

  describe.each(["ready", "forward"] as const)("in %s mode", (mode) => {
    const bucket = `gwc-${mode}-${runId}`;
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
      const aws = clients.aws;
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
      await run(
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
        clients.env,
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
            clients.awsEnv,
          )
        ).stdout,
      ).toBe("");
    });

    for (const style of ["path", "virtual-host"] as const) {
      it(`s3cmd (${style} style): put (small, empty, 20 MiB multipart), get, ls, cp, del, del --recursive`, async () => {
        const cfg = style === "path" ? clients.s3cmdConf : s3cmdVhost;
        const connectsBefore = proxy.hosts.length;
        const s3cmd = (...args: string[]): Promise<string> =>
          run("s3cmd", ["-c", cfg, "--no-progress", ...args], clients.env, { encoding: "latin1" });
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
      const rclone = clients.rclone;
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
