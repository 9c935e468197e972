// Starts and stops the real S3 servers of the test rig (DESIGN.md section 6, docs/test-rig.md):
// MinIO and Versity Gateway (posix backend), each on free loopback ports with a fresh temp dir
// and generated root credentials, built beforehand by scripts/build-servers.sh.
//
// No orphans, whatever happens to the process that started them:
// - stop() (teardown) terminates the server, waits for it, then removes its temp dir;
// - on process exit and on SIGINT/SIGTERM/SIGHUP every live server is sent SIGTERM;
// - every server runs under a watchdog (WATCHDOG_SCRIPT below) that notices when the starting
//   process is gone, even after a SIGKILL nothing can catch, then kills the server and removes
//   its temp dir.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { RigServer } from "./types.js";

/** Which server to start. */
export type ServerKind = RigServer["kind"];

/** Options for {@link startServer} and {@link startServers}. */
export interface StartServerOptions {
  /** Directory holding the `minio` and `versitygw` binaries; default `<repo>/.tools/bin`. */
  readonly binDir?: string;
  /** Where each server's temp dir is created; default the OS temp dir. */
  readonly tmpRoot?: string;
  /** How long a server may take to answer a signed request, in ms; default 60 s. */
  readonly readyTimeoutMs?: number;
  /**
   * Picks a free loopback port; default asks the OS. Tests inject a busy port here to prove
   * that a port taken between picking and binding is retried with a new one.
   */
  readonly pickPort?: () => Promise<number>;
}

/** A server started by the rig: the facts tests need, plus how to stop it. */
export interface RunningServer extends RigServer {
  /** The S3 port on 127.0.0.1. */
  readonly port: number;
  /** PID of the server process. */
  readonly pid: number;
  /** The server's temp dir: `data/` (its data dir), `server.log`, and server-specific state. */
  readonly rootDir: string;
  /** Where the server's stdout and stderr go. */
  readonly logFile: string;
  /** The command line that started it (credentials travel in the environment, not here). */
  readonly command: readonly string[];
  /** Terminates the server (SIGTERM, then SIGKILL), waits for it and removes its temp dir. */
  stop(): Promise<void>;
}

/** Repository root, from this file's place in it (test/rig/servers.ts). */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Default location of the built servers, filled by `npm run servers`. */
export const defaultBinDir = join(repoRoot, ".tools", "bin");

const REGION = "us-east-1";
const PORT_ATTEMPTS = 5;
const STOP_GRACE_MS = 15_000;
const POLL_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Runs the server under a watchdog (written to `<rootDir>/watchdog.sh`, run by /bin/sh). The
 * script forks a watcher subshell, then execs the server in its own place, so the server keeps the PID Node knows and receives Node's signals itself.
 * Once a second the watcher checks that the server's parent is still the starting process
 * (`/proc/<pid>/stat` field 4; without /proc, or once the server is gone, that the parent PID
 * is alive). When the parent has died, it sends SIGTERM, waits up to 10 s, sends SIGKILL and
 * removes the temp dir. A zombie counts as exited: pid 1 may be slow to reap orphans. When the
 * server exits while its parent lives (a normal stop), the watcher just ends.
 * Arguments: $1 parent PID, $2 temp dir, then the server command.
 */
const WATCHDOG_SCRIPT = `
parent=$1; dir=$2; shift 2
server=$$
running() {
  kill -0 "$server" 2>/dev/null || return 1
  state=
  [ -r "/proc/$server/stat" ] && read -r _ _ state _ < "/proc/$server/stat" 2>/dev/null
  [ "$state" != Z ]
}
orphaned() {
  ppid=
  [ -r "/proc/$server/stat" ] && read -r _ _ _ ppid _ < "/proc/$server/stat" 2>/dev/null
  if [ -n "$ppid" ]; then [ "$ppid" != "$parent" ]; else ! kill -0 "$parent" 2>/dev/null; fi
}
(
  while running && ! orphaned; do sleep 1; done
  orphaned || exit 0
  kill -TERM "$server" 2>/dev/null
  i=0
  while running && [ "$i" -lt 10 ]; do sleep 1; i=$((i + 1)); done
  kill -KILL "$server" 2>/dev/null
  [ -n "$dir" ] && rm -rf -- "$dir"
) &
exec "$@"
`;

