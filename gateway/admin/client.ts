/**
 * The client of the admin API, used by `s3gw bucket migrate …`: JSON requests signed with
 * SigV4 (the body's SHA-256 signed too), sent with undici, bounded by timeouts. Every failure
 * becomes an {@link AdminClientError} with one line of text and no secret.
 */
import { createHash } from "node:crypto";
import { Agent, request } from "undici";
import { signRequest } from "../../s3/sigv4-sign.js";
import type { Credentials } from "../../s3/sigv4-types.js";
import { ADMIN_PREFIX, type PublicBucketState, type StateStatus } from "./protocol.js";
import type { MigrationMode } from "../state/transitions.js";

/** Where the admin API is and how to sign for it. */
export interface AdminClientOptions {
  /** `http(s)://host:port` of the admin listener. */
  readonly endpoint: string;
  readonly credentials: Credentials;
  /** The gateway's configured region (the signature scope). */
  readonly region: string;
  /** PEM CA to trust when the admin listener uses TLS with a private CA. */
  readonly ca?: string;
  /** Per-request limit for headers and body; attach validation can take a few seconds. */
  readonly timeoutMs?: number;
}

/** What attach sends. */
export interface AttachRequest {
  readonly sourceUrl: string;
  readonly sourceBucket?: string;
  readonly sourceAccessKey: string;
  readonly sourceSecretKey: string;
  readonly sourceRegion?: string;
  /** PEM text or `system`. */
  readonly sourceCa: string;
  /** Copy-on-read on (off when absent). */
  readonly copyOnRead?: boolean;
  /** Copy-on-read's size limit in bytes. */
  readonly copyOnReadMaxSize?: number;
}

/** What update sends: one selector, and a mode and/or source settings. */
export interface UpdateRequest {
  readonly bucket?: string;
  readonly url?: string;
  readonly all?: true;
  readonly mode?: MigrationMode;
  readonly force?: boolean;
  readonly confirmIrreversible?: boolean;
  readonly sourceUrl?: string;
  readonly sourceBucket?: string;
  readonly sourceAccessKey?: string;
  readonly sourceSecretKey?: string;
  readonly sourceRegion?: string;
  readonly sourceCa?: string;
  readonly copyOnRead?: boolean;
  readonly copyOnReadMaxSize?: number;
}

/** An admin request that failed; `code` is the API's code or a transport code. */
export class AdminClientError extends Error {
  /** The API's error code (`TransitionRefused`…) or `Unreachable`/`BadResponse`. */
  readonly code: string;
  /** HTTP status, 0 when no answer arrived. */
  readonly status: number;

  constructor(code: string, status: number, message: string) {
    super(message);
    this.name = "AdminClientError";
    this.code = code;
    this.status = status;
  }
}

/** A signed JSON client of the admin API. */
export class AdminClient {
  readonly #origin: string;
  readonly #host: string;
  readonly #options: AdminClientOptions;
  readonly #dispatcher: Agent;

  constructor(options: AdminClientOptions) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw new AdminClientError(
        "InvalidEndpoint",
        0,
        `admin endpoint ${options.endpoint} is not a URL`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new AdminClientError(
        "InvalidEndpoint",
        0,
        "admin endpoint must be http:// or https://",
      );
    }
    this.#origin = url.origin;
    this.#host = url.host;
    this.#options = options;
    const timeout = options.timeoutMs ?? 60_000;
    this.#dispatcher = new Agent({
      connectTimeout: 10_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(options.ca ? { connect: { ca: options.ca } } : {}),
    });
  }

  /** Every attached bucket. */
  async list(): Promise<PublicBucketState[]> {
    return (
      (await this.#call("GET", `${ADMIN_PREFIX}/buckets`)) as { buckets: PublicBucketState[] }
    ).buckets;
  }

  /** One bucket's state. */
  async show(bucket: string): Promise<PublicBucketState> {
    return (await this.showWithStatus(bucket)).bucket;
  }

  /** Every attached bucket, the answering gateway's state version and the live gateways. */
  async listWithStatus(): Promise<StateStatus & { buckets: PublicBucketState[] }> {
    const body = (await this.#call("GET", `${ADMIN_PREFIX}/buckets`)) as Partial<StateStatus> & {
      buckets: PublicBucketState[];
    };
    return { buckets: body.buckets, version: body.version ?? 0, gateways: body.gateways ?? [] };
  }

  /** One bucket's state, the answering gateway's state version and the live gateways. */
  async showWithStatus(bucket: string): Promise<StateStatus & { bucket: PublicBucketState }> {
    const body = (await this.#call("GET", bucketPath(bucket))) as Partial<StateStatus> & {
      bucket: PublicBucketState;
    };
    return { bucket: body.bucket, version: body.version ?? 0, gateways: body.gateways ?? [] };
  }

  /** Attaches a bucket; the gateway validates both sides before saving. */
  async attach(bucket: string, body: AttachRequest): Promise<PublicBucketState> {
    return ((await this.#call("POST", bucketPath(bucket), body)) as { bucket: PublicBucketState })
      .bucket;
  }

  /** Changes mode and/or source settings of the selected buckets (all or nothing). */
  async update(body: UpdateRequest): Promise<PublicBucketState[]> {
    return (
      (await this.#call("POST", `${ADMIN_PREFIX}/update`, body)) as { buckets: PublicBucketState[] }
    ).buckets;
  }

  /** Detaches a bucket and returns its last state. */
  async detach(bucket: string): Promise<PublicBucketState> {
    return ((await this.#call("DELETE", bucketPath(bucket))) as { bucket: PublicBucketState })
      .bucket;
  }

  /** Releases pooled connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload =
      body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), "utf8");
    const headers: Record<string, string> = { host: this.#host };
    if (body !== undefined) headers["content-type"] = "application/json";
    const signed = signRequest(
      { method, path, headers, payloadHash: createHash("sha256").update(payload).digest("hex") },
      this.#options.credentials,
      { region: this.#options.region },
    );
    let res;
    try {
      res = await request(`${this.#origin}${path}`, {
        method: method as "GET",
        headers: { ...headers, ...signed },
        body: body === undefined ? null : payload,
        dispatcher: this.#dispatcher,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "error";
      throw new AdminClientError(
        "Unreachable",
        0,
        `cannot reach the admin API at ${this.#origin} (${code})`,
      );
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new AdminClientError(
        "BadResponse",
        res.statusCode,
        `the admin API answered ${res.statusCode} with non-JSON`,
      );
    }
    if (res.statusCode >= 300) {
      const e = json as { code?: unknown; message?: unknown };
      const code = typeof e.code === "string" ? e.code : "Error";
      const message = typeof e.message === "string" ? e.message : `HTTP ${res.statusCode}`;
      throw new AdminClientError(code, res.statusCode, `${code}: ${message}`);
    }
    return json;
  }
}

function bucketPath(bucket: string): string {
  return `${ADMIN_PREFIX}/buckets/${encodeURIComponent(bucket)}`;
}
