// The admin API and `s3gw bucket migrate` end to end: `s3gw serve` runs as a child process with
// its target on the rig's MinIO; the CLI (also a child process) attaches buckets whose source
// is the rig's versitygw, directly over HTTP and through a TLS terminator with a generated CA.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RigServer } from "../rig/types.js";

const rig = inject("rig");
const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "cli/s3gw.ts");

const ADMIN_KEY = "gw-admin";
const ADMIN_SECRET = `admin-secret-${randomBytes(8).toString("hex")}`;
const USER_KEY = "gw-user";
const USER_SECRET = `user-secret-${randomBytes(8).toString("hex")}`;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function s3(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

function name(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** Runs the s3gw CLI from source; never throws on a non-zero exit. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CLI, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** A running `s3gw serve` child and everything it printed. */
interface Gateway {
  child: ChildProcess;
  adminUrl: string;
  output: () => string;
}

async function startGatewayProcess(configPath: string): Promise<Gateway> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--config", configPath], {
    cwd: ROOT,
    env: { ...process.env, TEST_ADMIN_SECRET: ADMIN_SECRET },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const adminUrl = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`gateway did not start:\n${out}`)), 30_000);
    const check = (): void => {
      for (const line of out.split("\n")) {
        if (!line.includes("admin API listening")) continue;
        clearTimeout(timer);
        done((JSON.parse(line) as { url: string }).url);
        return;
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`gateway exited ${code}:\n${out}`));
    });
  });
  return { child, adminUrl, output: () => out };
}

async function stopGatewayProcess(gw: Gateway): Promise<number | null> {
  if (gw.child.exitCode !== null) return gw.child.exitCode;
  const exited = new Promise<number | null>((done) => gw.child.once("exit", (code) => done(code)));
  gw.child.kill("SIGTERM");
  return exited;
}

/** A TLS terminator in front of a plain-HTTP rig server: an https source with our own CA. */
async function tlsFront(
  backend: RigServer,
  cert: string,
  key: string,
): Promise<{ url: string; server: TlsServer }> {
  const target = new URL(backend.endpoint);
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert, key }, (clear) => {
    const up = connect({ host: target.hostname, port: Number(target.port) });
    sockets.add(up);
    clear.pipe(up).pipe(clear);
    const end = (): void => {
      clear.destroy();
      up.destroy();
    };
    clear.on("error", end);
    up.on("error", end);
    clear.on("close", end);
  });
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return { url: `https://localhost:${port}`, server };
}

async function makeCerts(out: string): Promise<void> {
  await new Promise<void>((done, fail) =>
    execFile("bash", [join(ROOT, "certs/make-local-certs.sh"), "--out", out], (err) =>
      err ? fail(err) : done(),
    ),
  );
}

