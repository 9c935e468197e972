/**
 * Incremental hashers for the checksum algorithms of Amazon S3 ("Checking object integrity",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html) and for
 * Content-MD5 (RFC 1864). S3 carries each checksum as the base64 of its big-endian bytes in an
 * `x-amz-checksum-<algorithm>` header or trailer.
 */
import { createHash, type Hash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";

/** A checksum algorithm S3 accepts in `x-amz-checksum-algorithm`/`x-amz-checksum-<alg>`. */
export type ChecksumAlgorithm = "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256";

/** Every digest this module computes: the S3 checksum algorithms plus MD5 for Content-MD5. */
export type DigestAlgorithm = ChecksumAlgorithm | "MD5";

/** The S3 checksum algorithms, in the order S3 documents them. */
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = [
  "CRC32",
  "CRC32C",
  "CRC64NVME",
  "SHA1",
  "SHA256",
];

/** An incremental digest: feed it with `update`, read it once with `digest`. */
export interface ChecksumHasher {
  /** The algorithm this hasher computes. */
  readonly algorithm: DigestAlgorithm;
  /** Adds bytes to the digest; returns the hasher for chaining. */
  update(data: Uint8Array): this;
  /** The digest in the byte order S3 encodes (big-endian for CRCs). Call once. */
  digest(): Buffer;
}

/** Digest length in bytes of each algorithm: what a valid base64 value must decode to. */
export const DIGEST_LENGTHS: Readonly<Record<DigestAlgorithm, number>> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
  MD5: 16,
};

/** Creates an incremental hasher for `algorithm`. */
export function createChecksumHasher(algorithm: DigestAlgorithm): ChecksumHasher {
  switch (algorithm) {
    case "CRC32":
      return new NativeCrc32Hasher();
    case "CRC32C":
      return new Crc32cHasher();
    case "CRC64NVME":
      return new Crc64NvmeHasher();
    case "SHA1":
      return new NodeHasher("SHA1", "sha1");
    case "SHA256":
      return new NodeHasher("SHA256", "sha256");
    case "MD5":
      return new NodeHasher("MD5", "md5");
  }
}

/** The digest of `data` with `algorithm`, base64-encoded as S3 sends it in headers. */
export function digestBase64(algorithm: DigestAlgorithm, data: Uint8Array): string {
  return createChecksumHasher(algorithm).update(data).digest().toString("base64");
}

/** The header that carries `algorithm`'s value, e.g. `x-amz-checksum-crc32`. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/**
 * The algorithm whose value header (or trailer) is `name` (`x-amz-checksum-crc32c` → `CRC32C`),
 * case-insensitive; `undefined` for other headers, including `x-amz-checksum-algorithm` and
 * `x-amz-checksum-type`, which name an algorithm or a type rather than carry a value.
 */
export function checksumAlgorithmFromHeader(name: string): ChecksumAlgorithm | undefined {
  return HEADER_TO_ALGORITHM.get(name.trim().toLowerCase());
}

const HEADER_TO_ALGORITHM = new Map<string, ChecksumAlgorithm>(
  CHECKSUM_ALGORITHMS.map((alg) => [checksumHeaderName(alg), alg]),
);

// Canonical base64 with padding, the form S3 sends and accepts (RFC 4648 section 4).
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes a base64 digest value and checks it has the algorithm's length; `undefined` when the
 * text is not strict base64 or has the wrong length (Node's decoder would silently skip junk).
 */
export function parseDigestBase64(algorithm: DigestAlgorithm, value: string): Buffer | undefined {
  const text = value.trim();
  if (!BASE64_RE.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.length === DIGEST_LENGTHS[algorithm] ? bytes : undefined;
}

// ---------------------------------------------------------------------------------------------
// Implementations

/** SHA-1, SHA-256 and MD5 come from OpenSSL through node:crypto. */
class NodeHasher implements ChecksumHasher {
  private readonly hash: Hash;

  constructor(
    readonly algorithm: DigestAlgorithm,
    nodeName: string,
  ) {
    this.hash = createHash(nodeName);
  }

  update(data: Uint8Array): this {
    this.hash.update(data);
    return this;
  }

  digest(): Buffer {
    return this.hash.digest();
  }
}

/**
 * CRC-32 (ISO-HDLC, the one zlib and Ethernet use) from zlib's native implementation, present
 * since Node 20.15 (package.json requires >= 22.19): far faster than any JS table.
 */
class NativeCrc32Hasher implements ChecksumHasher {
  readonly algorithm = "CRC32" as const;
  // zlib.crc32 takes and returns the finished (post-XOR) value, so it chains directly.
  private value = 0;

  update(data: Uint8Array): this {
    this.value = zlibCrc32(data, this.value);
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0, 0);
    return out;
  }
}

/**
 * Slicing-by-8 tables for a reflected 32-bit CRC: table k maps a byte that is k positions ahead
 * to its contribution, so the inner loop consumes 8 bytes per step (Intel's "slicing-by-8").
 */
function makeCrc32Tables(reflectedPoly: number): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ reflectedPoly : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1] as Uint32Array;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      t[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
    tables.push(t);
  }
  return tables;
}

// CRC-32C (Castagnoli, poly 0x1EDC6F41; reflected 0x82F63B78), RFC 3720 appendix B.4.
const CRC32C_TABLES = makeCrc32Tables(0x82f63b78) as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** CRC-32C: reflected, init and final XOR 0xFFFFFFFF, check("123456789") = 0xE3069283. */
class Crc32cHasher implements ChecksumHasher {
  readonly algorithm = "CRC32C" as const;
  // The running register, already inverted (init 0xFFFFFFFF).
  private crc = 0xffffffff;

