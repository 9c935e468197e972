/**
 * Client-side SigV4: the `Authorization` header form and presigned URLs
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
 *
 * Used by the gateway to re-sign requests with service credentials and by tests to sign what the
 * verifier checks. Every header handed in is signed, so the caller decides what is covered.
 */
import {
  SIGV4_ALGORITHM,
  UNSIGNED_PAYLOAD,
  authorizationHeader,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  collectHeaders,
  credentialScope,
  formatAmzDate,
  signature,
  stringToSign,
} from "./sigv4-canonical.js";
import type { Credentials } from "./sigv4-types.js";
import { signingKey } from "./signing-key.js";
import { uriEncode } from "./uri-encode.js";

/** A request to sign in the `Authorization` header form. */
export interface SignInput {
  /** HTTP method, upper case. */
  method: string;
  /** Canonical URI, already encoded (e.g. from encodeS3Path). */
  path: string;
  /** Decoded query pairs; a valueless parameter has value `""`. */
  query?: ReadonlyArray<readonly [string, string]>;
  /** Lower-case names, must include `host`; every one is signed (see signRequest for the exceptions). */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, `UNSIGNED-PAYLOAD` or a `STREAMING-*` literal. */
  payloadHash: string;
}

/** Where and when to sign. */
export interface SignOptions {
  /** Region of the credential scope. */
  region: string;
  /** Service of the credential scope; `s3` unless given (the AWS test suite uses `service`). */
  service?: string;
  /** Signing time; the current time unless given. */
  now?: Date;
}

/** A request to presign. */
export interface PresignInput {
  /** HTTP method, upper case. */
  method: string;
  /** Scheme, host and port, no path: `https://host:port`. The host is signed. */
  origin: string;
  /** Canonical URI, already encoded (e.g. from encodeS3Path). */
  path: string;
  /** Decoded query pairs to keep in the URL, signed. */
  query?: ReadonlyArray<readonly [string, string]>;
  /** Extra headers the user of the URL must send with exactly these values (signed). */
  headers?: Record<string, string>;
}

/**
 * Headers the signer owns: a caller's copy (e.g. from a request being re-signed) is dropped and
 * replaced by the signer's own value, or left out when there is none (no session token).
 */
const SIGNER_HEADERS = new Set([
  "authorization",
  "x-amz-date",
  "x-amz-security-token",
  "x-amz-content-sha256",
]);

/** The longest validity S3 accepts for a presigned URL: 7 days. */
const MAX_PRESIGN_SECONDS = 604_800;

function lowerCaseHeaders(headers: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (out.has(lower)) throw new TypeError(`header ${lower} given twice`);
    if (SIGNER_HEADERS.has(lower)) continue;
    out.set(lower, value);
  }
  return out;
}

/**
 * Returns the headers to add: authorization, x-amz-date, x-amz-content-sha256, x-amz-security-token (when a session token). All headers in input.headers are signed.
 *
 * `authorization`, `x-amz-date`, `x-amz-content-sha256` and `x-amz-security-token` in
 * `input.headers` are ignored: the returned values replace them.
 */
export function signRequest(
  input: SignInput,
  creds: Credentials,
  opts: SignOptions,
): Record<string, string> {
  const service = opts.service ?? "s3";
  const now = opts.now ?? new Date();
  const datetime = formatAmzDate(now);
  const date = datetime.slice(0, 8);
  const headers = lowerCaseHeaders(input.headers);
  if (!headers.has("host")) throw new TypeError("signRequest: headers must include host");

  const added: Record<string, string> = { "x-amz-date": datetime };
  // S3 requires x-amz-content-sha256 on every request; other services (the generic AWS test
  // suite) do not use it, so it is only added for s3, as the AWS SDKs do.
  if (service === "s3") added["x-amz-content-sha256"] = input.payloadHash;
  if (creds.sessionToken !== undefined) added["x-amz-security-token"] = creds.sessionToken;
  for (const [name, value] of Object.entries(added)) headers.set(name, value);

  const names = [...headers.keys()].sort();
  const canonical = canonicalRequest({
    method: input.method,
    canonicalUri: input.path,
    canonicalQuery: canonicalQuery(input.query ?? []),
    canonicalHeaders: canonicalHeaders(collectHeaders(headers), names),
    signedHeaders: names,
    payloadHash: input.payloadHash,
  });
  const scope = credentialScope(date, opts.region, service);
  const key = signingKey(creds.secretAccessKey, date, opts.region, service);
  const sig = signature(key, stringToSign(datetime, scope, canonical));
  return { ...added, authorization: authorizationHeader(creds.accessKeyId, scope, names, sig) };
}

