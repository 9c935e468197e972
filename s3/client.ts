/**
 * The S3 HTTP client used by the gateway (forwarding) and s3migrate (copying): one undici
 * keep-alive pool per endpoint, path-style addressing, every request signed with SigV4,
 * S3 errors mapped to typed errors, bounded retries with full-jitter backoff for replayable
 * bodies only.
 *
 * Typed operations (getObject, listObjectsV2, ...) live in client-operations.ts.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Pool, type Dispatcher } from "undici";
import {
  S3ClientError,
  S3ConnectionError,
  classifyNetworkError,
  errorFromAnswer,
} from "./client-errors.js";
import { EMPTY_SHA256, UNSIGNED_PAYLOAD } from "./sigv4-canonical.js";
import { signRequest } from "./sigv4-sign.js";
import type { Credentials } from "./sigv4-types.js";
import { encodeS3Path, uriEncode } from "./uri-encode.js";

export { S3ClientError, S3ConnectionError } from "./client-errors.js";

/** How to reach and authenticate to one S3 endpoint. */
export interface S3ClientOptions {
  /** `http(s)://host:port`, no path; requests use path-style addressing. */
  endpoint: string;
  /** The key pair every request is signed with. */
  credentials: Credentials;
  /** The region of the SigV4 credential scope. */
  region: string;
  /** PEM bundle trusted for TLS (self-signed or private CA endpoints). */
  ca?: string | Buffer;
  /** Keep-alive pool size for this endpoint (default 64). */
  connections?: number;
  /** Timeouts in milliseconds; every network wait is bounded. */
  timeouts?: {
    /** TCP + TLS connect (default 10 s). */
    connectMs?: number;
    /** From the request being sent (body writes refresh it) to the response headers (default 120 s). */
    headersMs?: number;
    /** Longest pause between two chunks of a response body (default 60 s). */
    bodyIdleMs?: number;
  };
  /** Retries of replayable requests on network errors, 500, 503 and 429. */
  retry?: {
    /** Total tries, first included (default 3; 1 disables retries). */
    attempts?: number;
    /** Base of the exponential backoff (default 100 ms). */
    baseDelayMs?: number;
    /** Cap of one backoff delay (default 5 s). */
    maxDelayMs?: number;
  };
}

/** One request to send. */
export interface S3RequestInput {
  /** HTTP method, upper case. */
  method: string;
  /** The bucket; absent for service-level calls (ListBuckets). */
  bucket?: string;
  /** The object key, exactly as stored (never normalised). */
  key?: string;
  /** Decoded query parameters; `""` for valueless ones (`uploads`), undefined ones are skipped. */
  query?: ReadonlyArray<readonly [string, string]> | Record<string, string | undefined>;
  /** Extra headers; all are signed. Hop-by-hop headers and `host` are replaced or dropped. */
  headers?: Record<string, string>;
  /** The body. A Readable cannot be replayed, so such a request is never retried. */
  body?: Buffer | string | Readable;
  /** Byte length of a Readable body (required with one). */
  contentLength?: number;
  /** `x-amz-content-sha256`: default SHA-256 of a Buffer/string, `UNSIGNED-PAYLOAD` for streams. */
  payloadHash?: string;
  /** Statuses (besides 2xx and 304) returned as answers instead of thrown as errors. */
  okStatuses?: readonly number[];
  /** Aborts the request; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A successful answer. The body must be consumed or destroyed to free the connection. */
export interface S3Response {
  /** HTTP status. */
  status: number;
  /** Response headers, lower-case names, repeated values joined with `, `. */
  headers: Record<string, string>;
  /** The response body, streamed. */
  body: Readable;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection; undici manages its own.
const DROPPED_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "content-length",
]);

const RETRY_STATUSES = new Set([429, 500, 503]);

/** The largest error body we read; the rest is discarded. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * What the typed operations of client-operations.ts need from whatever carries their requests:
 * {@link S3Client} (one endpoint, its own pool and credential) and the gateway's backends
 * (re-signed with the service credential over the gateway's pools) both implement it, so the
 * gateway's executors and s3migrate speak S3 through one set of checked calls.
 */
