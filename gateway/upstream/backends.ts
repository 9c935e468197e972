/**
 * Forwarding: one undici keep-alive pool per backend origin and CA, created once and shared, and
 * the re-signed upstream request (DESIGN 3.1, 7).
 *
 * The upstream path is built here from the decoded bucket and key (encodeS3Path), and undici
 * gets a fixed origin and that raw path: a WHATWG URL would resolve `..`, `%2e%2e` or `//`
 * into another resource (PITFALLS.md, "URLs and hosts"). A request is sent once: its body is a
 * stream that cannot be replayed, and only a bodyless request whose connection died before any
 * answer (a stale keep-alive socket) is tried a second time.
 */
import type { Readable } from "node:stream";
import { Pool, type Dispatcher } from "undici";
import { classifyNetworkError, S3ConnectionError } from "../../s3/client-errors.js";
import { signRequest } from "../../s3/sigv4-sign.js";
import type { Credentials } from "../../s3/sigv4-types.js";
import { encodeS3Path, uriEncode } from "../../s3/uri-encode.js";
import type { TargetConfig } from "../config.js";
import type { BucketMigrationState } from "../state/store.js";

/** Upstream timeouts in milliseconds: every wait on a backend is bounded. */
export interface BackendTimeouts {
  /** TCP and TLS connect. */
  readonly connectMs: number;
  /** From the last byte of the request to the response headers. */
  readonly headersMs: number;
  /** Longest pause between two chunks of a response body. */
  readonly bodyIdleMs: number;
}

/** The defaults: connect 5 s, headers 30 s, body idle 60 s. */
export const DEFAULT_BACKEND_TIMEOUTS: BackendTimeouts = {
  connectMs: 5_000,
  headersMs: 30_000,
  bodyIdleMs: 60_000,
};

/** One backend a request can go to: where, how to sign, and the pool to use. */
export interface Backend {
  /** `target` or `source`, for logs and metrics. */
  readonly name: "target" | "source";
  /** `http(s)://host[:port]`. */
  readonly origin: string;
  /** The Host header value for this origin. */
  readonly host: string;
  readonly credentials: Credentials;
  readonly region: string;
  readonly pool: Dispatcher;
  /** Strings that must never reach a client or a log (the service secret). */
  readonly secrets: readonly string[];
}

/** Options for {@link BackendRegistry}. */
export interface BackendRegistryOptions {
  readonly target: TargetConfig;
  /** The target's CA bundle (PEM text), when `target.ca` is set. */
  readonly targetCa: string | undefined;
  readonly timeouts?: BackendTimeouts;
  /** Keep-alive connections per backend origin (default 128). */
  readonly connections?: number;
}

/**
 * The backends of the gateway: the target, created at start-up, and one pool per source origin
 * and CA, created the first time a bucket's state names it. When `update` gives a source a new
 * CA, the next request gets a pool for the new CA (new connections trust it at once) and
 * {@link BackendRegistry.retireUnused} closes the old pool once nothing names it: undici's
 * `close` lets the requests in flight on it finish, then ends its connections.
 */
export class BackendRegistry {
  private readonly pools = new Map<string, Dispatcher>();
  private readonly retiring = new Set<Dispatcher>();
  private readonly targetKey: string;
  private readonly timeouts: BackendTimeouts;
  private readonly connections: number;
  /** The target backend. */
  readonly target: Backend;

  constructor(options: BackendRegistryOptions) {
    this.timeouts = options.timeouts ?? DEFAULT_BACKEND_TIMEOUTS;
    this.connections = options.connections ?? 128;
    const t = options.target;
    this.targetKey = poolKey(t.endpoint, options.targetCa);
    this.target = this.backend("target", t.endpoint, options.targetCa, {
      credentials: { accessKeyId: t.accessKey, secretAccessKey: t.secretKey },
      region: t.region,
    });
  }

  /** The source backend of an attached bucket (pool shared by every bucket on that origin). */
  source(state: BucketMigrationState): Backend {
    return this.backend("source", state.sourceUrl, sourceCaOf(state), {
      credentials: { accessKeyId: state.sourceAccessKey, secretAccessKey: state.sourceSecretKey },
      region: state.sourceRegion,
    });
  }

  /**
   * Closes, after their in-flight requests, the source pools no bucket state names any more (a
   * CA or origin replaced by `update`, a bucket detached). Called with every new snapshot.
   */
  retireUnused(states: Iterable<BucketMigrationState>): void {
    const inUse = new Set<string>([this.targetKey]);
    for (const state of states) inUse.add(this.sourceKey(state));
    for (const [key, pool] of this.pools) {
      if (inUse.has(key)) continue;
      this.pools.delete(key);
      this.retiring.add(pool);
      void pool
        .close()
        .catch(() => undefined)
        .finally(() => this.retiring.delete(pool));
    }
  }

