// A throwaway PostgreSQL for the state store tests (issue 12): initdb into a fresh temp dir,
// listen on a free loopback port (no Unix socket outside the temp dir), password auth with a
// generated password, stopped and removed at the end. When running as root, initdb and the
// server run as the `postgres` user (PostgreSQL refuses to run as root), and the temp dir is
// handed to that user. Like the S3 servers (servers.ts), the server runs under a watchdog
// that stops it and removes its dir when the starting process dies without stopping it.
// The binaries come from Debian's `postgresql` package (.ci/run installs it).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./servers.js";

/** A running throwaway PostgreSQL. */
export interface RigPostgres {
  /** 127.0.0.1 */
  readonly host: string;
  readonly port: number;
  /** The superuser the cluster was made with. */
  readonly user: string;
  /** Its generated password. */
  readonly password: string;
  /** `postgres://user@127.0.0.1:port/<database>` (no password) for a new empty database. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (fast shutdown: clients are disconnected), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its temp dir. */
  close(): Promise<void>;
}

const WATCHDOG = `
parent=$1; dir=$2; shift 2
server=$$
# /proc first: the server runs as postgres, and kill -0 on a root parent fails with EPERM.
alive() { [ -d "/proc/$1" ] || kill -0 "$1" 2>/dev/null; }
(
  while alive "$server" && alive "$parent"; do sleep 1; done
  alive "$parent" && exit 0
  kill -INT "$server" 2>/dev/null
  i=0
  while alive "$server" && [ "$i" -lt 10 ]; do sleep 1; i=$((i + 1)); done
  kill -KILL "$server" 2>/dev/null
  rm -rf -- "$dir"
) &
exec "$@"
`;

/** The directory holding initdb and postgres: on PATH, or Debian's /usr/lib/postgresql/<v>/bin. */
function binDir(): string {
  const fromPath = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim();
  if (fromPath) {
    // Debian's /usr/bin/initdb is absent (pg_wrapper offers only clients); a PATH entry is real.
    return fromPath.slice(0, fromPath.lastIndexOf("/"));
  }
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base)
    ? spawnSync("ls", [base], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions) {
    if (existsSync(join(base, v, "bin", "initdb"))) return join(base, v, "bin");
  }
  throw new Error(
    "PostgreSQL server binaries not found (initdb): install Debian's postgresql package (.ci/run does)",
  );
}

/** The uid/gid to run as: `postgres` when we are root (the server refuses root). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number =>
    Number(spawnSync("id", [flag, "postgres"], { encoding: "utf8" }).stdout.trim());
  const uid = id("-u");
  const gid = id("-g");
  if (!Number.isInteger(uid) || uid <= 0) {
    throw new Error(
      "running as root needs a postgres user to run PostgreSQL as (Debian's postgresql package creates it)",
    );
  }
  return { uid, gid };
}

/** Starts a throwaway PostgreSQL; fails (never skips) when it cannot. */
export async function startPostgres(): Promise<RigPostgres> {
  const bin = binDir();
  const user = "s3gw";
  const password = randomBytes(12).toString("hex");
  const dir = await mkdtemp(join(tmpdir(), "s3gw-pg-"));
  const data = join(dir, "data");
  const as = runAs();
  await writeFile(join(dir, "pw"), `${password}\n`, { mode: 0o600 });
  await chmod(dir, 0o700);
  if (as) {
    await chown(dir, as.uid, as.gid);
    await chown(join(dir, "pw"), as.uid, as.gid);
  }
  const initdb = spawnSync(
    join(bin, "initdb"),
    [
      "-D",
      data,
      "-U",
      user,
      `--pwfile=${join(dir, "pw")}`,
      "--auth=scram-sha-256",
      "-E",
      "UTF8",
      "--no-sync",
      "--locale=C",
    ],
    { encoding: "utf8", ...(as ? { uid: as.uid, gid: as.gid } : {}), timeout: 120_000 },
  );
  if (initdb.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${initdb.stderr || initdb.stdout || String(initdb.error)}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = "";

  const start = async (): Promise<void> => {
    const script = join(dir, "watchdog.sh");
    await writeFile(script, WATCHDOG, { mode: 0o755 });
    const c = spawn(
      "/bin/sh",
      [
        script,
        String(process.pid),
        dir,
        join(bin, "postgres"),
        "-D",
        data,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `unix_socket_directories=${dir}`,
        "-c",
        "fsync=on",
        "-c",
        "max_connections=100",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
        ...(as ? { uid: as.uid, gid: as.gid } : {}),
      },
    );
    c.stdout?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    c.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    child = c;
    exited = new Promise((done) => c.once("exit", () => done()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new pg.Client({
        host: "127.0.0.1",
        port,
        user,
        password,
        database: "postgres",
        connectionTimeoutMillis: 2_000,
      });
      try {
        await client.connect();
        await client.query("SELECT 1");
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
      }
      if (c.exitCode !== null || Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start on port ${port}:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    // SIGINT is the fast shutdown: clients are disconnected, the data is checkpointed.
    c.kill("SIGINT");
    const timer = setTimeout(() => {
      if (c.pid !== undefined) {
        try {
          process.kill(-c.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, 15_000);
    await exited;
    clearTimeout(timer);
    // The watchdog's watcher subshell shares the process group; end it too.
    if (c.pid !== undefined) {
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };

  const onExit = (): void => {
    if (child?.pid !== undefined && child.exitCode === null) child.kill("SIGINT");
  };
  process.once("exit", onExit);

  try {
    await start();
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let databases = 0;
  return {
    host: "127.0.0.1",
    port,
    user,
    password,
    async createDatabase(prefix = "s3gw") {
      const name = `${prefix}_${process.pid}_${++databases}_${randomBytes(3).toString("hex")}`;
      const client = new pg.Client({
        host: "127.0.0.1",
        port,
        user,
        password,
        database: "postgres",
        connectionTimeoutMillis: 5_000,
      });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://${user}@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    async close() {
      process.removeListener("exit", onExit);
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
