/**
 * Which request headers and query parameters travel upstream, and which response headers come
 * back. Hop-by-hop headers (RFC 9110 §7.6.1) and the headers a `Connection` field names belong
 * to one connection; the client's authentication belongs to the client's signature; the
 * aws-chunked framing is decoded by the gateway (PITFALLS.md, "SigV4 verification" and "URLs
 * and hosts").
 */
import type { QueryParam } from "../../s3/sigv4-canonical.js";

/** Hop-by-hop headers, never forwarded in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers dropped besides the hop-by-hop ones: the client's authentication (the signer
 * writes its own), the framing of the client's body (the gateway sends a plain body with its
 * own Content-Length), `expect` (answered by the gateway), and forwarding hints a backend could
 * use to pick another bucket than the one authorized (MinIO reads X-Forwarded-Host).
 */
const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "authorization",
  "x-amz-date",
  "date",
  "x-amz-content-sha256",
  "x-amz-security-token",
  "expect",
  "content-length",
  "x-amz-decoded-content-length",
  "x-amz-trailer",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-real-ip",
]);

/**
 * Presigned-URL authentication parameters, SigV4 and SigV2 (`AWSAccessKeyId`, `Signature`,
 * `Expires`); the gateway re-signs in the header form.
 */
export const PRESIGN_QUERY_PARAMS: ReadonlySet<string> = new Set([
  "AWSAccessKeyId",
  "Signature",
  "Expires",
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
  "X-Amz-Security-Token",
  "X-Amz-Content-Sha256",
]);

/** The names listed in `Connection` header values (lower case). */
function connectionNames(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) {
    for (const name of v.split(",")) {
      const n = name.trim().toLowerCase();
      if (n !== "") out.add(n);
    }
  }
  return out;
}

/** Removes `aws-chunked` from a Content-Encoding value; undefined when nothing is left. */
export function stripAwsChunked(value: string): string | undefined {
  const kept = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "" && s.toLowerCase() !== "aws-chunked");
  return kept.length === 0 ? undefined : kept.join(",");
}

/**
 * The client's headers to send upstream (lower-case names, repeats joined with `,`), minus
 * hop-by-hop, Connection-named, authentication, framing and forwarding headers, with
 * `aws-chunked` taken out of Content-Encoding. Values stay as Node gives them (one char per
 * wire byte), so UTF-8 metadata goes out byte for byte.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[]): Record<string, string> {
  const connection: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === "connection")
      connection.push(rawHeaders[i + 1] as string);
  }
  const named = connectionNames(connection);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || DROPPED_REQUEST_HEADERS.has(name) || named.has(name)) continue;
    if (name.startsWith(":")) continue; // HTTP/2 pseudo-headers
    const value = rawHeaders[i + 1] as string;
    const prev = out[name];
    out[name] = prev === undefined ? value : `${prev},${value}`;
  }
  // A checksum sent in the aws-chunked trailer was verified by the gateway while decoding, and
  // a plain upstream body has no trailer to carry it: without it, the algorithm header alone
  // makes a backend refuse the request (versitygw: "x-amz-sdk-checksum-algorithm specified,
  // but no corresponding x-amz-checksum-* or x-amz-trailer headers were found").
  if (hasTrailer(rawHeaders)) delete out["x-amz-sdk-checksum-algorithm"];
  const encoding = out["content-encoding"];
  if (encoding !== undefined) {
    const stripped = stripAwsChunked(encoding);
    if (stripped === undefined) delete out["content-encoding"];
    else out["content-encoding"] = stripped;
  }
  return out;
}

function hasTrailer(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === "x-amz-trailer") return true;
  }
  return false;
}

/** The query pairs to send upstream: every parameter except presigned authentication ones. */
export function upstreamQuery(params: readonly QueryParam[]): [string, string][] {
  const out: [string, string][] = [];
  for (const p of params) if (!PRESIGN_QUERY_PARAMS.has(p.name)) out.push([p.name, p.value]);
  return out;
}

/**
 * Response headers never relayed: hop-by-hop ones, the backend's identity (our own
 * `x-amz-request-id` replaces its ids), and the body framing Node sets itself.
 */
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  "x-amz-request-id",
  "x-amz-id-2",
  "server",
  "date",
  "x-minio-error-code",
  "x-minio-error-desc",
]);

/**
 * The backend's response headers to relay, from undici's header object (lower-case names;
 * arrays for repeated headers): hop-by-hop and Connection-named headers and backend identity
 * removed.
 */
export function relayedResponseHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const connection = headers["connection"];
  const named = connectionNames(
    connection === undefined ? [] : Array.isArray(connection) ? connection : [connection],
  );
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || DROPPED_RESPONSE_HEADERS.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Headers of a backend error answer worth keeping on our re-rendered error: they carry facts a
 * client acts on (the bucket's region on a redirect, the range of a 416, a delete marker, when
 * to retry), never credentials.
 */
export const ERROR_HEADERS_KEPT: readonly string[] = [
  "x-amz-bucket-region",
  "content-range",
  "allow",
  "retry-after",
  "x-amz-delete-marker",
  "x-amz-version-id",
  "last-modified",
  "etag",
];
