/**
 * The SigV4 signing key: kSecret → kDate → kRegion → kService → kSigning, four HMAC-SHA256 steps
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "Signing key").
 *
 * The key depends only on (secret, date, region, service), so a busy gateway derives it once per
 * credential and day: a small LRU keeps the recent ones and bounds memory whatever the traffic.
 */
import { createHmac } from "node:crypto";
import { SCOPE_TERMINATOR } from "./sigv4-canonical.js";

/** How many derived keys are kept; a gateway sees a handful of credentials per day. */
const MAX_CACHED_KEYS = 128;

// Map iteration order is insertion order: re-inserting on a hit makes the first entry the least
// recently used one, which is the one to evict.
const cache = new Map<string, Buffer>();

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** HMAC chain kSecret→kDate→kRegion→kService→kSigning, cached per (secret,date,region,service) in a small bounded LRU. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  // NUL cannot appear in any of the four parts of a well-formed scope, so the key is unambiguous.
  const id = `${secret}\0${date}\0${region}\0${service}`;
  const hit = cache.get(id);
  if (hit !== undefined) {
    cache.delete(id);
    cache.set(id, hit);
    // A copy: the cached key must not be changed by a caller writing into the returned Buffer.
    return Buffer.from(hit);
  }
  const kDate = hmac("AWS4" + secret, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const kSigning = hmac(kService, SCOPE_TERMINATOR);
  cache.set(id, kSigning);
  if (cache.size > MAX_CACHED_KEYS) {
    const oldest = cache.keys().next();
    if (oldest.done !== true) cache.delete(oldest.value);
  }
  return Buffer.from(kSigning);
}

/** How many signing keys the cache holds now (for tests of its bound). */
export function signingKeyCacheSize(): number {
  return cache.size;
}
