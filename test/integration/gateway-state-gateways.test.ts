// Several gateways sharing one state store (issue 12), with real processes: two `s3gw serve`
// children on one PostgreSQL (the rig's throwaway cluster), then two on one SQLite file. A mode
// change made through one gateway's admin API is in force on both before the command returns;
// show/list report the live gateways and the version each applied; cutting the store off
// makes both answer 503 for an attached bucket (a detached one keeps working) within their
// lease, and they recover by themselves with nothing lost; a gateway killed with SIGKILL drops
// out of the live set and holds up a change for at most its lease.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RigServer } from "../rig/types.js";
import { startPostgres, type RigPostgres } from "../rig/postgres.js";

const rig = inject("rig");
const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "cli/s3gw.ts");
const ADMIN_KEY = "gw-admin";
const ADMIN_SECRET = `admin-secret-${randomBytes(8).toString("hex")}`;
const USER_KEY = "gw-user";
const USER_SECRET = `user-secret-${randomBytes(8).toString("hex")}`;
// Short for the test, yet above an fsync stall of a busy shared CI machine.
const LEASE_SECONDS = 3;

function direct(server: RigServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
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

interface Gateway {
  id: string;
  child: ChildProcess;
  adminUrl: string;
  s3: S3Client;
  output: () => string;
}

async function startGateway(
  id: string,
  configPath: string,
  env: Record<string, string>,
): Promise<Gateway> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--config", configPath], {
    cwd: ROOT,
    env: { ...process.env, ...env, TEST_ADMIN_SECRET: ADMIN_SECRET },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const urls = await new Promise<{ admin: string; s3: string }>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`gateway ${id} did not start:\n${out}`)), 30_000);
    const check = (): void => {
      let admin: string | undefined;
      let s3: string | undefined;
      for (const line of out.split("\n")) {
        if (line.includes("admin API listening")) admin = (JSON.parse(line) as { url: string }).url;
        if (line.includes("S3 endpoint listening")) s3 = (JSON.parse(line) as { url: string }).url;
      }
      if (admin && s3) {
        clearTimeout(timer);
        done({ admin, s3 });
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`gateway ${id} exited ${code}:\n${out}`));
    });
  });
  const s3 = new S3Client({
    endpoint: urls.s3,
    region: rig.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: USER_KEY, secretAccessKey: USER_SECRET },
    maxAttempts: 1,
  });
  return { id, child, adminUrl: urls.admin, s3, output: () => out };
}

async function stop(gw: Gateway, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  gw.s3.destroy();
  if (gw.child.exitCode !== null || gw.child.signalCode !== null) return;
  const exited = new Promise<void>((done) => gw.child.once("exit", () => done()));
  gw.child.kill(signal);
  await exited;
}