/**
 * Full presigned URL (X-Amz-Algorithm…X-Amz-Signature), payload UNSIGNED-PAYLOAD.
 *
 * Exception: an `X-Amz-Content-Sha256` pair in `input.query` pins the body's hash, and that
 * value is signed as the payload hash instead.
 */
export function presignUrl(
  input: PresignInput,
  creds: Credentials,
  opts: SignOptions & { expiresSeconds: number },
): string {
  const { expiresSeconds } = opts;
  if (
    !Number.isInteger(expiresSeconds) ||
    expiresSeconds < 1 ||
    expiresSeconds > MAX_PRESIGN_SECONDS
  ) {
    throw new RangeError(
      `presignUrl: expiresSeconds must be an integer in 1..${MAX_PRESIGN_SECONDS}`,
    );
  }
  const origin = new URL(input.origin);
  if (
    (origin.protocol !== "http:" && origin.protocol !== "https:") ||
    origin.pathname !== "/" ||
    origin.search !== "" ||
    origin.username !== "" ||
    origin.password !== ""
  ) {
    throw new TypeError("presignUrl: origin must be http(s)://host[:port] with no path");
  }
  if (!input.path.startsWith("/")) throw new TypeError("presignUrl: path must start with /");

  const service = opts.service ?? "s3";
  const now = opts.now ?? new Date();
  const datetime = formatAmzDate(now);
  const date = datetime.slice(0, 8);
  const scope = credentialScope(date, opts.region, service);

  const headers = lowerCaseHeaders(input.headers ?? {});
  if (headers.has("host")) throw new TypeError("presignUrl: host comes from origin");
  // URL.host drops a default port, exactly as HTTP clients do in the Host header they send.
  headers.set("host", origin.host);
  const names = [...headers.keys()].sort();

  const query: [string, string][] = [...(input.query ?? [])].map(([k, v]) => [k, v]);
  query.push(
    ["X-Amz-Algorithm", SIGV4_ALGORITHM],
    ["X-Amz-Credential", `${creds.accessKeyId}/${scope}`],
    ["X-Amz-Date", datetime],
    ["X-Amz-Expires", String(expiresSeconds)],
    ["X-Amz-SignedHeaders", names.join(";")],
  );
  // S3 wants the session token inside the signed query of a presigned URL.
  if (creds.sessionToken !== undefined) query.push(["X-Amz-Security-Token", creds.sessionToken]);

  const canonicalQs = canonicalQuery(query);
  const canonical = canonicalRequest({
    method: input.method,
    canonicalUri: input.path,
    canonicalQuery: canonicalQs,
    canonicalHeaders: canonicalHeaders(collectHeaders(headers), names),
    signedHeaders: names,
    // A hash pinned in the query is what the canonical request ends with (the verifier reads
    // it the same way); otherwise the body is not covered.
    payloadHash: input.query?.find(([k]) => k === "X-Amz-Content-Sha256")?.[1] ?? UNSIGNED_PAYLOAD,
  });
  const key = signingKey(creds.secretAccessKey, date, opts.region, service);
  const sig = signature(key, stringToSign(datetime, scope, canonical));
  return `${origin.origin}${input.path}?${canonicalQs}&X-Amz-Signature=${uriEncode(sig)}`;
}
