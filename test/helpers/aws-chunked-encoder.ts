/**
 * Test-only aws-chunked encoder: builds valid signed and unsigned bodies (with trailers) and
 * records where every piece sits, so tamper tests can flip exactly the byte they mean.
 *
 * The signatures are computed here with node:crypto, independently of s3/aws-chunked.ts, after
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html.
 */
import { createHash, createHmac } from "node:crypto";
import { createChecksumHasher, type ChecksumAlgorithm } from "../../s3/checksums.js";
import type { ChunkSigningContext, PayloadMode } from "../../s3/sigv4-types.js";

/** The aws-chunked payload modes. */
export type EncoderMode = Extract<
  PayloadMode,
  "streaming-signed" | "streaming-signed-trailer" | "streaming-unsigned-trailer"
>;

const EMPTY_SHA256 = createHash("sha256").digest("hex");

/** The SigV4 signing key: HMAC chain over date, region, service and `aws4_request`. */
export function deriveSigningKey(
  secret: string,
  date: string,
  region: string,
  service: string,
): Buffer {
  const kDate = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  return createHmac("sha256", kService).update("aws4_request").digest();
}

/** The signature of one chunk, chained from `previous`. */
export function signChunk(ctx: ChunkSigningContext, previous: string, data: Buffer): string {
  const sts = [
    "AWS4-HMAC-SHA256-PAYLOAD",
    ctx.datetime,
    ctx.scope,
    previous,
    EMPTY_SHA256,
    createHash("sha256").update(data).digest("hex"),
  ].join("\n");
  return createHmac("sha256", ctx.signingKey).update(sts).digest("hex");
}

/** The trailer signature over `canonical` (`name:value\n` per trailer), chained from `previous`. */
export function signTrailer(ctx: ChunkSigningContext, previous: string, canonical: string): string {
  const sts = [
    "AWS4-HMAC-SHA256-TRAILER",
    ctx.datetime,
    ctx.scope,
    previous,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  return createHmac("sha256", ctx.signingKey).update(sts).digest("hex");
}

/** Options of {@link encodeAwsChunked}. */
export interface EncodeOptions {
  readonly mode: EncoderMode;
  /** Required for the signed modes. */
  readonly context?: ChunkSigningContext;
  /** Data bytes per chunk (the last may be shorter), or explicit sizes; default 64 KiB. */
  readonly chunkSize?: number | readonly number[];
  /** The trailing checksum's algorithm (trailer modes). */
  readonly trailerAlgorithm?: ChecksumAlgorithm;
  /** Replaces the computed checksum value (tamper). */
  readonly trailerValue?: string;
  /** Replaces the signature written for chunk `index` (the chain still uses the true one). */
  readonly chunkSignature?: (index: number, signature: string) => string;
  /** Replaces the trailer signature written. */
  readonly trailerSignature?: (signature: string) => string;
}

/** Where a chunk sits in the encoded body. */
export interface EncodedChunk {
  /** Offset of the chunk-size line. */
  readonly headerOffset: number;
  /** Offset of the first data byte. */
  readonly dataOffset: number;
  /** Number of data bytes. */
  readonly size: number;
  /** The signature written in the header (signed modes), else "". */
  readonly signature: string;
}

/** An encoded body and its layout. */
export interface EncodedBody {
  readonly body: Buffer;
  /** Data chunks then the final zero-size chunk. */
  readonly chunks: readonly EncodedChunk[];
  /** Offset of the first trailer line (or the terminating CRLF). */
  readonly trailerOffset: number;
  /** The checksum value written in the trailer, if any. */
  readonly trailerValue?: string;
}

function chunkSizes(total: number, spec: number | readonly number[]): number[] {
  if (typeof spec !== "number") return [...spec];
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= Math.min(spec, left)) sizes.push(Math.min(spec, left));
  return sizes;
}

/** Encodes `payload` as an aws-chunked body. */
export function encodeAwsChunked(payload: Buffer, opts: EncodeOptions): EncodedBody {
  const signed = opts.mode !== "streaming-unsigned-trailer";
  const ctx = opts.context;
  if (signed && ctx === undefined) throw new Error("signed modes need a context");
  const parts: Buffer[] = [];
  const chunks: EncodedChunk[] = [];
  let offset = 0;
  let previous = ctx?.seedSignature ?? "";
  const write = (b: Buffer | string): void => {
    const buf = typeof b === "string" ? Buffer.from(b, "latin1") : b;
    parts.push(buf);
    offset += buf.length;
  };
  let pos = 0;
  const sizes = [...chunkSizes(payload.length, opts.chunkSize ?? 65536), 0];
  sizes.forEach((size, index) => {
    const data = payload.subarray(pos, pos + size);
    pos += size;
    const headerOffset = offset;
    let signature = "";
    if (signed) {
      const real = signChunk(ctx as ChunkSigningContext, previous, data);
      previous = real;
      signature = opts.chunkSignature ? opts.chunkSignature(index, real) : real;
      write(`${size.toString(16)};chunk-signature=${signature}\r\n`);
    } else {
      write(`${size.toString(16)}\r\n`);
    }
    const dataOffset = offset;
    if (size > 0) {
      write(data);
      write("\r\n");
    }
    chunks.push({ headerOffset, dataOffset, size, signature });
  });
  const trailerOffset = offset;
  let trailerValue: string | undefined;
  const canonical: string[] = [];
  if (opts.trailerAlgorithm !== undefined) {
    trailerValue =
      opts.trailerValue ??
      createChecksumHasher(opts.trailerAlgorithm).update(payload).digest().toString("base64");
    const name = `x-amz-checksum-${opts.trailerAlgorithm.toLowerCase()}`;
    write(`${name}:${trailerValue}\r\n`);
    canonical.push(`${name}:${trailerValue}\n`);
  }
  if (opts.mode === "streaming-signed-trailer") {
    const real = signTrailer(ctx as ChunkSigningContext, previous, canonical.join(""));
    write(
      `x-amz-trailer-signature:${opts.trailerSignature ? opts.trailerSignature(real) : real}\r\n`,
    );
  }
  write("\r\n");
  return {
    body: Buffer.concat(parts),
    chunks,
    trailerOffset,
    ...(trailerValue === undefined ? {} : { trailerValue }),
  };
}