  update(data: Uint8Array): this {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES;
    let crc = this.crc;
    let i = 0;
    const n = data.length;
    const end8 = n - (n % 8);
    while (i < end8) {
      const a =
        (crc ^
          (data[i] as number) ^
          ((data[i + 1] as number) << 8) ^
          ((data[i + 2] as number) << 16) ^
          ((data[i + 3] as number) << 24)) >>>
        0;
      crc =
        (t7[a & 0xff] as number) ^
        (t6[(a >>> 8) & 0xff] as number) ^
        (t5[(a >>> 16) & 0xff] as number) ^
        (t4[a >>> 24] as number) ^
        (t3[data[i + 4] as number] as number) ^
        (t2[data[i + 5] as number] as number) ^
        (t1[data[i + 6] as number] as number) ^
        (t0[data[i + 7] as number] as number);
      i += 8;
    }
    while (i < n) {
      crc = (t0[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
      i++;
    }
    this.crc = crc >>> 0;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.crc ^ 0xffffffff) >>> 0, 0);
    return out;
  }
}

/**
 * CRC-64/NVME (NVM Express spec; catalogued by R. Williams / reveng as CRC-64/NVME): width 64,
 * poly 0xAD93D23594C93659, reflected (0x9A6C9329AC4BC9B5), init and xorout all ones,
 * check("123456789") = 0xAE8B14860A799888. The 64-bit register is kept as two uint32 halves
 * because BigInt arithmetic per byte would be two orders of magnitude slower.
 */
// Slicing-by-8 tables as in CRC-32C, each 64-bit entry split into low and high uint32 halves.
const CRC64_LO: Uint32Array[] = [];
const CRC64_HI: Uint32Array[] = [];
{
  const polyLo = 0xac4bc9b5;
  const polyHi = 0x9a6c9329;
  const lo0 = new Uint32Array(256);
  const hi0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let lo = n;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const lsb = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (lsb) {
        lo = (lo ^ polyLo) >>> 0;
        hi = (hi ^ polyHi) >>> 0;
      }
    }
    lo0[n] = lo;
    hi0[n] = hi;
  }
  CRC64_LO.push(lo0);
  CRC64_HI.push(hi0);
  for (let k = 1; k < 8; k++) {
    const plo = CRC64_LO[k - 1] as Uint32Array;
    const phi = CRC64_HI[k - 1] as Uint32Array;
    const lo = new Uint32Array(256);
    const hi = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const l = plo[n] as number;
      const h = phi[n] as number;
      const idx = l & 0xff;
      lo[n] = (((l >>> 8) | (h << 24)) ^ (lo0[idx] as number)) >>> 0;
      hi[n] = ((h >>> 8) ^ (hi0[idx] as number)) >>> 0;
    }
    CRC64_LO.push(lo);
    CRC64_HI.push(hi);
  }
}

/** CRC-64/NVME, the S3 default for full-object checksums of new SDKs. */
class Crc64NvmeHasher implements ChecksumHasher {
  readonly algorithm = "CRC64NVME" as const;
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(data: Uint8Array): this {
    const [l0, l1, l2, l3, l4, l5, l6, l7] = CRC64_LO as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    const [h0, h1, h2, h3, h4, h5, h6, h7] = CRC64_HI as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    const n = data.length;
    const end8 = n - (n % 8);
    while (i < end8) {
      // XOR eight little-endian input bytes into the register, then look each byte up in the
      // table for its distance from the end of the block.
      const a =
        (lo ^
          (data[i] as number) ^
          ((data[i + 1] as number) << 8) ^
          ((data[i + 2] as number) << 16) ^
          ((data[i + 3] as number) << 24)) >>>
        0;
      const b =
        (hi ^
          (data[i + 4] as number) ^
          ((data[i + 5] as number) << 8) ^
          ((data[i + 6] as number) << 16) ^
          ((data[i + 7] as number) << 24)) >>>
        0;
      const i0 = a & 0xff;
      const i1 = (a >>> 8) & 0xff;
      const i2 = (a >>> 16) & 0xff;
      const i3 = a >>> 24;
      const i4 = b & 0xff;
      const i5 = (b >>> 8) & 0xff;
      const i6 = (b >>> 16) & 0xff;
      const i7 = b >>> 24;
      lo =
        ((l7[i0] as number) ^
          (l6[i1] as number) ^
          (l5[i2] as number) ^
          (l4[i3] as number) ^
          (l3[i4] as number) ^
          (l2[i5] as number) ^
          (l1[i6] as number) ^
          (l0[i7] as number)) >>>
        0;
      hi =
        ((h7[i0] as number) ^
          (h6[i1] as number) ^
          (h5[i2] as number) ^
          (h4[i3] as number) ^
          (h3[i4] as number) ^
          (h2[i5] as number) ^
          (h1[i6] as number) ^
          (h0[i7] as number)) >>>
        0;
      i += 8;
    }
    while (i < n) {
      const idx = (lo ^ (data[i] as number)) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ (l0[idx] as number)) >>> 0;
      hi = ((hi >>> 8) ^ (h0[idx] as number)) >>> 0;
      i++;
    }
    this.lo = lo;
    this.hi = hi;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}