/** Servers started by this process and not yet stopped, for the exit and signal hooks. */
const live = new Set<LiveServer>();
let hooksInstalled = false;

interface LiveServer {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

interface Attempt {
  readonly kind: ServerKind;
  readonly bin: string;
  readonly port: number;
  readonly consolePort: number;
  readonly rootDir: string;
  readonly dataDir: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** versitygw only: keep metadata in a sidecar dir because the filesystem lacks user xattrs. */
  readonly sidecar: boolean;
}

/** Asks the OS for a free TCP port on 127.0.0.1 (it may be taken again before we bind it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** The RigServer facts of a running server, as plain data (what `project.provide` can send). */
export function rigServerOf(server: RunningServer): RigServer {
  const { kind, endpoint, accessKeyId, secretAccessKey, region, dataDir } = server;
  return { kind, endpoint, accessKeyId, secretAccessKey, region, dataDir };
}

/**
 * Starts one server and resolves once it answers a signed ListBuckets. Throws, with the last
 * lines of the server's log and its command line, when it cannot start.
 */
export async function startServer(
  kind: ServerKind,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const bin = join(options.binDir ?? defaultBinDir, kind);
  try {
    await access(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`${bin} is missing or not executable: run npm run servers`);
  }
  const pickPort = options.pickPort ?? freePort;
  const tmpRoot = options.tmpRoot ?? tmpdir();
  let sidecar = false;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const rootDir = await mkdtemp(join(tmpRoot, `s3rig-${kind}-`));
    const spec: Attempt = {
      kind,
      bin,
      port: await pickPort(),
      consolePort: kind === "minio" ? await pickPort() : 0,
      rootDir,
      dataDir: join(rootDir, "data"),
      // AWS-shaped keys: 20 upper-case characters and 40 characters of secret.
      accessKeyId: `RIG${randomBytes(9).toString("hex").slice(0, 17).toUpperCase()}`,
      secretAccessKey: randomBytes(20).toString("hex"),
      sidecar,
    };
    const result = await tryStart(spec, options.readyTimeoutMs ?? 60_000);
    if ("server" in result) return result.server;
    lastError = result.error;
    // The error carries the log's last lines; the temp dir goes either way.
    await rm(rootDir, { recursive: true, force: true });
    if (/already in use/i.test(result.logTail)) {
      continue; // someone took the port between freePort() and the server's bind
    }
    if (kind === "versitygw" && !sidecar && /xattr/i.test(result.logTail)) {
      sidecar = true; // e.g. tmpfs without user xattrs: metadata goes to a sidecar dir
      continue;
    }
    throw result.error;
  }
  throw lastError ?? new Error(`${kind} did not start`);
}

/**
 * Starts several servers in parallel; if any fails, stops the others and throws every
 * failure's message.
 */
export async function startServers(
  kinds: readonly ServerKind[],
  options: StartServerOptions = {},
): Promise<RunningServer[]> {
  const results = await Promise.allSettled(kinds.map((kind) => startServer(kind, options)));
  const started = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failures = results.flatMap((r) =>
    r.status === "rejected"
      ? [r.reason instanceof Error ? r.reason.message : String(r.reason)]
      : [],
  );
  if (failures.length > 0) {
    await stopServers(started);
    throw new Error(failures.join("\n\n"));
  }
  return started;
}

/** Stops servers in parallel (see {@link RunningServer.stop}). */
export async function stopServers(servers: readonly RunningServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.stop()));
}

