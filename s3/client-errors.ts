/**
 * Errors of the S3 HTTP client: {@link S3ClientError} when an S3 server answered with an error,
 * {@link S3ConnectionError} when no answer came (refused, reset, timed out, TLS failure).
 * Both derive from S3Error so a gateway can relay them with renderErrorXml as they are.
 */
import { S3Error, isS3ErrorCode } from "./errors.js";
import { parseErrorDocument } from "./xml-documents.js";

/** Whether the server answered (`response`) or never did (`connection`). */
export type S3ClientErrorKind = "response" | "connection";

/** Options for {@link S3ClientError}. */
export interface S3ClientErrorOptions {
  /** HTTP status of the answer (503 for connection failures). */
  status: number;
  /** Safe message; the S3 table's message is used when absent. */
  message?: string;
  /** `x-amz-request-id` or the Error document's RequestId. */
  requestId?: string;
  /** `x-amz-id-2` or the Error document's HostId. */
  hostId?: string;
  /** The bucket the request was about. */
  bucket?: string;
  /** The key the request was about. */
  key?: string;
  /** The Error document's Resource, when given. */
  resource?: string;
  /** The underlying error, for logs only. */
  cause?: unknown;
}

/** An S3 server answered with an error: the code, status and ids come from its answer. */
export class S3ClientError extends S3Error {
  /** Always `response` for this class; {@link S3ConnectionError} says `connection`. */
  readonly kind: S3ClientErrorKind = "response";
  /** The request id of the failed request, when the server sent one. */
  readonly requestId: string | undefined;
  /** The host id of the failed request, when the server sent one. */
  readonly hostId: string | undefined;
  /** The bucket of the request. */
  readonly bucket: string | undefined;
  /** The key of the request. */
  readonly key: string | undefined;

  constructor(code: string, options: S3ClientErrorOptions) {
    const known = isS3ErrorCode(code);
    super(known ? code : "InternalError", {
      status: options.status,
      message: options.message ?? (known ? undefined : code),
      resource: options.resource,
      cause: options.cause,
    });
    // S3 has more codes than our table (e.g. PermanentRedirect): keep the server's code.
    if (!known) (this as { code: string }).code = code;
    this.name = "S3ClientError";
    this.requestId = options.requestId;
    this.hostId = options.hostId;
    this.bucket = options.bucket;
    this.key = options.key;
  }
}

/** Why no answer came. */
export type S3ConnectionFailure = "connect" | "timeout" | "reset" | "tls" | "closed";

/**
 * No S3 answer: the connection failed or timed out. Code `ServiceUnavailable`, status 503, so a
 * gateway relaying it gives a 5xx (never a 404 that sync clients would act on).
 */
export class S3ConnectionError extends S3ClientError {
  override readonly kind: S3ClientErrorKind = "connection";
  /** What went wrong, coarsely. */
  readonly failure: S3ConnectionFailure;
  /** How many attempts were made before giving up. */
  readonly attempts: number;

  constructor(
    failure: S3ConnectionFailure,
    options: { cause: unknown; attempts: number; bucket?: string; key?: string; endpoint: string },
  ) {
    super("ServiceUnavailable", {
      status: 503,
      message: `S3 endpoint ${options.endpoint} unreachable (${failure}) after ${options.attempts} attempt(s)`,
      bucket: options.bucket,
      key: options.key,
      cause: options.cause,
    });
    this.name = "S3ConnectionError";
    this.failure = failure;
    this.attempts = options.attempts;
  }
}

const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "ETIMEDOUT"]);
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
]);
const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "ECONNABORTED"]);
const CLOSED_CODES = new Set(["UND_ERR_CLOSED", "UND_ERR_DESTROYED"]);

/**
 * Classifies an error thrown while sending a request: a connection failure, or undefined for
 * anything else (a programming error, a failing request body stream) that must surface as is.
 */
