// The upstream aws-chunked body with a trailing checksum (gateway/upstream/trailer.ts): its length is
// exactly what the gateway announces, and our own strict decoder (s3/aws-chunked.ts, which
// verifies the trailer checksum) gets back the same bytes.

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createAwsChunkedDecoder } from "../../s3/aws-chunked.js";
import { digestBase64, type ChecksumAlgorithm } from "../../s3/checksums.js";
import {
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  trailerBodyLength,
  withTrailingChecksum,
} from "../../gateway/upstream/trailer.js";

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/** Splits data into irregular pieces, as a socket delivers it. */
function pieces(data: Buffer): Readable {
  const out: Buffer[] = [];
  for (let i = 0, n = 1; i < data.length; i += n, n = (n * 7 + 3) % 70_001) {
    out.push(data.subarray(i, i + n));
  }
  return Readable.from(out);
}

const CASES: { name: string; size: number; algorithm: ChecksumAlgorithm }[] = [
  { name: "one byte, CRC32", size: 1, algorithm: "CRC32" },
  { name: "exactly one 64 KiB chunk, CRC32C", size: 65_536, algorithm: "CRC32C" },
  { name: "one chunk and a byte, CRC64NVME", size: 65_537, algorithm: "CRC64NVME" },
  { name: "5 MiB and change, SHA1", size: 5 * 1024 * 1024 + 123, algorithm: "SHA1" },
  { name: "200,000 bytes, SHA256", size: 200_000, algorithm: "SHA256" },
];

describe("withTrailingChecksum", () => {
  it.each(CASES)(
    "$name: exact length, decodes to the same bytes with a valid trailer",
    async (c) => {
      const data = randomBytes(c.size);
      const t = withTrailingChecksum(pieces(data), {
        decodedLength: c.size,
        algorithm: c.algorithm,
      });
      const encoded = await collect(t.body);
      expect(encoded.length).toBe(t.contentLength);
      expect(trailerBodyLength(c.size, c.algorithm)).toBe(encoded.length);
      expect(t.payloadHash).toBe(STREAMING_UNSIGNED_PAYLOAD_TRAILER);
      const header = `x-amz-checksum-${c.algorithm.toLowerCase()}`;
      expect(t.headers).toEqual({
        "x-amz-decoded-content-length": String(c.size),
        "x-amz-trailer": header,
        "x-amz-sdk-checksum-algorithm": c.algorithm,
      });
      expect(
        encoded
          .toString("latin1")
          .endsWith(`\r\n0\r\n${header}:${digestBase64(c.algorithm, data)}\r\n\r\n`),
      ).toBe(true);
      const decoder = createAwsChunkedDecoder({
        mode: "streaming-unsigned-trailer",
        decodedContentLength: c.size,
        trailer: header,
        encodedContentLength: encoded.length,
      });
      const decoded = await collect(Readable.from([encoded]).pipe(decoder));
      expect(decoded.equals(data)).toBe(true);
      expect(decoder.trailers.get(header)).toBe(digestBase64(c.algorithm, data));
    },
  );

  it("errors, without the trailer, when the verified body fails", async () => {
    const source = new Readable({ read() {} });
    const t = withTrailingChecksum(source, { decodedLength: 10, algorithm: "CRC32" });
    const seen: Buffer[] = [];
    t.body.on("data", (c: Buffer) => seen.push(c));
    source.push(Buffer.from("abc"));
    const failed = new Promise<Error>((done) => t.body.once("error", done));
    source.destroy(new Error("BadDigest"));
    expect((await failed).message).toBe("BadDigest");
    expect(Buffer.concat(seen).toString()).not.toContain("x-amz-checksum");
  });
});