describe("s3gw admin API and bucket migrate CLI", () => {
  const dir = { path: "" };
  const files = { config: "", state: "", goodCa: "", badCa: "" };
  let gw: Gateway;
  let front: { url: string; server: TlsServer };
  let env: Record<string, string>;
  const buckets = {
    plain: name("gw-plain"),
    tls: name("gw-tls"),
    missingOnTarget: name("gw-none"),
    renamed: name("gw-src"),
  };

  beforeAll(async () => {
    dir.path = await mkdtemp(join(tmpdir(), "s3gw-admin-it-"));
    await makeCerts(join(dir.path, "good"));
    await makeCerts(join(dir.path, "bad"));
    files.goodCa = join(dir.path, "good/ca.pem");
    files.badCa = join(dir.path, "bad/ca.pem");
    front = await tlsFront(
      rig.versitygw,
      await readFile(join(dir.path, "good/server.pem"), "utf8"),
      await readFile(join(dir.path, "good/server-key.pem"), "utf8"),
    );

    const target = s3(rig.minio);
    const source = s3(rig.versitygw);
    for (const b of [buckets.plain, buckets.tls]) {
      await target.send(new CreateBucketCommand({ Bucket: b }));
      await source.send(new CreateBucketCommand({ Bucket: b }));
    }
    await source.send(new CreateBucketCommand({ Bucket: buckets.missingOnTarget }));
    await source.send(new CreateBucketCommand({ Bucket: buckets.renamed }));

    files.state = join(dir.path, "state", "migrations.db");
    files.config = join(dir.path, "gateway.yaml");
    await writeFile(
      files.config,
      [
        "listen: 127.0.0.1:0",
        "admin:",
        "  listen: 127.0.0.1:0",
        `region: ${rig.minio.region}`,
        "target:",
        `  endpoint: ${rig.minio.endpoint}`,
        `  accessKey: ${rig.minio.accessKeyId}`,
        `  secretKey: ${rig.minio.secretAccessKey}`,
        `  region: ${rig.minio.region}`,
        "credentials:",
        `  - { accessKey: ${ADMIN_KEY}, secretKey: "\${TEST_ADMIN_SECRET}", role: admin }`,
        `  - { accessKey: ${USER_KEY}, secretKey: ${USER_SECRET} }`,
        "state:",
        `  path: ${files.state}`,
        "",
      ].join("\n"),
    );
    gw = await startGatewayProcess(files.config);
    env = {
      S3GW_ADMIN_URL: gw.adminUrl,
      S3GW_ACCESS_KEY: ADMIN_KEY,
      S3GW_SECRET_KEY: ADMIN_SECRET,
      S3GW_REGION: rig.minio.region,
    };
  });

  afterAll(async () => {
    if (gw) await stopGatewayProcess(gw);
    front?.server.close();
  });

  const src = (): string[] => [
    "--s3-key",
    rig.versitygw.accessKeyId,
    "--s3-secret",
    rig.versitygw.secretAccessKey,
    "--source-region",
    rig.versitygw.region,
  ];

  async function listJson(): Promise<{ bucket: string; mode: string }[]> {
    const r = await cli(["bucket", "migrate", "list", "--json"], env);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { buckets: { bucket: string; mode: string }[] }).buckets;
  }

  function expectOneLineFailure(r: CliResult, pattern: RegExp): void {
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toContain(rig.versitygw.secretAccessKey);
  }

  it("attach failures save nothing", async () => {
    const attach = (
      bucket: string,
      url: string,
      cert: string,
      extra: string[] = [],
    ): Promise<CliResult> =>
      cli(["bucket", "migrate", "attach", bucket, url, cert, ...src(), ...extra], env);

    expectOneLineFailure(
      await attach(buckets.missingOnTarget, rig.versitygw.endpoint, "system"),
      /TargetBucketNotFound: target bucket gw-none-\w+ does not exist/,
    );
    expectOneLineFailure(
      await attach(buckets.plain, rig.versitygw.endpoint, "system", [
        "--source",
        "no-such-source-bucket",
      ]),
      /SourceBucketNotFound: source bucket no-such-source-bucket does not exist/,
    );
    expectOneLineFailure(
      await cli(
        [
          "bucket",
          "migrate",
          "attach",
          buckets.plain,
          rig.versitygw.endpoint,
          "system",
          "--s3-key",
          rig.versitygw.accessKeyId,
          "--s3-secret",
          "wrong-secret-123",
          "--source-region",
          rig.versitygw.region,
        ],
        env,
      ),
      /SourceAccessDenied: the source credential cannot list bucket/,
    );
    expectOneLineFailure(
      await attach(buckets.tls, front.url, files.badCa),
      /SourceTlsError: source certificate not trusted/,
    );
    expectOneLineFailure(await attach(buckets.tls, front.url, "system"), /SourceTlsError/);
    expectOneLineFailure(
      await attach(buckets.plain, "http://127.0.0.1:1", "system"),
      /SourceUnreachable: source endpoint unreachable \(connect\)/,
    );

    expect(await listJson()).toEqual([]);
    // Nothing was ever written: the state is still at version 0.
    const status = await cli(["bucket", "migrate", "list", "--json"], env);
    expect((JSON.parse(status.stdout) as { version: number }).version).toBe(0);
  });

  it("refuses credentials that are not admin, and unknown or wrong keys", async () => {
    expectOneLineFailure(
      await cli(["bucket", "migrate", "list"], {
        ...env,
        S3GW_ACCESS_KEY: USER_KEY,
        S3GW_SECRET_KEY: USER_SECRET,
      }),
      /AccessDenied: the admin API needs a credential with role admin/,
    );
    expectOneLineFailure(
      await cli(["bucket", "migrate", "list"], { ...env, S3GW_SECRET_KEY: "not-the-secret" }),
      /SignatureDoesNotMatch/,
    );
    expectOneLineFailure(
      await cli(["bucket", "migrate", "list"], { ...env, S3GW_ACCESS_KEY: "nobody" }),
      /InvalidAccessKeyId/,
    );
  });

  it("attaches over http and over https with the right CA, and moves through the modes", async () => {
    const a = await cli(
      [
        "bucket",
        "migrate",
        "attach",
        buckets.plain,
        rig.versitygw.endpoint,
        "system",
        ...src(),
        "--json",
      ],
      env,
    );
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({
      bucket: { bucket: buckets.plain, mode: "ready", sourceUrl: rig.versitygw.endpoint },
    });

    const t = await cli(
      [
        "bucket",
        "migrate",
        "attach",
        buckets.tls,
        front.url,
        files.goodCa,
        ...src(),
        "--source",
        buckets.renamed,
      ],
      env,
    );
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/source ca: +pem CN=s3gw local CA.* sha256:/);
    expect(t.stdout).toContain(`source bucket:  ${buckets.renamed}`);
    expect(await stat(files.state).then((s) => s.mode & 0o777)).toBe(0o600);

    const again = await cli(
      ["bucket", "migrate", "attach", buckets.plain, rig.versitygw.endpoint, "system", ...src()],
      env,
    );
    expectOneLineFailure(again, /AlreadyAttached/);

    const update = (...args: string[]): Promise<CliResult> =>
      cli(["bucket", "migrate", "update", ...args], env);
    expectOneLineFailure(
      await update("--bucket", buckets.plain, "--mode", "migrate", "--yes"),
      /TransitionRefused: .*migrate-only-from-forward/,
    );
    expect((await update("--bucket", buckets.plain, "--mode", "forward")).code).toBe(0);
    expectOneLineFailure(
      await cli(["bucket", "migrate", "detach", buckets.plain], env),
      /detach-only-from-ready-or-migrate/,
    );
    // Without a terminal and without --yes, forward → migrate is refused before any request.
    expectOneLineFailure(
      await update("--bucket", buckets.plain, "--mode", "migrate"),
      /point of no return.*--yes/,
    );
    expect((await listJson()).find((s) => s.bucket === buckets.plain)?.mode).toBe("forward");
    // Rollback forward → ready, then forward again and on to migrate with --yes.
    expect((await update("--bucket", buckets.plain, "--mode", "ready")).code).toBe(0);
    expect((await update("--bucket", buckets.plain, "--mode", "forward")).code).toBe(0);
    const m = await update("--bucket", buckets.plain, "--mode", "migrate", "--yes", "--json");
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({
      buckets: [{ bucket: buckets.plain, mode: "migrate" }],
    });
    expectOneLineFailure(
      await update("--bucket", buckets.plain, "--mode", "forward"),
      /migrate-is-irreversible/,
    );
    expectOneLineFailure(
      await update("--bucket", buckets.plain, "--mode", "ready"),
      /migrate-to-ready-needs-force/,
    );
    // --all is all or nothing: the tls bucket is in ready, so --all → forward moves it only
    // (plain, in migrate, would refuse), hence refused as a whole.
    expectOneLineFailure(await update("--all", "--mode", "forward"), /migrate-is-irreversible/);
    expect((await listJson()).map((s) => s.mode).sort()).toEqual(["migrate", "ready"]);
    // Selecting by URL changes only the buckets of that source.
    const byUrl = await update("--url", front.url, "--mode", "forward", "--json");
    expect(byUrl.code, byUrl.stderr).toBe(0);
    expect(
      (JSON.parse(byUrl.stdout) as { buckets: { bucket: string }[] }).buckets.map((s) => s.bucket),
    ).toEqual([buckets.tls]);
  });

  it("state survives a gateway restart, and show/list never print secrets", async () => {
    const before = await listJson();
    expect(before.length).toBe(2);
    expect(await stopGatewayProcess(gw)).toBe(0);
    gw = await startGatewayProcess(files.config);
    env.S3GW_ADMIN_URL = gw.adminUrl;
    expect(await listJson()).toEqual(before);

    const secrets = [rig.versitygw.secretAccessKey, ADMIN_SECRET, rig.minio.secretAccessKey];
    for (const args of [
      ["list"],
      ["list", "--json"],
      ["show", buckets.plain],
      ["show", buckets.plain, "--json"],
    ]) {
      const r = await cli(["bucket", "migrate", ...args], env);
      expect(r.code, r.stderr).toBe(0);
      for (const s of secrets) expect(r.stdout).not.toContain(s);
      if (args.includes("--json")) expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
    }
    const table = await cli(["bucket", "migrate", "list"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^BUCKET +MODE +SOURCE URL +SOURCE BUCKET/);
    const show = await cli(["bucket", "migrate", "show", buckets.plain, "--json"], env);
    const history = (
      JSON.parse(show.stdout) as { bucket: { history: { from: string; to: string; by: string }[] } }
    ).bucket.history;
    expect(history.map((h) => `${h.from}>${h.to}`)).toEqual([
      "detached>ready",
      "ready>forward",
      "forward>ready",
      "ready>forward",
      "forward>migrate",
    ]);
    expect(history.every((h) => h.by === ADMIN_KEY)).toBe(true);
    // The gateway's own log never carries a secret either.
    for (const s of secrets) expect(gw.output()).not.toContain(s);
    // The state database does hold the source secret (it must, to re-sign), hence 0600; the
    // latest pages may still be in its write-ahead log.
    const stored = await Promise.all(
      [files.state, `${files.state}-wal`].map((f) => readFile(f, "latin1").catch(() => "")),
    );
    expect(stored.join("")).toContain(rig.versitygw.secretAccessKey);
  });

  it("migrate → ready needs --force, then detach makes a plain bucket", async () => {
    const forced = await cli(
      ["bucket", "migrate", "update", "--bucket", buckets.plain, "--mode", "ready", "--force"],
      env,
    );
    expect(forced.code, forced.stderr).toBe(0);
    const d = await cli(["bucket", "migrate", "detach", buckets.plain], env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout.trim()).toBe(`detached ${buckets.plain} (was ready)`);
    expectOneLineFailure(
      await cli(["bucket", "migrate", "show", buckets.plain], env),
      /NotAttached/,
    );
  });

  it("an invalid config is one line and a non-zero exit before anything listens", async () => {
    const bad = join(dir.path, "bad.yaml");
    await writeFile(
      bad,
      (await readFile(files.config, "utf8")).replace("role: admin", "role: root"),
    );
    const r = await cli(["serve", "--config", bad], { TEST_ADMIN_SECRET: ADMIN_SECRET });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "s3gw: config: credentials[0].role must be one of user, migrator, admin",
    );
    expect(process.env.TEST_ADMIN_SECRET).toBeUndefined();
    const missingEnv = await cli(["serve", "--config", files.config]);
    expect(missingEnv.code).toBe(2);
    expect(missingEnv.stderr.trim()).toBe(
      "s3gw: config: credentials[0].secretKey uses environment variable TEST_ADMIN_SECRET, which is not set",
    );
  });
});
