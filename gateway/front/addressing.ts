/**
 * Addressing: which bucket and key a request names, from the raw request-target and the Host
 * header, for path-style (`https://host/bucket/key`) and virtual-hosted-style
 * (`https://bucket.<domain>/key`) requests
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html).
 *
 * The bucket is taken from the Host header only when the host is a subdomain of a configured
 * domain; `X-Forwarded-Host` is never read (a client could pick another bucket with it). The
 * path is decoded exactly once from the request line (PITFALLS.md, "URLs and hosts").
 */
import { S3Error } from "../../s3/errors.js";
import { InvalidPercentEncodingError, percentDecode } from "../../s3/uri-encode.js";

/** The longest object key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** What a request addresses. */
export interface S3Address {
  /** The bucket name; undefined for service-level requests (ListBuckets). */
  readonly bucket: string | undefined;
  /** The object key, decoded once; undefined for bucket- and service-level requests. */
  readonly key: string | undefined;
  /** Whether the bucket came from the Host header. */
  readonly virtualHost: boolean;
  /** The raw query string (after `?`), exactly as on the request line. */
  readonly rawQuery: string;
}

/** Compiled addressing rules: the configured domains, longest first. */
export interface AddressingRules {
  /** Lower-case base domains without trailing dot, longest first so the most specific wins. */
  readonly domains: readonly string[];
}

/** Precompiles the rules once at start-up (the domains sorted longest first). */
export function addressingRules(domains: readonly string[]): AddressingRules {
  const sorted = [...new Set(domains.map((d) => d.toLowerCase().replace(/\.$/, "")))];
  sorted.sort((a, b) => b.length - a.length);
  return { domains: sorted };
}

// Bucket names as S3 has allowed them over time (legacy buckets may hold upper case and `_`).
// Anything else (`/`, `%`, `..` tricks after decoding) cannot be a bucket and is refused.
const BUCKET_NAME = /^[A-Za-z0-9._-]{1,255}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The host name of a Host header value: lower case, port and one trailing dot removed, IPv6
 * brackets kept (`[::1]`). Undefined for an empty value.
 */
export function hostName(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.lastIndexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h === "" ? undefined : h;
}

/** The bucket a host names under one of the domains, or undefined (path-style). */
export function bucketFromHost(
  host: string | undefined,
  rules: AddressingRules,
): string | undefined {
  const name = hostName(host);
  if (name === undefined || name.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    return undefined; // IP literals are always path-style
  }
  // A configured domain itself is path-style, even when it is a subdomain of another one.
  if (rules.domains.includes(name)) return undefined;
  for (const domain of rules.domains) {
    if (name.length > domain.length + 1 && name.endsWith(`.${domain}`)) {
      return name.slice(0, name.length - domain.length - 1);
    }
  }
  return undefined;
}

/**
 * Resolves a request's bucket and key from its raw request-target and Host header. Throws
 * S3Error: `InvalidURI` (bad escapes, invalid UTF-8), `InvalidBucketName`, `KeyTooLongError`.
 */
export function resolveAddress(
  input: { readonly rawUrl: string; readonly host: string | undefined },
  rules: AddressingRules,
): S3Address {
  let target = input.rawUrl;
  if (!target.startsWith("/")) {
    // absolute-form (RFC 9112 §3.2.2): the request line's authority is not used for routing.
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(target);
    if (m === null) throw new S3Error("InvalidURI");
    target = target.slice(m[0].length) || "/";
  }
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? "" : target.slice(q + 1);

  const hostBucket = bucketFromHost(input.host, rules);
  let rawBucket: string | undefined;
  let rawKey: string | undefined;
  if (hostBucket !== undefined) {
    rawKey = rawPath.length > 1 ? rawPath.slice(1) : undefined;
  } else {
    const rest = rawPath.slice(1);
    const slash = rest.indexOf("/");
    rawBucket = slash < 0 ? rest : rest.slice(0, slash);
    rawKey = slash < 0 ? undefined : rest.slice(slash + 1);
    if (rawBucket === "") rawBucket = undefined;
    if (rawBucket === undefined && rawKey !== undefined) throw new S3Error("InvalidURI");
  }
  const bucket = hostBucket ?? (rawBucket === undefined ? undefined : decodeText(rawBucket));
  if (bucket !== undefined && !BUCKET_NAME.test(bucket)) {
    throw new S3Error("InvalidBucketName", { resource: `/${bucket}` });
  }
  let key: string | undefined;
  if (rawKey !== undefined && rawKey !== "") {
    const bytes = decodeBytes(rawKey);
    if (bytes.length > MAX_KEY_BYTES) {
      throw new S3Error("KeyTooLongError", {
        extra: { MaxSizeAllowed: String(MAX_KEY_BYTES), Size: String(bytes.length) },
      });
    }
    key = utf8(bytes);
  }
  return { bucket, key, virtualHost: hostBucket !== undefined, rawQuery };
}

function decodeBytes(raw: string): Buffer {
  try {
    return percentDecode(raw);
  } catch (err) {
    if (err instanceof InvalidPercentEncodingError) throw new S3Error("InvalidURI");
    throw err;
  }
}

function decodeText(raw: string): string {
  return utf8(decodeBytes(raw));
}

/** S3 keys are UTF-8 text; a key that is not valid UTF-8 could not be re-encoded faithfully. */
function utf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new S3Error("InvalidURI", { message: "The object key is not valid UTF-8." });
  }
}
