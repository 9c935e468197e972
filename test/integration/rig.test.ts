// The test rig itself (test/rig/, docs/test-rig.md): the servers the global setup provides
// are real S3 servers that store what a real client sends; versitygw shows objects as plain
// files; no server outlives the process that started it; a port race is retried.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstat, mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, inject, it } from "vitest";
import { freePort, repoRoot, type RunningServer, startServer } from "../rig/servers.js";
import type { RigServer } from "../rig/types.js";
import type { ChildServer } from "../rig/watchdog-child.js";

const rig = inject("rig");

function clientFor(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

function uniqueBucket(): string {
  return `rig-${randomBytes(6).toString("hex")}`;
}

/** Polls `check` every 100 ms until it is true; fails after `timeoutMs`. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** True when nothing accepts TCP connections on 127.0.0.1:port. */
function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

async function gone(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch {
    return true;
  }
}

/** Starts test/rig/watchdog-child.ts with the given servers and reads what it started. */
async function startChild(kinds: readonly string[]) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join("test", "rig", "watchdog-child.ts"), ...kinds],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? code)),
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let stdout = "";
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const end = stdout.indexOf("\n");
      if (end >= 0) resolve(stdout.slice(0, end));
    });
    void exited.then((status) => reject(new Error(`child exited (${status}): ${stderr}`)));
  });
  const servers = JSON.parse(line) as ChildServer[];
  return { child, exited, servers };
}

describe("the rig's servers", () => {
  for (const name of ["minio", "minio2", "versitygw"] as const) {
    it(`${name} stores and returns an object for @aws-sdk/client-s3`, async () => {
      const server = rig[name];
      const s3 = clientFor(server);
      const bucket = uniqueBucket();
      const body = randomBytes(100_000);
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b.bin", Body: body }));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.bin" }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
      expect(got.ContentLength).toBe(body.length);
      s3.destroy();
    });
  }

  it("versitygw stores each object as a plain file under <dataDir>/<bucket>/<key>", async () => {
    const server = rig.versitygw;
    const s3 = clientFor(server);
    const bucket = uniqueBucket();
    const key = "dir/sub dir/object.txt";
    const body = Buffer.from("the POSIX view s3find walks\n");
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    s3.destroy();

    const file = join(server.dataDir, bucket, ...key.split("/"));
    const info = await lstat(file);
    expect(info.isFile()).toBe(true);
    expect(info.size).toBe(body.length);
    expect((await readFile(file)).equals(body)).toBe(true);
    expect((await lstat(join(server.dataDir, bucket, "dir"))).isDirectory()).toBe(true);
  });

  it("gives each server its own data dir and credentials", () => {
    const servers = [rig.minio, rig.minio2, rig.versitygw];
    expect(new Set(servers.map((s) => s.endpoint)).size).toBe(3);
    expect(new Set(servers.map((s) => s.dataDir)).size).toBe(3);
    expect(new Set(servers.map((s) => s.accessKeyId)).size).toBe(3);
    for (const s of servers) expect(s.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe("no orphans", () => {
  it("the watchdog kills the servers and removes their dirs when their parent is SIGKILLed", async () => {
    const { child, exited, servers } = await startChild(["minio", "versitygw"]);
    expect(servers.map((s) => s.kind)).toEqual(["minio", "versitygw"]);
    for (const s of servers) expect(await portClosed(s.port)).toBe(false);

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    for (const s of servers) {
      await waitFor(`${s.kind} port ${s.port} to close`, 30_000, () => portClosed(s.port));
      await waitFor(`${s.kind} dir ${s.rootDir} to go`, 30_000, () => gone(s.rootDir));
    }
  });

  it("a SIGTERM stops the servers and still kills the process that had no handler of its own", async () => {
    const { child, exited, servers } = await startChild(["versitygw"]);
    child.kill("SIGTERM");
    expect(await exited).toBe("SIGTERM");
    for (const s of servers) {
      await waitFor(`${s.kind} port ${s.port} to close`, 30_000, () => portClosed(s.port));
    }
  });

  it("stop() ends the server, frees its port and removes its temp dir", async () => {
    const server = await startServer("versitygw");
    expect(await portClosed(server.port)).toBe(false);
    await server.stop();
    expect(await portClosed(server.port)).toBe(true);
    expect(await gone(server.rootDir)).toBe(true);
    await server.stop(); // idempotent
  });
});

describe("startup", () => {
  async function listenOnFreePort(): Promise<{ blocker: Server; port: number }> {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const address = blocker.address();
    if (address === null || typeof address !== "object") throw new Error("no address");
    return { blocker, port: address.port };
  }

  for (const kind of ["minio", "versitygw"] as const) {
    it(`${kind}: a port taken before the server binds it is retried with another`, async () => {
      const { blocker, port: busy } = await listenOnFreePort();
      let calls = 0;
      let server: RunningServer | undefined;
      try {
        server = await startServer(kind, {
          pickPort: () => (calls++ === 0 ? Promise.resolve(busy) : freePort()),
        });
        expect(server.port).not.toBe(busy);
        const s3 = clientFor(server);
        await s3.send(new ListBucketsCommand({}));
        s3.destroy();
      } finally {
        await server?.stop();
        blocker.close();
      }
    });
  }

  it("fails with the server's log and command when it cannot start, and leaves nothing behind", async () => {
    const { blocker, port: busy } = await listenOnFreePort();
    const tmpRoot = await mkdtemp(join(tmpdir(), "rig-test-"));
    try {
      const error = await startServer("versitygw", {
        tmpRoot,
        pickPort: () => Promise.resolve(busy),
      }).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(error?.message).toMatch(/versitygw failed to start/);
      expect(error?.message).toContain(`--port 127.0.0.1:${busy}`);
      expect(error?.message).toMatch(/address already in use/);
      // Credentials travel in the environment: no 40-hex-digit secret in the message.
      expect(error?.message).not.toMatch(/[0-9a-f]{40}/);
      expect(await readdir(tmpRoot)).toEqual([]);
    } finally {
      blocker.close();
      await rm(tmpRoot, { recursive: true, force: true });
    }
  });

  it("tells to run npm run servers when a binary is missing", async () => {
    const binDir = await mkdtemp(join(tmpdir(), "rig-nobin-"));
    try {
      await expect(startServer("minio", { binDir })).rejects.toThrow(/run npm run servers/);
    } finally {
      await rm(binDir, { recursive: true, force: true });
    }
  });
});
