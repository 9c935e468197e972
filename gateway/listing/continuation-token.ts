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
 * Format: `base64url(payload) "." base64url(mac)`, payload = version byte 1 then the position
 * in UTF-8. The position is a key of the bucket the client can list anyway, so it is not
 * encrypted; the MAC makes it impossible to invent or to carry to another listing.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { S3Error } from "../../s3/errors.js";

const VERSION = 1;
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

/** Seals the position `after` into a continuation token. */
export function sealContinuationToken(key: Buffer, binding: TokenBinding, after: string): string {
  const payload = Buffer.concat([Buffer.from([VERSION]), Buffer.from(after, "utf8")]);
  return `${payload.toString("base64url")}.${mac(key, binding, payload).toString("base64url")}`;
}

function invalidToken(token: string): S3Error {
  return new S3Error("InvalidArgument", {
    message: "The continuation token provided is incorrect",
    extra: { ArgumentName: "continuation-token", ArgumentValue: token.slice(0, 256) },
  });
}

/** Opens a token sealed by {@link sealContinuationToken}; InvalidArgument unless it verifies. */
export function openContinuationToken(key: Buffer, binding: TokenBinding, token: string): string {
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
  if (payload[0] !== VERSION) throw invalidToken(token);
  return payload.subarray(1).toString("utf8");
}