function serverArgs(spec: Attempt): string[] {
  if (spec.kind === "minio") {
    // https://min.io/docs/minio/linux/reference/minio-server/minio-server.html
    return [
      "server",
      spec.dataDir,
      "--address",
      `127.0.0.1:${spec.port}`,
      "--console-address",
      `127.0.0.1:${spec.consolePort}`,
      // Its own certs dir: a ~/.minio/certs on the machine would otherwise switch it to TLS.
      "--certs-dir",
      join(spec.rootDir, "certs"),
      "--quiet",
      "--anonymous",
    ];
  }
  // https://github.com/versity/versitygw/wiki/Quickstart ; `versitygw posix --help`
  const posixOptions = spec.sidecar ? ["--sidecar", sidecarDir(spec)] : [];
  return [
    "--port",
    `127.0.0.1:${spec.port}`,
    "--region",
    REGION,
    "--quiet",
    "posix",
    ...posixOptions,
    spec.dataDir,
  ];
}

/** versitygw's metadata dir when the filesystem lacks user xattrs (outside the data dir). */
function sidecarDir(spec: Attempt): string {
  return join(spec.rootDir, "meta");
}

/**
 * The server's environment: ours, minus anything that would reconfigure the server, plus the
 * root credentials (passed here rather than as flags so they never show in `ps` or in errors).
 */
function serverEnv(spec: Attempt): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(MINIO_|VGW_|ROOT_|ADMIN_|AWS_)|^(LOGFILE|WEBHOOK)$/.test(name)) env[name] = value;
  }
  if (spec.kind === "minio") {
    return {
      ...env,
      MINIO_ROOT_USER: spec.accessKeyId,
      MINIO_ROOT_PASSWORD: spec.secretAccessKey,
      MINIO_SITE_REGION: REGION,
      MINIO_BROWSER: "off", // no web console
      MINIO_UPDATE: "off", // no update checks
      MINIO_CALLHOME_ENABLE: "off", // no telemetry
    };
  }
  return {
    ...env,
    ROOT_ACCESS_KEY_ID: spec.accessKeyId,
    ROOT_SECRET_ACCESS_KEY: spec.secretAccessKey,
  };
}

type AttemptResult = { server: RunningServer } | { error: Error; logTail: string };

async function tryStart(spec: Attempt, readyTimeoutMs: number): Promise<AttemptResult> {
  const logFile = join(spec.rootDir, "server.log");
  const watchdog = join(spec.rootDir, "watchdog.sh");
  const command = [spec.bin, ...serverArgs(spec)];
  await mkdir(spec.dataDir);
  if (spec.sidecar) await mkdir(sidecarDir(spec));
  await writeFile(watchdog, WATCHDOG_SCRIPT);
  const log = await open(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn("/bin/sh", [watchdog, String(process.pid), spec.rootDir, ...command], {
      cwd: spec.rootDir,
      env: serverEnv(spec),
      stdio: ["ignore", log.fd, log.fd],
      // Own process group: a terminal's Ctrl-C reaches only us, and we stop the servers in
      // order; the group also lets us kill the watcher with the server.
      detached: true,
    });
  } finally {
    await log.close();
  }
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = signal === null ? `exit code ${code}` : `signal ${signal}`;
      resolve();
    });
    child.once("error", (err) => {
      exitInfo = err.message;
      resolve();
    });
  });
  const entry: LiveServer = { child, exited };
  live.add(entry);
  installHooks();

  const endpoint = `http://127.0.0.1:${spec.port}`;
  const failure = await waitReady({
    endpoint,
    accessKeyId: spec.accessKeyId,
    secretAccessKey: spec.secretAccessKey,
    exited,
    hasExited: () => exitInfo !== undefined,
    timeoutMs: readyTimeoutMs,
  });
  if (failure !== undefined) {
    await terminate(entry);
    const logTail = await readTail(logFile, 4096);
    const reason =
      exitInfo !== undefined && failure === "exited" ? `exited (${exitInfo})` : failure;
    const lastLines = logTail.trimEnd().split("\n").slice(-30).join("\n");
    return {
      logTail,
      error: new Error(
        `${spec.kind} failed to start on ${endpoint}: ${reason}\n` +
          `command: ${command.join(" ")}\n` +
          `last lines of its log:\n${lastLines}`,
      ),
    };
  }

  let stopping: Promise<void> | undefined;
  return {
    server: {
      kind: spec.kind,
      endpoint,
      accessKeyId: spec.accessKeyId,
      secretAccessKey: spec.secretAccessKey,
      region: REGION,
      dataDir: spec.dataDir,
      port: spec.port,
      pid: child.pid ?? -1,
      rootDir: spec.rootDir,
      logFile,
      command,
      stop: () => {
        stopping ??= (async () => {
          await terminate(entry);
          await rm(spec.rootDir, { recursive: true, force: true });
        })();
        return stopping;
      },
    },
  };
}