/** GET `key` through a gateway: the body, or the HTTP status of the error. */
async function fetchVia(gw: Gateway, bucket: string, key: string): Promise<string | number> {
  try {
    const r = await gw.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await (r.Body as { transformToString(): Promise<string> }).transformToString();
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

async function until(check: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`condition not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

interface Setup {
  name: string;
  /** The `state:` lines (indented) for gateway `id`. */
  state(id: string): Promise<string[]>;
  env: () => Record<string, string>;
  /** Makes the store unreachable; returns how to bring it back. */
  cutStore(): Promise<() => Promise<void>>;
}

let pg: RigPostgres;
let pgUrl = "";
let sqlitePath = "";

const setups: Setup[] = [
  {
    name: "two gateways on one PostgreSQL",
    state: async (id) => [
      `  url: ${pgUrl}`,
      '  password: "${TEST_PG_PASSWORD}"',
      `  gatewayId: ${id}`,
      `  leaseSeconds: ${LEASE_SECONDS}`,
      "  pollSeconds: 0.25",
      "  confirmSeconds: 10",
    ],
    env: () => ({ TEST_PG_PASSWORD: pg.password }),
    cutStore: async () => {
      await pg.stop();
      return () => pg.start();
    },
  },
  {
    name: "two gateway processes on one SQLite file",
    state: async (id) => [
      `  path: ${sqlitePath}`,
      `  gatewayId: ${id}`,
      `  leaseSeconds: ${LEASE_SECONDS}`,
      "  pollSeconds: 0.25",
      "  confirmSeconds: 10",
    ],
    env: () => ({}),
    cutStore: async () => {
      // Another process holding SQLite's write lock: no heartbeat can be written.
      const blocker = new Database(sqlitePath, { timeout: 10_000 });
      blocker.exec("BEGIN EXCLUSIVE");
      return async () => {
        blocker.exec("COMMIT");
        blocker.close();
      };
    },
  },
];

beforeAll(async () => {
  pg = await startPostgres();
  pgUrl = await pg.createDatabase("gateways");
  sqlitePath = join(await mkdtemp(join(tmpdir(), "s3gw-gateways-")), "state.db");
});
afterAll(async () => {
  await pg?.close();
});

describe.each(setups)("$name", (setup) => {
  const attached = `gw-shared-${randomBytes(4).toString("hex")}`;
  const detached = `gw-plain-${randomBytes(4).toString("hex")}`;
  let a: Gateway;
  let b: Gateway;
  let env: Record<string, string>;
  let dir: string;

  async function configFor(id: string): Promise<string> {
    const path = join(dir, `${id}.yaml`);
    await writeFile(
      path,
      [
        "listen: 127.0.0.1:0",
        "admin: { listen: 127.0.0.1:0 }",
        `region: ${rig.minio.region}`,
        `target: { endpoint: "${rig.minio.endpoint}", accessKey: ${rig.minio.accessKeyId}, secretKey: "${rig.minio.secretAccessKey}", region: ${rig.minio.region} }`,
        "credentials:",
        `  - { accessKey: ${ADMIN_KEY}, secretKey: "\${TEST_ADMIN_SECRET}", role: admin }`,
        `  - { accessKey: ${USER_KEY}, secretKey: ${USER_SECRET} }`,
        "state:",
        ...(await setup.state(id)),
        "",
      ].join("\n"),
    );
    return path;
  }

  const admin = (gw: Gateway): Record<string, string> => ({
    S3GW_ADMIN_URL: gw.adminUrl,
    S3GW_ACCESS_KEY: ADMIN_KEY,
    S3GW_SECRET_KEY: ADMIN_SECRET,
    S3GW_REGION: rig.minio.region,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "s3gw-gateways-it-"));
    env = setup.env();
    const target = direct(rig.minio);
    const source = direct(rig.versitygw);
    for (const [client, b, body] of [
      [target, attached, "target"],
      [source, attached, "source"],
      [target, detached, "target"],
    ] as const) {
      await client.send(new CreateBucketCommand({ Bucket: b }));
      await client.send(new PutObjectCommand({ Bucket: b, Key: "which", Body: body }));
    }
    a = await startGateway("gw-a", await configFor("gw-a"), env);
    b = await startGateway("gw-b", await configFor("gw-b"), env);
  });
  afterAll(async () => {
    for (const gw of [a, b]) if (gw) await stop(gw);
  });

  it("a mode change through one gateway is in force on both when the command returns", async () => {
    const attach = await cli(
      [
        "bucket",
        "migrate",
        "attach",
        attached,
        rig.versitygw.endpoint,
        "system",
        "--s3-key",
        rig.versitygw.accessKeyId,
        "--s3-secret",
        rig.versitygw.secretAccessKey,
      ],
      admin(a),
    );
    expect(attach.code, attach.stderr).toBe(0);
    expect(await fetchVia(a, attached, "which")).toBe("target");
    expect(await fetchVia(b, attached, "which")).toBe("target");

    for (const [via, mode, expected] of [
      [b, "forward", "source"],
      [a, "ready", "target"],
      [a, "forward", "source"],
    ] as const) {
      const r = await cli(
        ["bucket", "migrate", "update", "--bucket", attached, "--mode", mode],
        admin(via),
      );
      expect(r.code, r.stderr).toBe(0);
      // Right after the acknowledgement, both route by the new mode.
      expect(await fetchVia(a, attached, "which")).toBe(expected);
      expect(await fetchVia(b, attached, "which")).toBe(expected);
    }

    const list = await cli(["bucket", "migrate", "list", "--json"], admin(b));
    expect(list.code, list.stderr).toBe(0);
    const status = JSON.parse(list.stdout) as {
      version: number;
      gateways: { id: string; appliedVersion: number }[];
    };
    expect(status.gateways.map((g) => g.id)).toEqual(["gw-a", "gw-b"]);
    expect(status.gateways.every((g) => g.appliedVersion === status.version)).toBe(true);
    const table = await cli(["bucket", "migrate", "show", attached], admin(a));
    expect(table.stdout).toMatch(/GATEWAY +APPLIED VERSION +LAST SEEN/);
    expect(table.stdout).toMatch(new RegExp(`gw-a +${status.version} `));
    expect(table.stdout).toMatch(new RegExp(`gw-b +${status.version} `));
  });

  it("a store cut off: 503 for the attached bucket within the lease, then recovery with nothing lost", async () => {
    const before = await cli(["bucket", "migrate", "list", "--json"], admin(a));
    const restore = await setup.cutStore();
    let elapsed: number;
    try {
      elapsed = await until(
        async () =>
          (await fetchVia(a, attached, "which")) === 503 &&
          (await fetchVia(b, attached, "which")) === 503,
        LEASE_SECONDS * 1000 + 8_000,
      );
      // A detached bucket does not depend on the state: it keeps working.
      expect(await fetchVia(a, detached, "which")).toBe("target");
      expect(await fetchVia(b, detached, "which")).toBe("target");
    } finally {
      await restore();
    }
    expect(elapsed).toBeLessThan(LEASE_SECONDS * 1000 + 8_000);
    await until(
      async () =>
        (await fetchVia(a, attached, "which")) === "source" &&
        (await fetchVia(b, attached, "which")) === "source",
      30_000,
    );
    const after = await cli(["bucket", "migrate", "list", "--json"], admin(b));
    const buckets = (r: CliResult): unknown =>
      (JSON.parse(r.stdout) as { buckets: unknown }).buckets;
    expect(buckets(after)).toEqual(buckets(before));
    expect(a.output()).toContain("attached buckets answer 503");
    expect(a.output()).toContain("state store reachable again");
  });

  it("a gateway killed with SIGKILL drops out after its lease and does not hold up a change", async () => {
    await stop(b, "SIGKILL");
    const started = Date.now();
    const r = await cli(
      ["bucket", "migrate", "update", "--bucket", attached, "--mode", "ready"],
      admin(a),
    );
    expect(r.code, r.stderr).toBe(0);
    // Held up at most by b's lease (plus a poll and the CLI's own start).
    expect(Date.now() - started).toBeLessThan(LEASE_SECONDS * 1000 + 8_000);
    expect(await fetchVia(a, attached, "which")).toBe("target");
    const list = await cli(["bucket", "migrate", "list", "--json"], admin(a));
    expect(
      (JSON.parse(list.stdout) as { gateways: { id: string }[] }).gateways.map((g) => g.id),
    ).toEqual(["gw-a"]);
    for (const s of [ADMIN_SECRET, rig.versitygw.secretAccessKey, pg.password]) {
      expect(a.output()).not.toContain(s);
    }
  });
});
