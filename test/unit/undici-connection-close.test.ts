// Regression test for undici issue 5360 as it hit the gateway: an upstream answer with
// `Connection: close` whose last body chunk met backpressure crashed the whole process with
// an uncatchable `assert(!this.paused)` when the server's FIN arrived. undici 7 needed an
// interceptor (the former s3/undici-eof-guard.ts) to survive it; undici 8 fixes the parser, and
// this test keeps a plain Pool, as the gateway and the copier use, from regressing.

import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { afterEach, describe, expect, it } from "vitest";

const BODY = Buffer.alloc(64 * 1024, 0x61); // one socket read; fills the body's highWaterMark

describe("undici Pool and a Connection: close answer", () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /** A raw HTTP/1.1 server answering every request with BODY and `Connection: close`. */
  async function closingServer(): Promise<{ origin: string; closed: Promise<void> }> {
    let resolveClosed!: () => void;
    const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
    const server = createServer((sock: Socket) => {
      sock.on("error", () => undefined); // the client may close first; not this test's concern
      sock.once("data", () => {
        sock.write(
          `HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`,
        );
        sock.end(BODY);
      });
      // Fires once the client has seen our FIN and closed its side as well.
      sock.on("close", () => resolveClosed());
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    closers.push(() => new Promise((r) => server.close(r)));
    const { port } = server.address() as AddressInfo;
    return { origin: `http://127.0.0.1:${port}`, closed };
  }

  it("a Connection: close body paused on its last chunk completes after the FIN", async () => {
    const { origin, closed } = await closingServer();
    const pool = new Pool(origin);
    closers.push(() => pool.close());
    const res = await pool.request({ method: "GET", path: "/" });
    // Leave the body unread until the server's FIN has been processed by the client: the
    // moment that crashed the process with undici 7.
    await closed;
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(body.equals(BODY)).toBe(true);
  });
});
