// A loopback HTTP proxy in front of one plain-HTTP rig server (MinIO, versitygw): it forwards
// every request as it came (method, raw path, headers — the Host header too, so a SigV4
// signature made for the proxy's address still verifies), logs what passed, and can hold a
// chosen request (never forwarding it until released) or flip one byte of a chosen answer's
// body. A fault tool in front of a real server, not an S3 mock.

import { Agent, createServer, request, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { Transform } from "node:stream";

/** One request that reached the proxy. */
export interface SeenRequest {
  readonly method: string;
  /** The raw request target (path and query). */
  readonly url: string;
}

/** Decides about one request. */
export type RequestMatcher = (req: SeenRequest) => boolean;

/** The proxy; see the file comment. */
export class HttpFaultProxy {
  /** Every request that reached the proxy, in order. */
  readonly seen: SeenRequest[] = [];
  /** Requests matching this are held (not forwarded) until {@link release}. */
  hold: RequestMatcher | undefined;
  /** Successful answers to requests matching this get one body byte flipped (at offset 4096, or the last byte). */
  flip: RequestMatcher | undefined;
  private readonly held: (() => void)[] = [];
  private readonly heldSeen: SeenRequest[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:<port>` */
    readonly endpoint: string,
  ) {}

  /** Starts a proxy to `backend` (`http://host:port`). */
  static async start(backend: string): Promise<HttpFaultProxy> {
    const url = new URL(backend);
    const holder: { proxy?: HttpFaultProxy } = {};
    const server = createServer((req, res) => {
      const p = holder.proxy as HttpFaultProxy;
      const seen = { method: req.method ?? "GET", url: req.url ?? "/" };
      p.seen.push(seen);
      const forward = (): void => {
        const up = request(
          {
            host: url.hostname,
            port: Number(url.port),
            method: seen.method,
            path: seen.url,
            headers: req.headers,
            agent: p.agent,
          },
          (answer: IncomingMessage) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            const flip = p.flip?.(seen) === true && (answer.statusCode ?? 0) < 300;
            const length = Number(answer.headers["content-length"] ?? 0);
            const at = Math.min(4096, Math.max(0, length - 1));
            (flip ? answer.pipe(flipper(at)) : answer).pipe(res);
          },
        );
        up.on("error", () => res.destroy());
        req.pipe(up);
      };
      if (p.hold?.(seen) === true) {
        p.heldSeen.push(seen);
        p.held.push(forward);
        return;
      }
      forward();
    });
    server.on("connection", (s: Socket) => {
      const p = holder.proxy;
      p?.sockets.add(s);
      s.on("close", () => p?.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    holder.proxy = new HttpFaultProxy(server, `http://127.0.0.1:${port}`);
    return holder.proxy;
  }

  /** The requests being held. */
  heldRequests(): readonly SeenRequest[] {
    return this.heldSeen;
  }

  /** Forwards every held request. */
  release(): void {
    this.heldSeen.length = 0;
    for (const forward of this.held.splice(0)) forward();
  }

  /** Drops every held request: it never reaches the backend. */
  drop(): void {
    this.heldSeen.length = 0;
    this.held.length = 0;
  }

  /** Stops the proxy, dropping held requests and open connections. */
  async close(): Promise<void> {
    this.held.length = 0;
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A transform that XORs the byte at offset `at` with 0xff. */
function flipper(at: number): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (at >= offset && at < offset + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[at - offset] = (copy[at - offset] ?? 0) ^ 0xff;
        offset += chunk.length;
        done(null, copy);
        return;
      }
      offset += chunk.length;
      done(null, chunk);
    },
  });
}
