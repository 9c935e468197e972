// A source's CA changed by `update` (issue 11): new connections use the new CA at once, and the
// old pool is retired when idle: a request in flight on it when the state changed finishes,
// then the pool closes. The source is a local HTTPS server whose certificate moves from one CA
// to another (certs/make-local-certs.sh run twice: two CAs); a response held open plays the
// request in flight.

import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Dispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackendRegistry } from "../../gateway/upstream/backends.js";
import type { BucketMigrationState } from "../../gateway/state/store.js";
import { repoRoot } from "../rig/servers.js";

const exec = promisify(execFile);

async function makeCa(): Promise<{ ca: string; cert: Buffer; key: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), "s3gw-srcca-"));
  await exec(join(repoRoot, "certs", "make-local-certs.sh"), ["--out", dir, "--days", "2"]);
  return {
    ca: await readFile(join(dir, "ca.pem"), "utf8"),
    cert: await readFile(join(dir, "server.pem")),
    key: await readFile(join(dir, "server-key.pem")),
  };
}

describe("a source's CA replaced by update", () => {
  let first: Awaited<ReturnType<typeof makeCa>>;
  let second: Awaited<ReturnType<typeof makeCa>>;
  let server: Server;
  let url: string;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    [first, second] = await Promise.all([makeCa(), makeCa()]);
    server = createServer({ cert: first.cert, key: first.key }, (req, res) => {
      if (req.url === "/hold") {
        held.push(res);
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("started ");
        return;
      }
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    url = `https://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("sends new requests with the new CA and closes the old pool after its request in flight", async () => {
    const registry = new BackendRegistry({
      target: {
        endpoint: "http://127.0.0.1:9",
        accessKey: "k",
        secretKey: "s",
        region: "us-east-1",
        ca: undefined,
      },
      targetCa: undefined,
    });
    const state = (ca: string): BucketMigrationState => ({
      bucket: "b",
      sourceUrl: url,
      sourceBucket: "b",
      sourceAccessKey: "k",
      sourceSecretKey: "s",
      sourceRegion: "us-east-1",
      sourceCa: ca,
      mode: "forward",
      history: [],
    });
    const get = (pool: Dispatcher, path: string) =>
      pool.request({ origin: url, path, method: "GET" });

    const oldBackend = registry.source(state(first.ca));
    expect(await (await get(oldBackend.pool, "/")).body.text()).toBe("ok");
    const inFlight = await get(oldBackend.pool, "/hold");

    // The operator rotates the source's certificate to another CA and runs `update --ca`.
    server.setSecureContext({ cert: second.cert, key: second.key });
    const newState = state(second.ca);
    registry.retireUnused([newState]);
    expect(registry.retiringPools).toBe(1);
    const newBackend = registry.source(newState);
    expect(newBackend.pool).not.toBe(oldBackend.pool);
    expect(await (await get(newBackend.pool, "/")).body.text()).toBe("ok");

    // The request in flight on the old pool still completes; then the old pool is closed.
    expect((oldBackend.pool as unknown as { closed: boolean }).closed).toBe(true);
    held[0]?.end("finished");
    expect(await inFlight.body.text()).toBe("started finished");
    while (registry.retiringPools > 0) await new Promise((r) => setTimeout(r, 10));
    expect(registry.openPools).toBe(2);
    await registry.close();
  });
});