interface ReadyProbe {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly exited: Promise<void>;
  readonly hasExited: () => boolean;
  readonly timeoutMs: number;
}

/**
 * Polls with a signed ListBuckets until the server answers it: that proves the S3 API is up
 * and accepts the generated credentials (a health URL alone would not). Each probe is bounded;
 * so is the whole wait. Returns undefined when ready, else why not.
 */
async function waitReady(probe: ReadyProbe): Promise<string | undefined> {
  const client = new S3Client({
    endpoint: probe.endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: probe.accessKeyId, secretAccessKey: probe.secretAccessKey },
    maxAttempts: 1,
    // requestTimeout alone only logs a warning in @smithy/node-http-handler 4; the abort
    // signal below bounds each probe whatever the handler does.
    requestHandler: new NodeHttpHandler({
      connectionTimeout: PROBE_TIMEOUT_MS,
      requestTimeout: PROBE_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    }),
  });
  const deadline = Date.now() + probe.timeoutMs;
  let lastError = "no answer";
  try {
    for (;;) {
      if (probe.hasExited()) return "exited";
      try {
        const probeDone = client.send(new ListBucketsCommand({}), {
          abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
        });
        // A server that dies mid-probe ends the wait at once.
        if (
          (await Promise.race([probeDone, probe.exited.then(() => "exited" as const)])) === "exited"
        ) {
          probeDone.catch(() => undefined);
          return "exited";
        }
        return undefined;
      } catch (err) {
        lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
      if (probe.hasExited()) return "exited";
      if (Date.now() >= deadline) {
        return `no answer to a signed ListBuckets within ${probe.timeoutMs} ms (last: ${lastError})`;
      }
      // Poll again soon, but wake at once if the process dies meanwhile.
      await Promise.race([probe.exited, delay(POLL_MS)]);
    }
  } finally {
    client.destroy();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** SIGTERM, wait (bounded), SIGKILL; then kill the rest of its process group (the watcher). */
async function terminate(entry: LiveServer): Promise<void> {
  const { child } = entry;
  if (child.exitCode === null && child.signalCode === null) {
    signal(child.pid, "SIGTERM");
    const timer = new Promise<"timeout">((resolve) =>
      setTimeout(() => resolve("timeout"), STOP_GRACE_MS).unref(),
    );
    if ((await Promise.race([entry.exited, timer])) === "timeout") {
      signal(child.pid === undefined ? undefined : -child.pid, "SIGKILL");
      await entry.exited;
    }
  }
  signal(child.pid === undefined ? undefined : -child.pid, "SIGKILL");
  live.delete(entry);
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * On exit and on termination signals, SIGTERM every live server. Exit handlers cannot wait, so
 * the watchdog finishes the job (escalation, temp dir removal) once we are gone. Our signal
 * listener goes first (prepended) so it sees every other listener still registered: when it is
 * alone, it re-raises the signal so the process still dies of it as it would have; otherwise
 * the others (a CLI's clean stop, a test runner) decide.
 */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const termAll = (): void => {
    for (const { child } of live) signal(child.pid, "SIGTERM");
  };
  process.once("exit", termAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      termAll();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.prependListener(sig, onSignal);
  }
}

async function readTail(file: string, bytes: number): Promise<string> {
  try {
    const handle = await open(file, "r");
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, bytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    return "(no log)";
  }
}
