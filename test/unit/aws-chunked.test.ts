import { describe, expect, it } from "vitest";
import {
  AWS_CHUNKED_LIMITS,
  AwsChunkedParser,
  createAwsChunkedDecoder,
  parseTrailerHeader,
  type AwsChunkedDecoderOptions,
} from "../../s3/aws-chunked.js";
import { S3Error } from "../../s3/errors.js";
import type { ChunkSigningContext } from "../../s3/sigv4-types.js";
import {
  deriveSigningKey,
  encodeAwsChunked,
  signChunk,
  type EncodeOptions,
} from "../helpers/aws-chunked-encoder.js";

// The published example of the S3 API Reference: secret, date, region and the seed signatures of
// "Transferring Payload in Multiple Chunks" and of "...including trailing headers".
const EXAMPLE_KEY = deriveSigningKey(
  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  "20130524",
  "us-east-1",
  "s3",
);
function exampleContext(seedSignature: string): ChunkSigningContext {
  return {
    signingKey: EXAMPLE_KEY,
    datetime: "20130524T000000Z",
    scope: "20130524/us-east-1/s3/aws4_request",
    seedSignature,
  };
}
const SIGNED_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SIGNED_CHUNK_SIGS = [
  "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
const TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGS = [
  "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
  "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
  "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_SIG = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";
const EXAMPLE_PAYLOAD = Buffer.alloc(66560, "a");

/** The documented wire bytes, written out by hand (not by our encoder). */
function documentedBody(sigs: string[], trailer: string): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    Buffer.alloc(65536, "a"),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    Buffer.alloc(1024, "a"),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n${trailer}\r\n`),
  ]);
}

interface Outcome {
  output: Buffer;
  error: S3Error | undefined;
}

/** Runs a decoder over `body` written in pieces of `split` bytes; collects output and error. */
async function decode(
  body: Buffer,
  opts: AwsChunkedDecoderOptions,
  split = 16384,
): Promise<Outcome> {
  const decoder = createAwsChunkedDecoder(opts);
  const parts: Buffer[] = [];
  decoder.on("data", (b: Buffer) => parts.push(b));
  const done = new Promise<S3Error | undefined>((resolve) => {
    decoder.on("end", () => resolve(undefined));
    decoder.on("error", (e) => resolve(e as S3Error));
  });
  for (let i = 0; i < body.length && !decoder.destroyed; i += split) {
    decoder.write(body.subarray(i, i + split));
  }
  if (!decoder.destroyed) decoder.end();
  const error = await done;
  return { output: Buffer.concat(parts), error };
}

/** A payload whose every chunk has distinct bytes, so a leaked chunk is recognisable. */
function patterned(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}

const ctx = exampleContext(SIGNED_SEED);

describe("aws-chunked: the AWS published examples", () => {
  it("decodes and verifies the STREAMING-AWS4-HMAC-SHA256-PAYLOAD example (66,560 'a', 66,824 bytes)", async () => {
    const body = documentedBody(SIGNED_CHUNK_SIGS, "");
    expect(body.length).toBe(66824);
    for (const split of [1 << 20, 16384, 97, 1]) {
      const { output, error } = await decode(
        body,
        {
          mode: "streaming-signed",
          chunkContext: exampleContext(SIGNED_SEED),
          decodedContentLength: 66560,
          encodedContentLength: 66824,
        },
        split,
      );
      expect(error).toBeUndefined();
      expect(output.equals(EXAMPLE_PAYLOAD)).toBe(true);
    }
  });

  it("decodes the STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER example with its CRC32C trailer", async () => {
    const trailer = `x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:${TRAILER_SIG}\r\n`;
    const decoder = createAwsChunkedDecoder({
      mode: "streaming-signed-trailer",
      chunkContext: exampleContext(TRAILER_SEED),
      decodedContentLength: 66560,
      trailer: "x-amz-checksum-crc32c",
    });
    const parts: Buffer[] = [];
    decoder.on("data", (b: Buffer) => parts.push(b));
    const ended = new Promise<void>((resolve, reject) => {
      decoder.on("end", resolve);
      decoder.on("error", reject);
    });
    decoder.end(documentedBody(TRAILER_CHUNK_SIGS, trailer));
    await ended;
    expect(Buffer.concat(parts).equals(EXAMPLE_PAYLOAD)).toBe(true);
    expect(decoder.trailers.get("x-amz-checksum-crc32c")).toBe("sOO8/Q==");
  });

  it("our test encoder reproduces the published bytes (so its tamper bodies are realistic)", () => {
    const signed = encodeAwsChunked(EXAMPLE_PAYLOAD, { mode: "streaming-signed", context: ctx });
    expect(signed.body.equals(documentedBody(SIGNED_CHUNK_SIGS, ""))).toBe(true);
    const trailed = encodeAwsChunked(EXAMPLE_PAYLOAD, {
      mode: "streaming-signed-trailer",
      context: exampleContext(TRAILER_SEED),
      trailerAlgorithm: "CRC32C",
    });
    const trailer = `x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:${TRAILER_SIG}\r\n`;
    expect(trailed.body.equals(documentedBody(TRAILER_CHUNK_SIGS, trailer))).toBe(true);
  });
});

describe("aws-chunked: valid bodies", () => {
  it("decodes STREAMING-UNSIGNED-PAYLOAD-TRAILER as the JS SDK frames it", async () => {
    const body = Buffer.from("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n");
    const { output, error } = await decode(body, {
      mode: "streaming-unsigned-trailer",
      decodedContentLength: 3,
      trailer: "x-amz-checksum-crc32",
    });
    expect(error).toBeUndefined();
    expect(output.toString()).toBe("abc");
  });

  const algorithms = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const;
  for (const mode of ["streaming-signed-trailer", "streaming-unsigned-trailer"] as const) {
    for (const alg of algorithms) {
      it(`${mode} with a ${alg} trailer round-trips variable chunk sizes`, async () => {
        const payload = patterned(200_000);
        const enc = encodeAwsChunked(payload, {
          mode,
          context: ctx,
          chunkSize: [8192, 65536, 1, 100_000, 26_271],
          trailerAlgorithm: alg,
        });
        const { output, error } = await decode(
          enc.body,
          {
            mode,
            chunkContext: ctx,
            decodedContentLength: payload.length,
            trailer: `x-amz-checksum-${alg.toLowerCase()}`,
            encodedContentLength: enc.body.length,
          },
          7919,
        );
        expect(error).toBeUndefined();
        expect(output.equals(payload)).toBe(true);
      });
    }
  }

  it("decodes an empty payload (only the final chunk)", async () => {
    const enc = encodeAwsChunked(Buffer.alloc(0), { mode: "streaming-signed", context: ctx });
    const { output, error } = await decode(enc.body, {
      mode: "streaming-signed",
      chunkContext: ctx,
      decodedContentLength: 0,
    });
    expect(error).toBeUndefined();
    expect(output.length).toBe(0);
  });

  it("gives the same payload for every split of the raw body (parser level)", () => {
    const payload = patterned(70_000);
    const enc = encodeAwsChunked(payload, {
      mode: "streaming-signed-trailer",
      context: ctx,
      chunkSize: 20_000,
      trailerAlgorithm: "CRC32",
    });
    let seed = 7;
    for (let round = 0; round < 20; round++) {
      const parser = new AwsChunkedParser({
        mode: "streaming-signed-trailer",
        chunkContext: ctx,
        decodedContentLength: payload.length,
        trailer: "x-amz-checksum-crc32",
      });
      const out: Buffer[] = [];
      let pos = 0;
      while (pos < enc.body.length) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const n = 1 + (seed % 300);
        parser.feed(enc.body.subarray(pos, pos + n), (b) => out.push(b));
        pos += n;
      }
      parser.finish();
      expect(Buffer.concat(out).equals(payload)).toBe(true);
    }
  });

  it("releases unsigned chunk bytes as they arrive, signed ones only at the chunk's end", () => {
    const payload = patterned(50_000);
    for (const mode of ["streaming-unsigned-trailer", "streaming-signed"] as const) {
      const enc = encodeAwsChunked(payload, { mode, context: ctx, chunkSize: 50_000 });
      const parser = new AwsChunkedParser({
        mode,
        chunkContext: ctx,
        decodedContentLength: payload.length,
      });
      let released = 0;
      const firstChunk = enc.chunks[0];
      if (firstChunk === undefined) throw new Error("no chunk");
      parser.feed(enc.body.subarray(0, firstChunk.dataOffset + 30_000), (b) => {
        released += b.length;
      });
      expect(released).toBe(mode === "streaming-signed" ? 0 : 30_000);
    }
  });
});

interface TamperCase {
  name: string;
  mode: EncodeOptions["mode"];
  /** Encoder options besides mode/context. */
  encode?: Partial<EncodeOptions>;
  /** Changes the encoded body (a copy). */
  mutate?: (body: Buffer, enc: ReturnType<typeof encodeAwsChunked>) => Buffer;
  /** Changes the decoder options. */
  options?: Partial<AwsChunkedDecoderOptions>;
  code: string;
  /** Index of the first chunk whose bytes must never be emitted. */
  poisoned?: number;
}

const PAYLOAD = patterned(4 * 65536 + 1000);
const flip = (at: (enc: ReturnType<typeof encodeAwsChunked>) => number) => {
  return (body: Buffer, enc: ReturnType<typeof encodeAwsChunked>): Buffer => {
    const i = at(enc);
    body[i] = (body[i] as number) ^ 0x01;
    return body;
  };
};
const chunkAt = (enc: ReturnType<typeof encodeAwsChunked>, i: number) => {
  const c = enc.chunks[i];
  if (c === undefined) throw new Error(`no chunk ${i}`);
  return c;
};
/** The raw bytes of chunk i (header, data, CRLF). */
const chunkBytes = (body: Buffer, enc: ReturnType<typeof encodeAwsChunked>, i: number) =>
  body.subarray(chunkAt(enc, i).headerOffset, chunkAt(enc, i + 1).headerOffset);

const TAMPER: TamperCase[] = [
  {
    name: "a flipped data byte in chunk 2 (signed)",
    mode: "streaming-signed",
    mutate: flip((enc) => chunkAt(enc, 2).dataOffset + 1234),
    code: "SignatureDoesNotMatch",
    poisoned: 2,
  },
  {
    name: "a flipped data byte in chunk 2 (signed trailer)",
    mode: "streaming-signed-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    mutate: flip((enc) => chunkAt(enc, 2).dataOffset + 5),
    code: "SignatureDoesNotMatch",
    poisoned: 2,
  },
  {
    name: "a flipped data byte (unsigned trailer) fails the CRC32",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    mutate: flip((enc) => chunkAt(enc, 3).dataOffset + 77),
    code: "BadDigest",
  },
  {
    name: "a wrong signature on chunk 1",
    mode: "streaming-signed",
    encode: { chunkSignature: (i, s) => (i === 1 ? s.replace(/^./, s[0] === "0" ? "1" : "0") : s) },
    code: "SignatureDoesNotMatch",
    poisoned: 1,
  },
  {
    name: "a wrong signature on the final zero chunk",
    mode: "streaming-signed",
    encode: { chunkSignature: (i, s) => (i === 5 ? "0".repeat(64) : s) },
    code: "SignatureDoesNotMatch",
  },
  {
    name: "chunks 1 and 2 swapped",
    mode: "streaming-signed",
    mutate: (body, enc) =>
      Buffer.concat([
        body.subarray(0, chunkAt(enc, 1).headerOffset),
        chunkBytes(body, enc, 2),
        chunkBytes(body, enc, 1),
        body.subarray(chunkAt(enc, 3).headerOffset),
      ]),
    code: "SignatureDoesNotMatch",
    poisoned: 1,
  },
  {
    name: "chunk 1 dropped (and the declared length adjusted)",
    mode: "streaming-signed",
    mutate: (body, enc) =>
      Buffer.concat([
        body.subarray(0, chunkAt(enc, 1).headerOffset),
        body.subarray(chunkAt(enc, 2).headerOffset),
      ]),
    options: { decodedContentLength: PAYLOAD.length - 65536 },
    code: "SignatureDoesNotMatch",
    poisoned: 1,
  },
  {
    name: "a wrong trailer checksum (validly signed)",
    mode: "streaming-signed-trailer",
    encode: { trailerAlgorithm: "CRC32C", trailerValue: "AAAAAA==" },
    code: "BadDigest",
  },
  {
    name: "a wrong trailer checksum (unsigned)",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "SHA256", trailerValue: Buffer.alloc(32).toString("base64") },
    code: "BadDigest",
  },
  {
    name: "a wrong trailer signature",
    mode: "streaming-signed-trailer",
    encode: { trailerAlgorithm: "CRC32", trailerSignature: (s) => s.split("").reverse().join("") },
    code: "SignatureDoesNotMatch",
  },
  {
    name: "a checksum changed after signing the trailer",
    mode: "streaming-signed-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    mutate: (body, enc) => {
      const at = body.indexOf(":", enc.trailerOffset) + 1;
      body[at] = body[at] === 0x41 ? 0x42 : 0x41;
      return body;
    },
    code: "SignatureDoesNotMatch",
  },
  {
    name: "a missing trailer signature",
    mode: "streaming-signed-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    mutate: (body) => {
      const at = body.lastIndexOf("x-amz-trailer-signature:");
      return Buffer.concat([body.subarray(0, at), Buffer.from("\r\n")]);
    },
    code: "SignatureDoesNotMatch",
  },
  {
    name: "decoded length declared one more than sent",
    mode: "streaming-signed",
    options: { decodedContentLength: PAYLOAD.length + 1 },
    code: "IncompleteBody",
  },
  {
    name: "decoded length declared one less than sent",
    mode: "streaming-signed",
    options: { decodedContentLength: PAYLOAD.length - 1 },
    code: "IncompleteBody",
  },
  {
    name: "decoded length one less (unsigned)",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    options: { decodedContentLength: PAYLOAD.length - 1 },
    code: "IncompleteBody",
  },
  {
    name: "a body truncated inside chunk 3",
    mode: "streaming-signed",
    mutate: (body, enc) => body.subarray(0, chunkAt(enc, 3).dataOffset + 100),
    code: "IncompleteBody",
    poisoned: 3,
  },
  {
    name: "a body truncated before the terminating CRLF (unsigned)",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    mutate: (body) => body.subarray(0, body.length - 2),
    code: "IncompleteBody",
  },
  {
    name: "a body missing its final chunk",
    mode: "streaming-signed",
    mutate: (body, enc) => body.subarray(0, chunkAt(enc, 5).headerOffset),
    code: "IncompleteBody",
  },
  {
    name: "an oversized chunk header line",
    mode: "streaming-signed",
    mutate: (body, enc) => {
      const at = chunkAt(enc, 1).headerOffset + 5;
      return Buffer.concat([body.subarray(0, at), Buffer.alloc(1000, "0"), body.subarray(at)]);
    },
    code: "InvalidArgument",
    poisoned: 1,
  },
  {
    name: "a chunk size above the limit",
    mode: "streaming-unsigned-trailer",
    mutate: (body, enc) => {
      const at = chunkAt(enc, 1).headerOffset;
      const big = (AWS_CHUNKED_LIMITS.maxChunkSize + 1).toString(16);
      return Buffer.concat([body.subarray(0, at), Buffer.from(`${big}\r\n`), body.subarray(at)]);
    },
    options: { decodedContentLength: 1 << 30 },
    code: "InvalidArgument",
  },
  {
    name: "chunk data not followed by CRLF",
    mode: "streaming-signed",
    mutate: (body, enc) => {
      body[chunkAt(enc, 1).headerOffset - 2] = 0x20;
      return body;
    },
    code: "InvalidArgument",
    poisoned: 0,
  },
  {
    name: "a bare LF ending a chunk header",
    mode: "streaming-unsigned-trailer",
    mutate: (body, enc) => {
      const lf = body.indexOf("\n", chunkAt(enc, 2).headerOffset);
      return Buffer.concat([body.subarray(0, lf - 1), body.subarray(lf)]);
    },
    code: "InvalidArgument",
  },
  {
    name: "a non-hex chunk size",
    mode: "streaming-signed",
    mutate: (body, enc) => {
      body[chunkAt(enc, 1).headerOffset] = 0x67; // 'g'
      return body;
    },
    code: "InvalidArgument",
    poisoned: 1,
  },
  {
    name: "bytes after the end of the encoding",
    mode: "streaming-signed",
    mutate: (body) => Buffer.concat([body, Buffer.from("junk")]),
    code: "InvalidArgument",
  },
  {
    name: "a trailer not declared in x-amz-trailer",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "CRC32" },
    options: { trailer: "x-amz-checksum-sha1" },
    code: "InvalidArgument",
  },
  {
    name: "a declared trailer that never comes",
    mode: "streaming-unsigned-trailer",
    options: { trailer: "x-amz-checksum-crc32" },
    code: "InvalidRequest",
  },
  {
    name: "a trailer value that is not base64",
    mode: "streaming-unsigned-trailer",
    encode: { trailerAlgorithm: "CRC32", trailerValue: "not*b64" },
    code: "InvalidRequest",
  },
  {
    name: "trailers on STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    mode: "streaming-signed",
    mutate: (body) =>
      Buffer.concat([body.subarray(0, body.length - 2), Buffer.from("x:y\r\n\r\n")]),
    code: "InvalidArgument",
  },
  {
    name: "an encoded length that differs from Content-Length",
    mode: "streaming-signed",
    options: { encodedContentLength: 10 },
    code: "IncompleteBody",
  },
];

describe("aws-chunked: tampered bodies fail with the S3 error code and leak nothing", () => {
  for (const t of TAMPER) {
    it(`${t.name} → ${t.code}`, async () => {
      const enc = encodeAwsChunked(PAYLOAD, {
        mode: t.mode,
        context: ctx,
        chunkSize: 65536,
        ...t.encode,
      });
      const body = t.mutate ? t.mutate(Buffer.from(enc.body), enc) : enc.body;
      const trailerName = t.encode?.trailerAlgorithm
        ? `x-amz-checksum-${t.encode.trailerAlgorithm.toLowerCase()}`
        : undefined;
      const { output, error } = await decode(body, {
        mode: t.mode,
        chunkContext: ctx,
        decodedContentLength: PAYLOAD.length,
        ...(trailerName === undefined ? {} : { trailer: trailerName }),
        ...t.options,
      });
      expect(error).toBeInstanceOf(S3Error);
      expect(error?.code).toBe(t.code);
      // Whatever came out is a prefix of the payload, and never all of it: the final bytes are
      // held until every check passed.
      expect(output.length).toBeLessThan(PAYLOAD.length);
      if (t.mode !== "streaming-unsigned-trailer") {
        // Signed chunks are authenticated before release: what came out is genuine payload.
        // (Unsigned chunks flow before the checksum can be known; only the held tail protects.)
        expect(output.equals(PAYLOAD.subarray(0, output.length))).toBe(true);
      }
      if (t.poisoned !== undefined) {
        // Not one byte of the failing chunk (nor any after it) was emitted.
        expect(output.length).toBeLessThanOrEqual(t.poisoned * 65536);
      }
    });
  }
});

describe("aws-chunked: hold-back of the final bytes", () => {
  it("keeps the last verified chunk until the trailer has been checked", async () => {
    const payload = patterned(3000);
    const enc = encodeAwsChunked(payload, {
      mode: "streaming-signed-trailer",
      context: ctx,
      chunkSize: 1000,
      trailerAlgorithm: "CRC32",
    });
    const decoder = createAwsChunkedDecoder({
      mode: "streaming-signed-trailer",
      chunkContext: ctx,
      decodedContentLength: payload.length,
      trailer: "x-amz-checksum-crc32",
    });
    // Everything but the terminating CRLF: every chunk is verified, yet the last one stays in.
    await new Promise<void>((resolve, reject) =>
      decoder.write(enc.body.subarray(0, enc.body.length - 2), (e) => (e ? reject(e) : resolve())),
    );
    expect(decoder.readableLength).toBe(2000);
    const rest: Buffer[] = [];
    decoder.on("data", (b: Buffer) => rest.push(b));
    const ended = new Promise((resolve) => decoder.on("end", resolve));
    decoder.end(enc.body.subarray(enc.body.length - 2));
    await ended;
    expect(Buffer.concat(rest).equals(payload)).toBe(true);
  });
});

describe("aws-chunked: option checks", () => {
  it("rejects unsupported or multiple x-amz-trailer values with InvalidRequest", () => {
    expect(parseTrailerHeader("x-amz-checksum-crc64nvme")).toBe("CRC64NVME");
    expect(parseTrailerHeader(undefined)).toBeUndefined();
    for (const bad of [
      "x-amz-checksum-md5",
      "x-amz-meta-a",
      "x-amz-checksum-crc32,x-amz-checksum-sha1",
    ]) {
      expect(() => parseTrailerHeader(bad)).toThrow(S3Error);
      try {
        parseTrailerHeader(bad);
      } catch (e) {
        expect((e as S3Error).code).toBe("InvalidRequest");
      }
    }
  });
  it("rejects a trailer on STREAMING-AWS4-HMAC-SHA256-PAYLOAD and a negative decoded length", () => {
    expect(() =>
      createAwsChunkedDecoder({
        mode: "streaming-signed",
        chunkContext: ctx,
        decodedContentLength: 1,
        trailer: "x-amz-checksum-crc32",
      }),
    ).toThrow(/x-amz-trailer/);
    expect(() =>
      createAwsChunkedDecoder({ mode: "streaming-unsigned-trailer", decodedContentLength: -1 }),
    ).toThrow(S3Error);
  });
  it("signs chunks the same way as the published example (encoder self-check)", () => {
    expect(signChunk(ctx, SIGNED_SEED, Buffer.alloc(65536, "a"))).toBe(SIGNED_CHUNK_SIGS[0]);
  });
});
