/**
 * Positions in a listing, in UTF-8 byte order: where a listing with a prefix and an exclusive
 * start position begins, and how far a listing can jump past every key under a CommonPrefix.
 * Pure functions for any S3 listing merge (no I/O, no framework).
 */
import { compareKeys } from "./key-order.js";

/** S3's longest key, in UTF-8 bytes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html). */
export const MAX_KEY_BYTES = 1024;

/** Where a listing with `prefix` and an exclusive start position starts. */
export type ListingStart =
  /** From the first key under the prefix (no position, or one before the prefix's range). */
  | { readonly kind: "beginning" }
  /** Strictly after `after`, which starts with the prefix. */
  | { readonly kind: "after"; readonly after: string }
  /** Nothing to list: the position lies past every key under the prefix. */
  | { readonly kind: "end" };

/**
 * Normalises an exclusive start position (`start-after`, `marker`, `key-marker`, or a resumed
 * position) against `prefix`. S3 treats any string as a position; MinIO refuses a v1 marker
 * outside the prefix (NotImplemented), so a merge must never pass one down: a position before
 * the prefix's range means "from the beginning", one after it means "nothing".
 */
export function normalizeStart(after: string | undefined, prefix: string): ListingStart {
  if (after === undefined || after === "") return { kind: "beginning" };
  if (after.startsWith(prefix)) return { kind: "after", after };
  // Every key under the prefix starts with it, so it is >= prefix: a position below the prefix
  // excludes none of them, and one above it (not starting with it) excludes all of them.
  return compareKeys(after, prefix) < 0 ? { kind: "beginning" } : { kind: "end" };
}

const TAILS = ["", "\u007f", "\u07ff", "\uffff"];

/**
 * The largest key of at most {@link MAX_KEY_BYTES} bytes that starts with `prefix`, or
 * undefined when `prefix` is longer: as a `start-after` it skips every valid key under
 * `prefix` at once. It is `prefix` followed by U+10FFFF (the largest UTF-8 sequence, F4 8F BF
 * BF) as often as fits, then the largest character of the remaining 1 to 3 bytes; a key under
 * `prefix` is at most this long, and at every byte it can at most equal it.
 */
export function lastKeyUnder(prefix: string): string | undefined {
  const used = Buffer.byteLength(prefix, "utf8");
  if (used > MAX_KEY_BYTES) return undefined;
  const room = MAX_KEY_BYTES - used;
  return prefix + "\u{10ffff}".repeat(Math.floor(room / 4)) + (TAILS[room % 4] as string);
}