export interface S3Transport {
  /**
   * Sends one signed request. Resolves on 2xx, 304 and `okStatuses`; rejects with an
   * {@link S3ClientError} for any other answer, an {@link S3ConnectionError} when no answer came.
   */
  request(input: S3RequestInput): Promise<S3Response>;
  /** Maps an error answer to an {@link S3ClientError} scrubbed of the transport's secrets. */
  errorFromAnswer(answer: {
    status: number;
    headers: Record<string, string>;
    body: Buffer;
    bucket?: string;
    key?: string;
  }): S3ClientError;
}

/** An S3 client for one endpoint. Create once and share: it owns a connection pool. */
export class S3Client implements S3Transport {
  /** The endpoint's origin, e.g. `http://127.0.0.1:9000`. */
  readonly origin: string;
  /** The region requests are signed for. */
  readonly region: string;
  private readonly host: string;
  private readonly credentials: Credentials;
  private readonly pool: Dispatcher;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly secrets: readonly string[];

  constructor(opts: S3ClientOptions) {
    const url = new URL(opts.endpoint);
    if (
      (url.protocol !== "http:" && url.protocol !== "https:") ||
      (url.pathname !== "/" && url.pathname !== "") ||
      url.search !== "" ||
      url.username !== "" ||
      url.password !== ""
    ) {
      throw new TypeError("S3Client: endpoint must be http(s)://host[:port] without a path");
    }
    this.origin = url.origin;
    // URL.host omits a default port, as does the Host header undici would send.
    this.host = url.host;
    this.region = opts.region;
    this.credentials = opts.credentials;
    this.secrets = [opts.credentials.secretAccessKey, opts.credentials.sessionToken ?? ""];
    this.attempts = Math.max(1, Math.floor(opts.retry?.attempts ?? 3));
    this.baseDelayMs = opts.retry?.baseDelayMs ?? 100;
    this.maxDelayMs = opts.retry?.maxDelayMs ?? 5_000;
    const t = opts.timeouts ?? {};
    this.pool = new Pool(this.origin, {
      connections: opts.connections ?? 64,
      connect: {
        timeout: t.connectMs ?? 10_000,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      },
      headersTimeout: t.headersMs ?? 120_000,
      bodyTimeout: t.bodyIdleMs ?? 60_000,
      keepAliveTimeout: 4_000,
    });
  }

