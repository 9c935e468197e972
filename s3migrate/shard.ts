/**
 * Sharding of the key space over hosts: a key belongs to shard
 * `FNV-1a-64(UTF-8 bytes of the key) mod hash-count`. FNV-1a
 * (http://www.isthe.com/chongo/tech/comp/fnv/, 64-bit offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3) is stable across versions, platforms and languages, cheap, and spreads the
 * near-identical keys of a bucket well. Keys are hashed as raw bytes, never normalised.
 */

/** The 64-bit FNV-1a hash of the key's UTF-8 bytes. */
export function keyHash(key: string): bigint {
  // 64-bit arithmetic on two 32-bit halves (BigInt per byte would dominate a million-key run).
  // prime = 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (h << 40) (mod 2^64).
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (const byte of Buffer.from(key, "utf8")) {
    lo = (lo ^ byte) >>> 0;
    const p = lo * 0x1b3; // < 2^41: exact in a double
    const carry = Math.floor(p / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    lo = p >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The shard (0..count-1) a key belongs to. */
export function shardOf(key: string, count: number): number {
  if (count <= 1) return 0;
  return Number(keyHash(key) % BigInt(count));
}
