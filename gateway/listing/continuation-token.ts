/**
 * The ListObjectsV2 continuation token of a merged listing: the position to resume after,
 * sealed with an HMAC-SHA256 under the gateways' shared listing secret and bound to the bucket,
 * the operation and the query parameters that define the listing (prefix, delimiter). A
 * forged, altered or foreign token (another bucket, another prefix or delimiter, another secret)
 * is InvalidArgument, as S3 answers for a token it did not issue.
 *
 * One position serves both sides: the merged listing is one sequence in UTF-8 byte order, and
 * every key at or before the position, on either side, was listed or folded into a listed
 * CommonPrefix. Each side resumes strictly after it, so no key is repeated or skipped.
 *
 * Format: `base64url(payload) "." base64url(mac)`, payload = version byte 2, the listing's
 * 8-byte random id, then the position in UTF-8 (version 1, still accepted, had no id). The id
 * names one listing from its first page to its last, so the backend pages one page parks for
 * the next are only used by that listing (page-cache.ts). The position is a key of the bucket
 * the client can list anyway, so it is not encrypted; the MAC makes it impossible to invent or
 * to carry to another listing.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { S3Error } from "../../s3/errors.js";

const VERSION_WITHOUT_ID = 1;
const VERSION = 2;
/** The bytes of a listing id. */
export const LISTING_ID_BYTES = 8;
const MAC_BYTES = 16;
const DOMAIN = "s3gw merged listing token v1";

/** What a token is bound to: a token sealed for one binding never opens under another. */
export interface TokenBinding {
  readonly bucket: string;
  readonly operation: string;
  readonly prefix: string;
  readonly delimiter?: string;
}

function mac(key: Buffer, binding: TokenBinding, payload: Buffer): Buffer {
  const h = createHmac("sha256", key);
  // Lengths before each field: no two bindings serialise to the same bytes.
  for (const field of [DOMAIN, binding.bucket, binding.operation, binding.prefix]) {
    const bytes = Buffer.from(field, "utf8");
    h.update(`${bytes.length}:`).update(bytes);
  }
  h.update(binding.delimiter === undefined ? "-" : `${Buffer.byteLength(binding.delimiter)}:`);
  if (binding.delimiter !== undefined) h.update(binding.delimiter, "utf8");
  h.update(payload);
  return h.digest().subarray(0, MAC_BYTES);
}

/** What a token carries. */
export interface Continuation {
  /** The position to resume after. */
  readonly after: string;
  /** The listing's id (hex), absent in tokens of the first version. */
  readonly listing?: string;
}

/**
 * Seals the position `after` (and the listing's id, {@link LISTING_ID_BYTES} bytes of hex;
 * a new random one when absent) into a continuation token.
 */
export function sealContinuationToken(
  key: Buffer,
  binding: TokenBinding,
  after: string,
  listing?: string,
): string {
  const id = listing === undefined ? randomBytes(LISTING_ID_BYTES) : Buffer.from(listing, "hex");
  if (id.length !== LISTING_ID_BYTES) throw new Error("a listing id is 8 bytes of hex");
  const payload = Buffer.concat([Buffer.from([VERSION]), id, Buffer.from(after, "utf8")]);
  return `${payload.toString("base64url")}.${mac(key, binding, payload).toString("base64url")}`;
}

function invalidToken(token: string): S3Error {
  return new S3Error("InvalidArgument", {
    message: "The continuation token provided is incorrect",
    extra: { ArgumentName: "continuation-token", ArgumentValue: token.slice(0, 256) },
  });
}

/** Opens a token sealed by {@link sealContinuationToken}: its position. */
export function openContinuationToken(key: Buffer, binding: TokenBinding, token: string): string {
  return openContinuation(key, binding, token).after;
}

/** Opens a token sealed by {@link sealContinuationToken}; InvalidArgument unless it verifies. */
export function openContinuation(key: Buffer, binding: TokenBinding, token: string): Continuation {
  const dot = token.indexOf(".");
  if (dot <= 0 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) throw invalidToken(token);
  const payload = Buffer.from(token.slice(0, dot), "base64url");
  const given = Buffer.from(token.slice(dot + 1), "base64url");
  // Node's base64url decoder ignores stray trailing bits: a token is only accepted in the exact
  // spelling we issued, so that no altered string passes.
  if (
    payload.toString("base64url") !== token.slice(0, dot) ||
    given.toString("base64url") !== token.slice(dot + 1)
  ) {
    throw invalidToken(token);
  }
  const expected = mac(key, binding, payload);
  // timingSafeEqual throws on a length mismatch: check the length first.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw invalidToken(token);
  }
  if (payload[0] === VERSION_WITHOUT_ID) return { after: payload.subarray(1).toString("utf8") };
  if (payload[0] !== VERSION || payload.length < 1 + LISTING_ID_BYTES) throw invalidToken(token);
  return {
    listing: payload.subarray(1, 1 + LISTING_ID_BYTES).toString("hex"),
    after: payload.subarray(1 + LISTING_ID_BYTES).toString("utf8"),
  };
}