  /**
   * Sends one signed request. Resolves on 2xx, 304 and `okStatuses`; rejects with an
   * {@link S3ClientError} for any other answer, an {@link S3ConnectionError} when no answer came.
   */
  async request(input: S3RequestInput): Promise<S3Response> {
    const path = encodeS3Path(input.bucket, input.key);
    const query = queryPairs(input.query);
    const search = query.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join("&");
    const rawPath = search === "" ? path : `${path}?${search}`;
    const body = typeof input.body === "string" ? Buffer.from(input.body, "utf8") : input.body;
    const streaming = body instanceof Readable;
    if (streaming && input.contentLength === undefined) {
      throw new TypeError("S3Client.request: contentLength is required with a stream body");
    }
    const payloadHash =
      input.payloadHash ??
      (body === undefined
        ? EMPTY_SHA256
        : streaming
          ? UNSIGNED_PAYLOAD
          : createHash("sha256").update(body).digest("hex"));
    const baseHeaders: Record<string, string> = { host: this.host };
    for (const [name, value] of Object.entries(input.headers ?? {})) {
      const lower = name.toLowerCase();
      if (!DROPPED_HEADERS.has(lower)) baseHeaders[lower] = value;
    }
    const okStatuses = input.okStatuses ?? [];
    const attempts = streaming ? 1 : this.attempts;

    for (let attempt = 1; ; attempt++) {
      throwIfAborted(input.signal);
      // Sign every attempt afresh: x-amz-date must be current.
      const signed = signRequest(
        { method: input.method, path, query, headers: baseHeaders, payloadHash },
        this.credentials,
        { region: this.region },
      );
      const headers: Record<string, string> = { ...baseHeaders, ...signed };
      if (streaming) headers["content-length"] = String(input.contentLength);
      let res;
      try {
        res = await this.pool.request({
          origin: this.origin,
          path: rawPath,
          method: input.method as never,
          headers,
          body: body ?? null,
          signal: input.signal,
        });
      } catch (err) {
        throwIfAborted(input.signal);
        const failure = classifyNetworkError(err);
        // A failing body stream or a programming error is not the endpoint's fault.
        if (failure === undefined || (streaming && body.errored === err)) throw err;
        if (failure !== "tls" && attempt < attempts) {
          await this.backoff(attempt, input.signal);
          continue;
        }
        throw new S3ConnectionError(failure, {
          cause: err,
          attempts: attempt,
          bucket: input.bucket,
          key: input.key,
          endpoint: this.origin,
        });
      }
      const status = res.statusCode;
      const resHeaders = flattenHeaders(res.headers);
      if ((status >= 200 && status < 300) || status === 304 || okStatuses.includes(status)) {
        return { status, headers: resHeaders, body: res.body };
      }
      const errBody = await readBounded(res.body, MAX_ERROR_BODY).catch(() => Buffer.alloc(0));
      const error = this.errorFromAnswer({
        status,
        headers: resHeaders,
        body: errBody,
        bucket: input.bucket,
        key: input.key,
      });
      if (RETRY_STATUSES.has(status) && attempt < attempts) {
        await this.backoff(attempt, input.signal);
        continue;
      }
      throw error;
    }
  }

  /**
   * Maps an error answer (status, headers, bounded body) to an {@link S3ClientError}, scrubbed
   * of this client's secret. Used for errors S3 sends inside a 200 answer.
   */
  errorFromAnswer(answer: {
    status: number;
    headers: Record<string, string>;
    body: Buffer;
    bucket?: string;
    key?: string;
  }): S3ClientError {
    return errorFromAnswer({ ...answer, secrets: this.secrets });
  }

  /** Closes the pool after in-flight requests finish. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Full-jitter exponential backoff (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). */
  private async backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    await delay(Math.random() * cap, signal);
  }
}

/** Normalises the query input to decoded pairs, skipping undefined values. */
function queryPairs(query: S3RequestInput["query"]): Array<[string, string]> {
  if (query === undefined) return [];
  const entries: Iterable<readonly [string, string | undefined]> = Array.isArray(query)
    ? (query as ReadonlyArray<readonly [string, string]>)
    : Object.entries(query as Record<string, string | undefined>);
  const out: Array<[string, string]> = [];
  for (const [k, v] of entries) if (v !== undefined) out.push([k, v]);
  return out;
}

/** undici's headers as plain strings (set-cookie and other repeats joined). */
function flattenHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw signal.reason ?? new DOMException("This operation was aborted", "AbortError");
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason ?? new DOMException("This operation was aborted", "AbortError"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Reads at most `max` bytes of a stream and destroys the rest: error documents are small, and a
 * hostile or broken server must not make us buffer without bound.
 */
export async function readBounded(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      if (size + buf.length > max) {
        chunks.push(buf.subarray(0, max - size));
        size = max;
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
  } finally {
    if (!stream.readableEnded) stream.destroy();
  }
  return Buffer.concat(chunks, size);
}

/**
 * Reads a whole (XML) response body up to `max` bytes; a longer body is an error rather than a
 * silently truncated document.
 */
export async function readBodyLimited(
  stream: Readable,
  max: number,
  context: { bucket?: string; key?: string } = {},
): Promise<Buffer> {
  const buf = await readBounded(stream, max + 1);
  if (buf.length > max) {
    throw new S3ClientError("InternalError", {
      status: 500,
      message: `S3 response body larger than ${max} bytes`,
      ...context,
    });
  }
  return buf;
}
