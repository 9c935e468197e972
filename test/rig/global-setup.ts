// vitest globalSetup of the `integration` project (vitest.config.ts): starts the rig's real S3
// servers once for the whole run and hands their endpoints and keys to the tests as `rig`
// (test/rig/types.ts; read it with `inject("rig")`). See docs/test-rig.md.

import type { TestProject } from "vitest/node";
import { rigServerOf, startServers, stopServers } from "./servers.js";
import type { RigContext } from "./types.js";

/**
 * Starts MinIO (target), a second MinIO (source) and versitygw (posix source), provides them
 * as `rig` and returns the teardown that stops them. A missing binary or a server that cannot
 * start fails the run: there is no skipping without servers.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const servers = await startServers(["minio", "minio", "versitygw"]);
  const [minio, minio2, versitygw] = servers;
  if (minio === undefined || minio2 === undefined || versitygw === undefined) {
    await stopServers(servers);
    throw new Error("the rig did not start all three servers");
  }
  const rig: RigContext = {
    minio: rigServerOf(minio),
    minio2: rigServerOf(minio2),
    versitygw: rigServerOf(versitygw),
  };
  project.provide("rig", rig);
  return () => stopServers(servers);
}
