/**
 * The stages of AWS Signature Version 4, one pure function each, shared by the signer and the
 * verifier: canonical URI, canonical query, canonical headers, canonical request, string to
 * sign, signature. Each stage is checked on its own against the official AWS SigV4 test suite
 * (test/fixtures/aws-sig-v4-test-suite) and the S3 worked examples.
 *
 * Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html and
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html.
 */
import { createHash, createHmac } from "node:crypto";
import { percentDecode, uriEncode, uriEncodeBytes } from "./uri-encode.js";

/** The only signing algorithm we accept and produce. */
export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
/** The last element of every credential scope. */
export const SCOPE_TERMINATOR = "aws4_request";
/** `x-amz-content-sha256` value for a body the signature does not cover. */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
/** Hex SHA-256 of the empty string: the payload hash of a request without a body. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** aws-chunked with every chunk signed. */
export const STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/** aws-chunked with signed chunks and a signed trailer. */
export const STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/** aws-chunked with unsigned chunks and a trailer carrying a checksum. */
export const STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/** Lower-case hex SHA-256 of a string (as UTF-8) or of bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC), the SigV4 request timestamp. */
export function formatAmzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** Parses `YYYYMMDDTHHMMSSZ`; undefined when the text is not exactly that or not a real date. */
export function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const date = new Date(t);
  // Reject overflowing fields (month 13, second 61…) rather than let Date roll them over.
  if (formatAmzDate(date) !== s) return undefined;
  return date;
}

/**
 * Canonical URI of an S3 request from the raw path of the request line: percent-decode once,
 * re-encode every byte except `A-Za-z0-9-_.~/`. No dot-segment or `//` normalisation: S3 does
 * not normalise paths (a key may be `a//b` or `../x`). A `+` is a literal plus (`%2B`); raw
 * `'()!*` become `%27%28%29%21%2A`, the form SDKs sign. Non-ASCII characters (a request line
 * Node would refuse, but a caller may pass) are taken as UTF-8.
 * Throws InvalidPercentEncodingError on a malformed escape.
 */
export function canonicalUriFromRaw(rawPath: string): string {
  if (rawPath === "") return "/";
  return uriEncodeBytes(percentDecode(rawPath), { keepSlash: true });
}

/** One query parameter of a raw query string, decoded and in canonical (encoded) form. */
export interface QueryParam {
  /** Decoded name, as UTF-8 text (for reading `X-Amz-*` parameters). */
  readonly name: string;
  /** Decoded value, as UTF-8 text; `""` for a valueless parameter such as `uploads`. */
  readonly value: string;
  /** The name as it goes into the canonical query string. */
  readonly encodedName: string;
  /** The value as it goes into the canonical query string. */
  readonly encodedValue: string;
}

/**
 * Splits a raw query string (after `?`, as on the request line) into parameters: split on `&`,
 * the first `=` separates name and value, both decoded once (a `+` stays a plus), duplicates
 * and order kept, empty segments skipped. Throws InvalidPercentEncodingError on a bad escape.
 */
export function parseRawQuery(rawQuery: string): QueryParam[] {
  const out: QueryParam[] = [];
  if (rawQuery === "") return out;
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    const nameBytes = percentDecode(rawName);
    const valueBytes = percentDecode(rawValue);
    out.push({
      name: nameBytes.toString("utf8"),
      value: valueBytes.toString("utf8"),
      encodedName: uriEncodeBytes(nameBytes),
      encodedValue: uriEncodeBytes(valueBytes),
    });
  }
  return out;
}

/** Options for {@link canonicalQueryFromParams}. */
export interface CanonicalQueryOptions {
  /** Decoded parameter names left out, e.g. `X-Amz-Signature` of a presigned URL. */
  omit?: ReadonlySet<string>;
}

/**
 * Canonical query string from parsed parameters: `name=value` pairs (valueless → `name=`),
 * sorted by encoded name then encoded value, joined with `&`. Sorting the encoded forms is what
 * the AWS SDKs do; all encoded text is ASCII, so string order is byte order.
 */
