/**
 * Server-side SigV4 verification of S3 requests, header and presigned forms, from the request
 * exactly as it arrived (request line and raw headers), never from a framework's parsed view.
 *
 * Follows https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html, and the error
 * codes S3 answers with (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
 * The rules and why they matter are in the project's PITFALLS.md, section "SigV4 verification".
 * The body is not read here: the body pipeline checks a hex payload hash and the aws-chunked
 * chain.
 */
import { timingSafeEqual } from "node:crypto";
import { S3Error } from "./errors.js";
import {
  SCOPE_TERMINATOR,
  SIGV4_ALGORITHM,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
  canonicalHeaders,
  canonicalQueryFromParams,
  canonicalRequest,
  canonicalUriFromRaw,
  collectHeaders,
  credentialScope,
  formatAmzDate,
  parseAmzDate,
  parseRawQuery,
  rawHeaderPairs,
  signature,
  stringToSign,
  type QueryParam,
} from "./sigv4-canonical.js";
import type {
  ChunkSigningContext,
  IncomingSigV4Request,
  PayloadMode,
  VerifiedRequest,
} from "./sigv4-types.js";
import { signingKey } from "./signing-key.js";
import { InvalidPercentEncodingError } from "./uri-encode.js";

/** How to verify: who may sign, for which region, and the clock. */
export interface VerifyOptions {
  /** Secret for an access key, or undefined when unknown. */
  lookupSecret: (accessKeyId: string) => string | undefined;
  /** The region we serve; a scope with another region → AuthorizationHeaderMalformed. */
  region: string;
  /** The server's clock; the current time unless given. */
  now?: Date;
  /** Default 15 minutes. */
  maxSkewMs?: number;
}

/** The only service this verifier serves. */
const SERVICE = "s3";
/** S3 allows 15 minutes of clock difference either way. */
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
/** Presigned URLs live at most 7 days. */
const MAX_EXPIRES_SECONDS = 604_800;

/** Query parameters of SigV4 presigned URLs. */
const Q_ALGORITHM = "X-Amz-Algorithm";
const Q_CREDENTIAL = "X-Amz-Credential";
const Q_DATE = "X-Amz-Date";
const Q_EXPIRES = "X-Amz-Expires";
const Q_SIGNED_HEADERS = "X-Amz-SignedHeaders";
const Q_SIGNATURE = "X-Amz-Signature";
const Q_CONTENT_SHA256 = "X-Amz-Content-Sha256";
const OMIT_SIGNATURE: ReadonlySet<string> = new Set([Q_SIGNATURE]);

const STREAMING_MODES: ReadonlyMap<string, PayloadMode> = new Map([
  [STREAMING_SIGNED, "streaming-signed"],
  [STREAMING_SIGNED_TRAILER, "streaming-signed-trailer"],
  [STREAMING_UNSIGNED_TRAILER, "streaming-unsigned-trailer"],
]);

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
/** An HTTP field name (RFC 9110 token), lower case as SigV4 requires in SignedHeaders. */
const SIGNED_HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** `AWS4-HMAC-SHA256` followed by whitespace, the start of a SigV4 Authorization header. */
const SIGV4_PREFIX = new RegExp(`^${SIGV4_ALGORITHM}[ \t]`);

/** Which authentication form a request uses; drives which error codes apply. */
type AuthForm = "header" | "presigned";

