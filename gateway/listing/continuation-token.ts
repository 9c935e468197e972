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
 * 8-byte random id, then the position in UTF-8 (version 1, still accepted, had no id); or
 * version 3: the id, then length-prefixed (4 bytes, big-endian) fields: the position, and for
 * the target and then the source either nothing (byte 0) or byte 1, a start-after (byte 0/1,
 * then the field) and the backend's own continuation token (byte 0/1, then the field): where
 * that side can be read again exactly (side-reader.ts resumePosition), so that any gateway
 * resumes it without sending the backend a start-after it may answer wrongly. The id
 * names one listing from its first page to its last, so the backend pages one page parks for
 * the next are only used by that listing (page-cache.ts). The position is a key of the bucket
 * the client can list anyway, so it is not encrypted; the MAC makes it impossible to invent or
 * to carry to another listing.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { S3Error } from "../../s3/errors.js";

const VERSION_WITHOUT_ID = 1;
const VERSION = 2;
const VERSION_WITH_SIDES = 3;
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

/** Where one side can be read again: a start-after and/or the backend's own token. */
export interface SidePosition {
  readonly startAfter?: string;
  readonly token?: string;
}

/** The sides' positions a token may carry. */
export interface SidePositions {
  readonly target?: SidePosition;
  readonly source?: SidePosition;
}

/** What a token carries. */
export interface Continuation {
  /** The position to resume after. */
  readonly after: string;
  /** The listing's id (hex), absent in tokens of the first version. */
  readonly listing?: string;
  /** Where each side can be read again from (version 3). */
  readonly sides?: SidePositions;
}

function field(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function optionalField(value: string | undefined): Buffer {
  return value === undefined ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), field(value)]);
}

function sideField(side: SidePosition | undefined): Buffer {
  if (side === undefined) return Buffer.from([0]);
  return Buffer.concat([
    Buffer.from([1]),
    optionalField(side.startAfter),
    optionalField(side.token),
  ]);
}

/** Reads version 3's fields; undefined when the payload does not hold them exactly. */
function readSides(body: Buffer): { after: string; sides: SidePositions } | undefined {
  let at = 0;
  const readField = (): string | undefined => {
    if (at + 4 > body.length) return undefined;
    const length = body.readUInt32BE(at);
    if (at + 4 + length > body.length) return undefined;
    const value = body.subarray(at + 4, at + 4 + length).toString("utf8");
    at += 4 + length;
    return value;
  };
  const readOptional = (): { ok: boolean; value?: string } => {
    const flag = body[at++];
    if (flag === 0) return { ok: true };
    if (flag !== 1) return { ok: false };
    const value = readField();
    return value === undefined ? { ok: false } : { ok: true, value };
  };
  const readSide = (): { ok: boolean; side?: SidePosition } => {
    const flag = body[at++];
    if (flag === 0) return { ok: true };
    if (flag !== 1) return { ok: false };
    const startAfter = readOptional();
    const token = readOptional();
    if (!startAfter.ok || !token.ok) return { ok: false };
    return {
      ok: true,
      side: {
        ...(startAfter.value === undefined ? {} : { startAfter: startAfter.value }),
        ...(token.value === undefined ? {} : { token: token.value }),
      },
    };
  };
  const after = readField();
  if (after === undefined) return undefined;
  const target = readSide();
  const source = readSide();
  if (!target.ok || !source.ok || at !== body.length) return undefined;
  return {
    after,
    sides: {
      ...(target.side === undefined ? {} : { target: target.side }),
      ...(source.side === undefined ? {} : { source: source.side }),
    },
  };
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
  sides?: SidePositions,
): string {
  const id = listing === undefined ? randomBytes(LISTING_ID_BYTES) : Buffer.from(listing, "hex");
  if (id.length !== LISTING_ID_BYTES) throw new Error("a listing id is 8 bytes of hex");
  const payload =
    sides === undefined || (sides.target === undefined && sides.source === undefined)
      ? Buffer.concat([Buffer.from([VERSION]), id, Buffer.from(after, "utf8")])
      : Buffer.concat([
          Buffer.from([VERSION_WITH_SIDES]),
          id,
          field(after),
          sideField(sides.target),
          sideField(sides.source),
        ]);
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
  if (payload[0] === VERSION_WITH_SIDES && payload.length >= 1 + LISTING_ID_BYTES) {
    const read = readSides(payload.subarray(1 + LISTING_ID_BYTES));
    if (read === undefined) throw invalidToken(token);
    return {
      listing: payload.subarray(1, 1 + LISTING_ID_BYTES).toString("hex"),
      after: read.after,
      sides: read.sides,
    };
  }
  if (payload[0] !== VERSION || payload.length < 1 + LISTING_ID_BYTES) throw invalidToken(token);
  return {
    listing: payload.subarray(1, 1 + LISTING_ID_BYTES).toString("hex"),
    after: payload.subarray(1 + LISTING_ID_BYTES).toString("utf8"),
  };
}
