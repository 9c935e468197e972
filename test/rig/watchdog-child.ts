// Helper process for test/integration/rig.test.ts: starts the servers named on its command
// line, prints them as one JSON line on stdout, then idles until it is killed. The test kills
// it (SIGKILL or SIGTERM) and checks that no server outlives it.
// Run as: node --import tsx test/rig/watchdog-child.ts minio versitygw

import { type ServerKind, startServers } from "./servers.js";

/** What the child reports about each server it started. */
export interface ChildServer {
  /** Which server. */
  readonly kind: ServerKind;
  /** Its S3 port on 127.0.0.1. */
  readonly port: number;
  /** Its PID. */
  readonly pid: number;
  /** Its temp dir, which must be gone once the watchdog has cleaned up. */
  readonly rootDir: string;
}

const kinds = process.argv
  .slice(2)
  .filter((a): a is ServerKind => a === "minio" || a === "versitygw");
const servers = await startServers(kinds);
const report: ChildServer[] = servers.map(({ kind, port, pid, rootDir }) => ({
  kind,
  port,
  pid,
  rootDir,
}));
process.stdout.write(`${JSON.stringify(report)}\n`);
// Stay alive (a pending timer) until the test kills us.
setInterval(() => undefined, 60_000);