/** Verifies a request from its raw request line and raw headers; throws S3Error. Does not read the body. */
export function verifySigV4(req: IncomingSigV4Request, opts: VerifyOptions): VerifiedRequest {
  const { rawPath, rawQuery } = splitTarget(req.rawUrl);
  let params: QueryParam[];
  let canonicalUri: string;
  try {
    params = parseRawQuery(rawQuery);
    canonicalUri = canonicalUriFromRaw(rawPath);
  } catch (err) {
    if (err instanceof InvalidPercentEncodingError) throw new S3Error("InvalidURI");
    throw err;
  }
  const pairs = rawHeaderPairs(req.rawHeaders);
  const authValues = pairs.filter(([n]) => n.toLowerCase() === "authorization").map(([, v]) => v);
  const queryV4 = params.some(
    (p) => p.name === Q_ALGORITHM || p.name === Q_CREDENTIAL || p.name === Q_SIGNATURE,
  );
  const queryV2 = params.some((p) => p.name === "AWSAccessKeyId" || p.name === "Signature");

  if (authValues.length > 0 && (queryV4 || queryV2)) {
    throw new S3Error("InvalidArgument", {
      message:
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
      extra: { ArgumentName: "Authorization" },
    });
  }
  const headers = collectHeaders(pairs);
  // Over HTTP/2 the host arrives as the :authority pseudo-header; clients sign it as `host`.
  const authority = headers.get(":authority");
  if (!headers.has("host") && authority !== undefined) headers.set("host", authority);
  const ctx: RequestContext = {
    method: req.method,
    canonicalUri,
    params,
    headers,
    opts,
    now: opts.now ?? new Date(),
    maxSkewMs: opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS,
  };
  if (authValues.length > 0) return verifyHeaderAuth(authValues, ctx);
  if (queryV4) return verifyPresigned(ctx);
  if (queryV2) throw sigV2Refused();
  throw new S3Error("AccessDenied");
}

/** What every step of a verification needs to know about the request. */
interface RequestContext {
  readonly method: string;
  readonly canonicalUri: string;
  readonly params: readonly QueryParam[];
  /** Lower-case name → canonical value (trimmed, collapsed, repeats joined with `,`). */
  readonly headers: ReadonlyMap<string, string>;
  readonly opts: VerifyOptions;
  readonly now: Date;
  readonly maxSkewMs: number;
}

/**
 * Splits the request-target into raw path and raw query. Origin-form (`/path?query`) is what
 * clients send; absolute-form (`http://host/path`) is accepted as HTTP/1.1 requires.
 */
function splitTarget(rawUrl: string): { rawPath: string; rawQuery: string } {
  let target = rawUrl;
  if (!target.startsWith("/")) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(target);
    if (m === null) throw new S3Error("InvalidURI");
    target = target.slice(m[0].length);
    if (!target.startsWith("/")) target = "/" + target;
  }
  const q = target.indexOf("?");
  if (q < 0) return { rawPath: target, rawQuery: "" };
  return { rawPath: target.slice(0, q), rawQuery: target.slice(q + 1) };
}

/**
 * SigV2 is refused with the message s3cmd and old SDKs understand; InvalidArgument would make
 * s3cmd retry with V2 forever (PITFALLS.md).
 */
function sigV2Refused(): S3Error {
  return new S3Error("InvalidRequest", {
    message:
      "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
  });
}

/** The header form's error for a malformed part, or the query form's. */
function malformed(form: AuthForm, detail: string, extra?: Record<string, string>): S3Error {
  if (form === "header") {
    return new S3Error("AuthorizationHeaderMalformed", {
      message: `The authorization header is malformed; ${detail}`,
      ...(extra === undefined ? {} : { extra }),
    });
  }
  return new S3Error("AuthorizationQueryParametersError", {
    message: detail,
    ...(extra === undefined ? {} : { extra }),
  });
}

/** A parsed credential: access key and scope parts. */
interface Credential {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly scope: string;
}