  /** Pools being retired (closing once their requests finish). */
  get retiringPools(): number {
    return this.retiring.size;
  }

  /** Open pools (target and sources). */
  get openPools(): number {
    return this.pools.size;
  }

  /** Closes every pool after its in-flight requests. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.pools.values(), ...this.retiring].map((p) => p.close().catch(() => undefined)),
    );
    this.pools.clear();
  }

  private backend(
    name: Backend["name"],
    endpoint: string,
    ca: string | undefined,
    auth: { credentials: Credentials; region: string },
  ): Backend {
    const url = new URL(endpoint);
    const key = poolKey(endpoint, ca);
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(url.origin, {
        connections: this.connections,
        connect: {
          timeout: this.timeouts.connectMs,
          ...(ca === undefined ? {} : { ca }),
        },
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        keepAliveTimeout: 4_000,
      });
      this.pools.set(key, pool);
    }
    return {
      name,
      origin: url.origin,
      host: url.host,
      credentials: auth.credentials,
      region: auth.region,
      pool,
      secrets: [auth.credentials.secretAccessKey],
    };
  }

  private sourceKey(state: BucketMigrationState): string {
    return poolKey(state.sourceUrl, sourceCaOf(state));
  }
}

/** The CA a source's pool trusts: its own PEM for https with a CA, else the system's. */
function sourceCaOf(state: BucketMigrationState): string | undefined {
  const https = state.sourceUrl.startsWith("https:");
  return https && state.sourceCa !== "system" ? state.sourceCa : undefined;
}

/** Pools are shared per origin and CA. */
function poolKey(endpoint: string, ca: string | undefined): string {
  return `${new URL(endpoint).origin}\n${ca ?? ""}`;
}

/** One request to send upstream. */
export interface UpstreamRequest {
  readonly method: string;
  /** The bucket on the backend (the source bucket name in forward mode). */
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  /** Decoded query pairs, in the client's order. */
  readonly query: readonly (readonly [string, string])[];
  /** Headers to send and sign (lower-case names), without host and authentication. */
  readonly headers: Readonly<Record<string, string>>;
  /** The plain body, or undefined for none. */
  readonly body: Readable | Buffer | undefined;
  /** The exact body length; required with a body. */
  readonly contentLength: number | undefined;
  /** `x-amz-content-sha256` to send: the client's hex hash, or UNSIGNED-PAYLOAD. */
  readonly payloadHash: string;
  /** Aborts the upstream request (client gone, client body failed). */
  readonly signal: AbortSignal;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The value to sign for a header Node handed over as latin1 (one char per wire byte): the
 * signer hashes text as UTF-8, so a UTF-8 metadata value is signed as its decoded text, which
 * hashes to the same bytes the backend sees. A value that is not UTF-8 cannot be signed
 * faithfully and is sent unsigned (undefined).
 */
function signableValue(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(value)) return value;
  try {
    return UTF8.decode(Buffer.from(value, "latin1"));
  } catch {
    return undefined;
  }
}

/**
 * Signs and sends one request to a backend. Resolves with the backend's answer whatever its
 * status; rejects with an {@link S3ConnectionError} when no answer came, or with the body's
 * own error when the client body failed (the upstream request is then destroyed, so nothing is
 * committed).
 */
export async function sendUpstream(
  backend: Backend,
  req: UpstreamRequest,
): Promise<Dispatcher.ResponseData> {
  const path = encodeS3Path(req.bucket, req.key);
  const search = req.query.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join("&");
  const rawPath = search === "" ? path : `${path}?${search}`;
  const toSign: Record<string, string> = { host: backend.host };
  for (const [name, value] of Object.entries(req.headers)) {
    const signable = signableValue(value);
    if (signable !== undefined) toSign[name] = signable;
  }
  const attempts = req.body === undefined ? 2 : 1;
  for (let attempt = 1; ; attempt++) {
    const signed = signRequest(
      { method: req.method, path, query: req.query, headers: toSign, payloadHash: req.payloadHash },
      backend.credentials,
      { region: backend.region },
    );
    const headers: Record<string, string> = {
      ...req.headers,
      host: backend.host,
      ...signed,
    };
    if (req.contentLength !== undefined) headers["content-length"] = String(req.contentLength);
    try {
      return await backend.pool.request({
        path: rawPath,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: req.body ?? null,
        signal: req.signal,
      });
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason ?? err;
      const body = req.body;
      if (body !== undefined && !Buffer.isBuffer(body) && body.errored) throw body.errored;
      const failure = classifyNetworkError(err);
      if (failure === undefined) throw err;
      if ((failure === "reset" || failure === "closed") && attempt < attempts) continue;
      throw new S3ConnectionError(failure, {
        cause: err,
        attempts: attempt,
        endpoint: backend.name,
        ...(req.bucket === undefined ? {} : { bucket: req.bucket }),
        ...(req.key === undefined ? {} : { key: req.key }),
      });
    }
  }
}