export function canonicalQueryFromParams(
  params: readonly QueryParam[],
  opts: CanonicalQueryOptions = {},
): string {
  const pairs: [string, string][] = [];
  for (const p of params) {
    if (opts.omit?.has(p.name) === true) continue;
    pairs.push([p.encodedName, p.encodedValue]);
  }
  return joinSorted(pairs);
}

function joinSorted(pairs: [string, string][]): string {
  pairs.sort((a, b) => compareAscii(a[0], b[0]) || compareAscii(a[1], b[1]));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Canonical query string from pairs (already decoded values): encode, sort by key then value. */
export function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  return joinSorted(pairs.map(([k, v]) => [uriEncode(k), uriEncode(v)]));
}

/**
 * Canonical form of one header value: trimmed, inner runs of spaces and tabs collapsed to one
 * space (quoted text included, as the AWS suite's `get-header-value-trim` shows).
 */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/[ \t]+/g, " ");
}

/**
 * Collects header pairs into lower-case name → canonical value; a repeated header's values are
 * joined with `,` in arrival order (the AWS suite's `get-header-key-duplicate`).
 */
export function collectHeaders(pairs: Iterable<readonly [string, string]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [rawName, rawValue] of pairs) {
    const name = rawName.toLowerCase();
    const value = canonicalHeaderValue(rawValue);
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return out;
}

/** Pairs from Node's `rawHeaders` (alternating names and values). */
export function rawHeaderPairs(rawHeaders: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    out.push([rawHeaders[i] as string, rawHeaders[i + 1] as string]);
  }
  return out;
}

/**
 * The canonical headers block: `name:value\n` for each signed header, in the order given (the
 * signer sorts; the verifier uses the client's `SignedHeaders` order, which a correct client
 * sorted). A signed header missing from the request contributes an empty value.
 */
export function canonicalHeaders(
  headers: ReadonlyMap<string, string>,
  signedHeaders: readonly string[],
): string {
  let out = "";
  for (const name of signedHeaders) out += `${name}:${headers.get(name) ?? ""}\n`;
  return out;
}

/** The parts of a canonical request, each already in canonical form. */
export interface CanonicalRequestParts {
  /** HTTP method, upper case. */
  method: string;
  /** From {@link canonicalUriFromRaw} or {@link encodeS3Path}. */
  canonicalUri: string;
  /** From {@link canonicalQuery} or {@link canonicalQueryFromParams}. */
  canonicalQuery: string;
  /** From {@link canonicalHeaders}. */
  canonicalHeaders: string;
  /** Lower-case signed header names; joined with `;`. */
  signedHeaders: readonly string[];
  /** Hex SHA-256 of the body, `UNSIGNED-PAYLOAD` or a `STREAMING-*` literal. */
  payloadHash: string;
}

/** Stage 1: the canonical request text. */
export function canonicalRequest(p: CanonicalRequestParts): string {
  return [
    p.method,
    p.canonicalUri,
    p.canonicalQuery,
    p.canonicalHeaders,
    p.signedHeaders.join(";"),
    p.payloadHash,
  ].join("\n");
}

/** The credential scope `YYYYMMDD/region/service/aws4_request`. */
export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/${SCOPE_TERMINATOR}`;
}

/**
 * Stage 2: the string to sign. `canonical` is the canonical request as text (hashed as UTF-8)
 * or as the exact bytes to hash (the verifier keeps header values as wire bytes).
 */
export function stringToSign(
  datetime: string,
  scope: string,
  canonical: string | Uint8Array,
): string {
  return `${SIGV4_ALGORITHM}\n${datetime}\n${scope}\n${sha256Hex(canonical)}`;
}

/** Stage 3: the hex HMAC-SHA256 of the string to sign under the derived signing key. */
export function signature(signingKey: Uint8Array, toSign: string): string {
  return createHmac("sha256", signingKey).update(toSign, "utf8").digest("hex");
}

/** The `Authorization` header value for a computed signature. */
export function authorizationHeader(
  accessKeyId: string,
  scope: string,
  signedHeaders: readonly string[],
  sig: string,
): string {
  return `${SIGV4_ALGORITHM} Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(";")}, Signature=${sig}`;
}