export function classifyNetworkError(err: unknown): S3ConnectionFailure | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  if (TIMEOUT_CODES.has(code)) return "timeout";
  if (CONNECT_CODES.has(code)) return "connect";
  if (RESET_CODES.has(code)) return "reset";
  if (CLOSED_CODES.has(code)) return "closed";
  if (code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") || TLS_VERIFY_CODE.test(code)) {
    return "tls";
  }
  return undefined;
}

/**
 * OpenSSL's certificate-verification codes as Node reports them (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, ...).
 */
const TLS_VERIFY_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME_MISMATCH/;

/** Status → code for answers without an Error document (HEAD, or a proxy's HTML page). */
function codeForStatus(status: number, hasKey: boolean): string {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 307:
      return "TemporaryRedirect";
    case 400:
      return "BadRequest";
    case 403:
      return "AccessDenied";
    case 404:
      return hasKey ? "NoSuchKey" : "NoSuchBucket";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 411:
      return "MissingContentLength";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    case 429:
      return "SlowDown";
    case 500:
      return "InternalError";
    case 501:
      return "NotImplemented";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "InternalError" : `HTTP${status}`;
  }
}

const MAX_MESSAGE_CHARS = 512;

/**
 * Keeps a server's message only when it is safe to show: no secret, nothing that looks like an
 * echoed StringToSign or CanonicalRequest, bounded length. Otherwise the table's message is used.
 */
function safeMessage(message: string | undefined, secrets: readonly string[]): string | undefined {
  if (message === undefined) return undefined;
  const m = message.trim();
  if (m === "" || m.length > MAX_MESSAGE_CHARS) return undefined;
  if (/StringToSign|CanonicalRequest|AWS4-HMAC-SHA256|Signature=/i.test(m)) return undefined;
  for (const secret of secrets) if (secret !== "" && m.includes(secret)) return undefined;
  return m;
}

/** What the client knows about a failed answer when mapping it to an error. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  /** The (bounded) error body, empty for HEAD. */
  body: Buffer;
  bucket?: string;
  key?: string;
  /** Strings that must never appear in the error (the secret key, the session token). */
  secrets: readonly string[];
}

/**
 * Maps a non-2xx answer to an {@link S3ClientError}: the Error document's code when there is
 * one, otherwise MinIO's `x-minio-error-code` header, otherwise a code derived from the status
 * and whether the request named a key (a HEAD 404 is NoSuchKey on an object, NoSuchBucket on a
 * bucket). Only whitelisted fields are read (see parseErrorDocument).
 */
export function errorFromAnswer(answer: ErrorAnswer): S3ClientError {
  let code: string | undefined;
  let message: string | undefined;
  let requestId = answer.headers["x-amz-request-id"];
  let hostId = answer.headers["x-amz-id-2"];
  let resource: string | undefined;
  if (answer.body.length > 0) {
    try {
      const doc = parseErrorDocument(answer.body);
      code = doc.code;
      message = doc.message;
      requestId = doc.requestId ?? requestId;
      hostId = doc.hostId ?? hostId;
      resource = doc.resource;
    } catch {
      // Not an S3 Error document (a proxy page, a truncated body): fall back to the status.
    }
  }
  code ??= answer.headers["x-minio-error-code"] ?? answer.headers["x-amz-error-code"];
  message ??= answer.headers["x-minio-error-desc"]?.replace(/^"|"$/g, "");
  if (code === undefined || !/^[A-Za-z0-9.]{1,64}$/.test(code)) {
    code = codeForStatus(answer.status, answer.key !== undefined && answer.key !== "");
    message = undefined;
  }
  return new S3ClientError(code, {
    status: answer.status,
    message: safeMessage(message, answer.secrets),
    requestId,
    hostId,
    bucket: answer.bucket,
    key: answer.key,
    resource: resource !== undefined ? safeMessage(resource, answer.secrets) : undefined,
  });
}