/** Parses `AKID/YYYYMMDD/region/s3/aws4_request` and checks the scope against what we serve. */
function parseCredential(value: string, form: AuthForm, opts: VerifyOptions): Credential {
  const parts = value.split("/");
  const prefix = form === "header" ? "" : "Error parsing the X-Amz-Credential parameter; ";
  if (parts.length < 5 || parts[0] === "") {
    throw malformed(
      form,
      `${prefix}the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  const [date, region, service, terminator] = parts.slice(-4) as [string, string, string, string];
  const accessKeyId = parts.slice(0, -4).join("/");
  if (!/^\d{8}$/.test(date)) {
    throw malformed(
      form,
      `${prefix}incorrect date format "${date}". This date in the credential must be in the format "yyyyMMdd".`,
    );
  }
  if (region !== opts.region) {
    throw malformed(form, `${prefix}the region '${region}' is wrong; expecting '${opts.region}'`, {
      Region: opts.region,
    });
  }
  if (service !== SERVICE) {
    throw malformed(
      form,
      `${prefix}incorrect service "${service}". This endpoint belongs to "${SERVICE}".`,
    );
  }
  if (terminator !== SCOPE_TERMINATOR) {
    throw malformed(
      form,
      `${prefix}incorrect terminal "${terminator}". This endpoint uses "${SCOPE_TERMINATOR}".`,
    );
  }
  return { accessKeyId, date, region, scope: credentialScope(date, region, service) };
}

/** Parses `SignedHeaders` (`host;x-amz-date`): lower-case field names, no empties or repeats. */
function parseSignedHeaders(value: string, form: AuthForm): string[] {
  const names = value.split(";");
  const seen = new Set<string>();
  for (const name of names) {
    if (!SIGNED_HEADER_NAME.test(name) || seen.has(name)) {
      throw malformed(
        form,
        form === "header"
          ? "the SignedHeaders list is not valid."
          : "X-Amz-SignedHeaders is not a valid list of lower-case header names.",
      );
    }
    seen.add(name);
  }
  return names;
}

/** Fields of an `Authorization: AWS4-HMAC-SHA256 …` header. */
interface AuthorizationFields {
  readonly credential: string;
  readonly signedHeaders: string;
  readonly signature: string;
}

/** Splits `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (commas, any spacing). */
function parseAuthorization(value: string): AuthorizationFields {
  const rest = value.slice(SIGV4_ALGORITHM.length);
  const fields = new Map<string, string>();
  for (const part of rest.split(",")) {
    const item = part.trim();
    const eq = item.indexOf("=");
    const name = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || fields.has(name)) {
      throw malformed(
        "header",
        `the ${name === "" ? "Authorization" : name} component is not valid.`,
      );
    }
    fields.set(name, item.slice(eq + 1));
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const sig = fields.get("Signature");
  if (
    credential === undefined ||
    signedHeaders === undefined ||
    sig === undefined ||
    fields.size !== 3
  ) {
    throw malformed(
      "header",
      "it must have exactly the components Credential, SignedHeaders and Signature.",
    );
  }
  return { credential, signedHeaders, signature: sig };
}

function verifyHeaderAuth(authValues: readonly string[], ctx: RequestContext): VerifiedRequest {
  if (authValues.length > 1) throw malformed("header", "more than one Authorization header.");
  const value = (authValues[0] as string).trim();
  if (/^AWS[ \t]/.test(value)) throw sigV2Refused();
  if (!SIGV4_PREFIX.test(value)) {
    throw new S3Error("InvalidArgument", {
      message: "Unsupported Authorization Type",
      extra: { ArgumentName: "Authorization" },
    });
  }
  const fields = parseAuthorization(value);
  const cred = parseCredential(fields.credential, "header", ctx.opts);
  const signedHeaders = parseSignedHeaders(fields.signedHeaders, "header");

  // The request time: x-amz-date, else Date (RFC 7231 format).
  const amzDate = ctx.headers.get("x-amz-date");
  let datetime: string;
  let requestTime: Date | undefined;
  if (amzDate !== undefined) {
    requestTime = parseAmzDate(amzDate);
    datetime = amzDate;
  } else {
    const httpDate = ctx.headers.get("date");
    const ms = httpDate === undefined ? NaN : Date.parse(httpDate);
    requestTime = Number.isNaN(ms) ? undefined : new Date(ms);
    datetime = requestTime === undefined ? "" : formatAmzDate(requestTime);
  }
  if (requestTime === undefined) {
    throw new S3Error("AccessDenied", {
      message: "AWS authentication requires a valid Date or x-amz-date header",
    });
  }
  if (datetime.slice(0, 8) !== cred.date) {
    throw malformed("header", "Invalid credential date. Date is not the same as X-Amz-Date.");
  }

  const secret = lookupOrThrow(cred.accessKeyId, ctx.opts);

  // x-amz-content-sha256 is mandatory with header auth; S3 answers its absence with
  // InvalidRequest "Missing required header for this request: x-amz-content-sha256".
  const contentSha = ctx.headers.get("x-amz-content-sha256");
  if (contentSha === undefined) {
    throw new S3Error("InvalidRequest", {
      message: "Missing required header for this request: x-amz-content-sha256",
    });
  }
  const payload = classifyPayload(contentSha);
  if (!signedHeaders.includes("x-amz-content-sha256")) {
    throw new S3Error("InvalidRequest", {
      message: "header 'x-amz-content-sha256' must be included in signature",
    });
  }
  requireSigned(signedHeaders, ctx.headers);

  if (payload.mode.startsWith("streaming-")) checkStreaming(ctx);

  checkSkew(requestTime, ctx, datetime);

  const key = signingKey(secret, cred.date, cred.region, SERVICE);
  const computed = computeSignature(key, datetime, cred.scope, {
    ctx,
    signedHeaders,
    canonicalQuery: canonicalQueryFromParams(ctx.params),
    payloadHash: contentSha,
  });
  checkSignature(computed, fields.signature, cred.accessKeyId);

  const chunkContext: ChunkSigningContext | undefined =
    payload.mode === "streaming-signed" || payload.mode === "streaming-signed-trailer"
      ? { signingKey: key, datetime, scope: cred.scope, seedSignature: computed }
      : undefined;
  return {
    accessKeyId: cred.accessKeyId,
    authType: "header",
    payload: payload.mode,
    ...(payload.sha256 === undefined ? {} : { payloadSha256: payload.sha256 }),
    signedHeaders,
    ...(chunkContext === undefined ? {} : { chunkContext }),
    region: cred.region,
  };
}

function verifyPresigned(ctx: RequestContext): VerifiedRequest {
  const q = new Map<string, string>();
  for (const p of ctx.params) {
    if (!p.name.startsWith("X-Amz-")) continue;
    if (q.has(p.name)) {
      throw new S3Error("AuthorizationQueryParametersError", {
        message: `Query-string authentication requires a single ${p.name} parameter.`,
      });
    }
    q.set(p.name, p.value);
  }
  const algorithm = q.get(Q_ALGORITHM);
  const credential = q.get(Q_CREDENTIAL);
  const amzDate = q.get(Q_DATE);
  const expires = q.get(Q_EXPIRES);
  const signedHeadersValue = q.get(Q_SIGNED_HEADERS);
  const provided = q.get(Q_SIGNATURE);
  if (
    algorithm === undefined ||
    credential === undefined ||
    amzDate === undefined ||
    expires === undefined ||
    signedHeadersValue === undefined ||
    provided === undefined
  ) {
    throw new S3Error("AuthorizationQueryParametersError", {
      message:
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    });
  }
  if (algorithm !== SIGV4_ALGORITHM) {
    throw new S3Error("AuthorizationQueryParametersError", {
      message: `X-Amz-Algorithm only supports "${SIGV4_ALGORITHM}"`,
    });
  }
  const cred = parseCredential(credential, "presigned", ctx.opts);
  const requestTime = parseAmzDate(amzDate);
  if (requestTime === undefined) {
    throw new S3Error("AuthorizationQueryParametersError", {
      message: "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    });
  }
  if (amzDate.slice(0, 8) !== cred.date) {
    throw new S3Error("AuthorizationQueryParametersError", {
      message: "Invalid credential date. Date is not the same as X-Amz-Date.",
    });
  }
  // S3's own messages for each way X-Amz-Expires can be wrong (clients match on them).
  const expiresSeconds = /^-?\d{1,16}$/.test(expires) ? Number(expires) : NaN;
  if (!(expiresSeconds >= 1 && expiresSeconds <= MAX_EXPIRES_SECONDS)) {
    throw new S3Error("AuthorizationQueryParametersError", {
      message: Number.isNaN(expiresSeconds)
        ? "X-Amz-Expires should be a number"
        : expiresSeconds < 0
          ? "X-Amz-Expires must be non-negative"
          : expiresSeconds > MAX_EXPIRES_SECONDS
            ? "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"
            : "X-Amz-Expires must be an integer number of seconds from 1 to 604800",
    });
  }
  const signedHeaders = parseSignedHeaders(signedHeadersValue, "presigned");

  const secret = lookupOrThrow(cred.accessKeyId, ctx.opts);
  requireSigned(signedHeaders, ctx.headers);

  // A presigned URL carries no body hash unless the signer put one in the query (or in a signed
  // header); otherwise the canonical request ends with UNSIGNED-PAYLOAD.
  const declared = q.get(Q_CONTENT_SHA256) ?? ctx.headers.get("x-amz-content-sha256");
  const payloadHash = declared ?? UNSIGNED_PAYLOAD;
  const payload = classifyPayload(payloadHash);
  if (payload.mode !== "hex" && payload.mode !== "unsigned") {
    throw new S3Error("InvalidArgument", {
      message: "A presigned URL cannot carry a streaming (aws-chunked) payload.",
      extra: { ArgumentName: "x-amz-content-sha256" },
    });
  }

  const nowMs = ctx.now.getTime();
  if (requestTime.getTime() - nowMs > ctx.maxSkewMs) throw skewed(amzDate, ctx);
  const expiresAt = requestTime.getTime() + expiresSeconds * 1000;
  if (nowMs > expiresAt) {
    throw new S3Error("AccessDenied", {
      message: "Request has expired",
      extra: {
        "X-Amz-Expires": String(expiresSeconds),
        Expires: new Date(expiresAt).toISOString(),
        ServerTime: ctx.now.toISOString(),
      },
    });
  }

  const key = signingKey(secret, cred.date, cred.region, SERVICE);
  const computed = computeSignature(key, amzDate, cred.scope, {
    ctx,
    signedHeaders,
    canonicalQuery: canonicalQueryFromParams(ctx.params, { omit: OMIT_SIGNATURE }),
    payloadHash,
  });
  checkSignature(computed, provided, cred.accessKeyId);

  return {
    accessKeyId: cred.accessKeyId,
    authType: "presigned",
    payload: payload.mode,
    ...(payload.sha256 === undefined ? {} : { payloadSha256: payload.sha256 }),
    signedHeaders,
    region: cred.region,
  };
}

function lookupOrThrow(accessKeyId: string, opts: VerifyOptions): string {
  const secret = opts.lookupSecret(accessKeyId);
  if (secret === undefined) {
    throw new S3Error("InvalidAccessKeyId", { extra: { AWSAccessKeyId: accessKeyId } });
  }
  return secret;
}

/** The payload mode named by an `x-amz-content-sha256` value; anything else is refused. */
function classifyPayload(value: string): { mode: PayloadMode; sha256?: string } {
  if (HEX_SHA256.test(value)) return { mode: "hex", sha256: value.toLowerCase() };
  if (value === UNSIGNED_PAYLOAD) return { mode: "unsigned" };
  const streaming = STREAMING_MODES.get(value);
  if (streaming !== undefined) return { mode: streaming };
  throw new S3Error("InvalidArgument", {
    message:
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
    extra: { ArgumentName: "x-amz-content-sha256" },
  });
}

/**
 * `host` and every `x-amz-*` header present must be signed. An unsigned x-amz-* header could be
 * added by anyone holding a presigned URL or replaying a request: an unsigned
 * `x-amz-copy-source` turns a presigned PUT into a copy of anything the gateway can read
 * (PITFALLS.md, the confused-deputy advisories in Ceph RGW, RustFS, SeaweedFS, s3proxy).
 */
function requireSigned(
  signedHeaders: readonly string[],
  headers: ReadonlyMap<string, string>,
): void {
  const signed = new Set(signedHeaders);
  const missing: string[] = [];
  if (!signed.has("host")) missing.push("host");
  for (const name of headers.keys()) {
    if (name.startsWith("x-amz-") && !signed.has(name)) missing.push(name);
  }
  if (missing.length > 0) {
    throw new S3Error("AccessDenied", {
      message: "There were headers present in the request which were not signed",
      extra: { HeadersNotSigned: missing.join(", ") },
    });
  }
}

/**
 * aws-chunked bodies are only for PutObject and UploadPart (both PUT), and the decoder needs
 * the decoded length up front
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html).
 */
function checkStreaming(ctx: RequestContext): void {
  if (ctx.method !== "PUT") {
    throw new S3Error("InvalidRequest", {
      message: "A streaming (aws-chunked) payload is only allowed on PutObject and UploadPart.",
    });
  }
  const decoded = ctx.headers.get("x-amz-decoded-content-length");
  if (decoded === undefined) {
    throw new S3Error("MissingContentLength", {
      message: "You must provide the x-amz-decoded-content-length header with a streaming payload.",
    });
  }
  if (!/^\d{1,16}$/.test(decoded)) {
    throw new S3Error("InvalidArgument", {
      message: "x-amz-decoded-content-length must be a non-negative integer.",
      extra: { ArgumentName: "x-amz-decoded-content-length" },
    });
  }
}

function skewed(requestTimeText: string, ctx: RequestContext): S3Error {
  return new S3Error("RequestTimeTooSkewed", {
    extra: {
      RequestTime: requestTimeText,
      ServerTime: ctx.now.toISOString(),
      MaxAllowedSkewMilliseconds: String(ctx.maxSkewMs),
    },
  });
}

function checkSkew(requestTime: Date, ctx: RequestContext, requestTimeText: string): void {
  if (Math.abs(requestTime.getTime() - ctx.now.getTime()) > ctx.maxSkewMs) {
    throw skewed(requestTimeText, ctx);
  }
}

/** What {@link computeSignature} needs besides key, time and scope. */
interface SignatureInputs {
  readonly ctx: RequestContext;
  readonly signedHeaders: readonly string[];
  readonly canonicalQuery: string;
  readonly payloadHash: string;
}

function computeSignature(
  key: Buffer,
  datetime: string,
  scope: string,
  inputs: SignatureInputs,
): string {
  const creq = canonicalRequest({
    method: inputs.ctx.method,
    canonicalUri: inputs.ctx.canonicalUri,
    canonicalQuery: inputs.canonicalQuery,
    canonicalHeaders: canonicalHeaders(inputs.ctx.headers, inputs.signedHeaders),
    signedHeaders: inputs.signedHeaders,
    payloadHash: inputs.payloadHash,
  });
  return signature(key, stringToSign(datetime, scope, wireBytes(creq)));
}

/**
 * The canonical request as the bytes the client hashed. Node hands header values over as latin1
 * text (one char per wire byte), so a UTF-8 `x-amz-meta-*` value must be hashed byte for byte,
 * not re-encoded; everything else in the canonical request is ASCII. A caller that passes real
 * Unicode (a char above U+00FF) gets UTF-8.
 */
function wireBytes(creq: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\xff]/.test(creq) ? Buffer.from(creq, "utf8") : Buffer.from(creq, "latin1");
}

/** Constant-time comparison; the lengths are checked first because timingSafeEqual throws. */
function checkSignature(computed: string, provided: string, accessKeyId: string): void {
  const ok =
    HEX_SIGNATURE.test(provided) &&
    provided.length === computed.length &&
    timingSafeEqual(Buffer.from(computed, "latin1"), Buffer.from(provided, "latin1"));
  if (!ok) {
    // Never the string to sign or the canonical request: they help an attacker, not a user.
    throw new S3Error("SignatureDoesNotMatch", { extra: { AWSAccessKeyId: accessKeyId } });
  }
}
