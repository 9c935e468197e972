import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CHECKSUM_ALGORITHMS,
  checksumAlgorithmFromHeader,
  checksumHeaderName,
  createChecksumHasher,
  digestBase64,
  parseDigestBase64,
  type DigestAlgorithm,
} from "../../s3/checksums.js";

const CHECK_INPUT = Buffer.from("123456789");

// Bit-at-a-time reference CRCs straight from the catalogue parameters (reflected in and out,
// init and xorout all ones): slow, obviously correct, independent of the table code.
function referenceCrc(data: Uint8Array, width: 32 | 64, reflectedPoly: bigint): bigint {
  const mask = (1n << BigInt(width)) - 1n;
  let crc = mask;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ reflectedPoly : crc >> 1n;
  }
  return crc ^ mask;
}

function hex(alg: DigestAlgorithm, data: Uint8Array): string {
  return createChecksumHasher(alg).update(data).digest().toString("hex");
}

describe("checksums: standard check values of '123456789'", () => {
  // CRC catalogue (reveng) check values; SHA/MD5 from their defining standards' tools.
  const cases: Array<[DigestAlgorithm, string]> = [
    ["CRC32", "cbf43926"],
    ["CRC32C", "e3069283"],
    ["CRC64NVME", "ae8b14860a799888"],
    ["SHA1", "f7c3bc1d808e04732adf679965ccc34ca7ae3441"],
    ["SHA256", "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"],
    ["MD5", "25f9e794323b453885f5181f1b624d0b"],
  ];
  for (const [alg, expected] of cases) {
    it(`${alg} = ${expected}`, () => {
      expect(hex(alg, CHECK_INPUT)).toBe(expected);
    });
  }
});

describe("checksums: base64 values as S3 sends them", () => {
  it("CRC32 of 'abc' is NSRBwg== (big-endian bytes)", () => {
    expect(digestBase64("CRC32", Buffer.from("abc"))).toBe("NSRBwg==");
  });
  it("CRC32C of 66,560 'a' is sOO8/Q== (the AWS trailer example)", () => {
    expect(digestBase64("CRC32C", Buffer.alloc(66560, "a"))).toBe("sOO8/Q==");
  });
  it("CRC64NVME of nothing is AAAAAAAAAAA= and SHA256 of nothing is the well-known hash", () => {
    expect(digestBase64("CRC64NVME", Buffer.alloc(0))).toBe("AAAAAAAAAAA=");
    expect(digestBase64("SHA256", Buffer.alloc(0))).toBe(
      Buffer.from(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "hex",
      ).toString("base64"),
    );
  });
  it("MD5 base64 is the Content-MD5 form", () => {
    const data = Buffer.from("hello world");
    expect(digestBase64("MD5", data)).toBe(createHash("md5").update(data).digest("base64"));
  });
});

describe("checksums: table code equals the bitwise reference on awkward lengths and splits", () => {
  // Deterministic pseudo-random bytes (xorshift32) so a failure is reproducible.
  const data = Buffer.alloc(4099);
  let x = 0x12345678;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  const refs = {
    CRC32: referenceCrc(data, 32, 0xedb88320n),
    CRC32C: referenceCrc(data, 32, 0x82f63b78n),
    CRC64NVME: referenceCrc(data, 64, 0x9a6c9329ac4bc9b5n),
  } as const;
  for (const alg of ["CRC32", "CRC32C", "CRC64NVME"] as const) {
    it(`${alg}: one update and uneven updates give the reference value`, () => {
      const width = alg === "CRC64NVME" ? 16 : 8;
      const expected = refs[alg].toString(16).padStart(width, "0");
      expect(hex(alg, data)).toBe(expected);
      const h = createChecksumHasher(alg);
      for (const [a, b] of [
        [0, 1],
        [1, 8],
        [8, 15],
        [15, 1000],
        [1000, 1003],
        [1003, 4099],
      ] as const) {
        h.update(data.subarray(a, b));
      }
      expect(h.digest().toString("hex")).toBe(expected);
    });
  }
});

describe("checksums: header names", () => {
  it("maps every x-amz-checksum-<alg> header to its algorithm, case-insensitively", () => {
    for (const alg of CHECKSUM_ALGORITHMS) {
      expect(checksumAlgorithmFromHeader(checksumHeaderName(alg))).toBe(alg);
      expect(checksumAlgorithmFromHeader(checksumHeaderName(alg).toUpperCase())).toBe(alg);
    }
    expect(checksumHeaderName("CRC64NVME")).toBe("x-amz-checksum-crc64nvme");
  });
  it("does not take x-amz-checksum-algorithm, -type or unknown names for value headers", () => {
    expect(checksumAlgorithmFromHeader("x-amz-checksum-algorithm")).toBeUndefined();
    expect(checksumAlgorithmFromHeader("x-amz-checksum-type")).toBeUndefined();
    expect(checksumAlgorithmFromHeader("x-amz-checksum-md5")).toBeUndefined();
    expect(checksumAlgorithmFromHeader("content-md5")).toBeUndefined();
  });
});

describe("checksums: parseDigestBase64", () => {
  it("accepts a value of the right length", () => {
    expect(parseDigestBase64("CRC32", "NSRBwg==")?.toString("hex")).toBe("352441c2");
  });
  it("rejects the wrong length, junk characters and missing padding", () => {
    expect(parseDigestBase64("CRC32", "AAAAAAAAAAA=")).toBeUndefined();
    expect(parseDigestBase64("CRC32", "NSR*wg==")).toBeUndefined();
    expect(parseDigestBase64("CRC32", "NSRBwg")).toBeUndefined();
    expect(parseDigestBase64("MD5", "")).toBeUndefined();
  });
});
