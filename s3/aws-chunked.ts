/**
 * Decoder of the `aws-chunked` content encoding that S3 clients use to stream a body whose hash
 * they cannot know in advance. The wire formats and signatures follow the Amazon S3 API
 * Reference:
 * - "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks
 *   (Chunked Upload)" https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
 * - "Signature calculations for trailing headers (chunked uploads)"
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
 *
 * The framing is HTTP/1.1 chunked coding (RFC 9112 section 7.1) with a signature as the only
 * chunk extension: `hex-size[;chunk-signature=<64 hex>]\r\n<data>\r\n`, a last chunk of size 0,
 * trailer lines `name:value\r\n` and an empty line.
 *
 * Security rules (PITFALLS.md, "SigV4 verification" and "No partial objects"): a chunk's bytes
 * leave the decoder only after its signature matched; the trailer signature, the trailing
 * checksum and `x-amz-decoded-content-length` are checked before the last bytes are released,
 * so a downstream upload that streams our output never completes on a body that fails.
 */
import { createHash, createHmac, timingSafeEqual, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import {
  checksumAlgorithmFromHeader,
  createChecksumHasher,
  parseDigestBase64,
  type ChecksumAlgorithm,
  type ChecksumHasher,
} from "./checksums.js";
import { S3Error, toS3Error } from "./errors.js";
import type { ChunkSigningContext, PayloadMode } from "./sigv4-types.js";

/** The payload modes that use aws-chunked framing. */
export type AwsChunkedMode = Extract<
  PayloadMode,
  "streaming-signed" | "streaming-signed-trailer" | "streaming-unsigned-trailer"
>;

/** Whether `mode` is one of the aws-chunked payload modes. */
export function isAwsChunkedMode(mode: PayloadMode): mode is AwsChunkedMode {
  return (
    mode === "streaming-signed" ||
    mode === "streaming-signed-trailer" ||
    mode === "streaming-unsigned-trailer"
  );
}

/** Bounds on what a client may make the decoder hold in memory. */
export const AWS_CHUNKED_LIMITS = {
  /**
   * Largest chunk accepted. A signed chunk is held until its signature is checked, so this bounds
   * memory per request; SDKs send 64 KiB (minio-go up to 16 MiB with large part sizes).
   */
  maxChunkSize: 16 * 1024 * 1024,
  /** Longest chunk-size line: 16 hex digits + `;chunk-signature=` + 64 hex is 97 bytes. */
  maxChunkHeaderLength: 256,
  /** Longest trailer line (`x-amz-checksum-sha256:<44 base64>` is 66 bytes). */
  maxTrailerLineLength: 1024,
  /** Most trailer lines: one checksum and one signature are all S3 defines. */
  maxTrailerLines: 8,
} as const;

/** Options of {@link AwsChunkedParser} and {@link createAwsChunkedDecoder}. */
export interface AwsChunkedDecoderOptions {
  /** Which aws-chunked variant the request declared in `x-amz-content-sha256`. */
  readonly mode: AwsChunkedMode;
  /** The seed signature and signing key; required for the `streaming-signed*` modes. */
  readonly chunkContext?: ChunkSigningContext;
  /** `x-amz-decoded-content-length`: the exact number of payload bytes. */
  readonly decodedContentLength: number;
  /** The `x-amz-trailer` header, naming the trailing checksum (`x-amz-checksum-crc32`). */
  readonly trailer?: string;
  /** The request's Content-Length (the encoded size), checked at the end when given. */
  readonly encodedContentLength?: number;
  /** Overrides {@link AWS_CHUNKED_LIMITS}.maxChunkSize. */
  readonly maxChunkSize?: number;
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNED_HEADER_RE = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
// Unsigned chunks carry no extension we use; RFC 9112 allows extensions, so they are skipped.
const UNSIGNED_HEADER_RE = /^([0-9a-fA-F]{1,16})(?:;[^\r\n]*)?$/;
const TRAILER_SIGNATURE = "x-amz-trailer-signature";
const CR = 0x0d;
const LF = 0x0a;

type State = "header" | "data" | "data-crlf" | "trailer" | "done";

/**
 * Parses the `x-amz-trailer` header into the one checksum algorithm it may name; throws
 * `InvalidRequest` for anything S3 does not accept there.
 */
export function parseTrailerHeader(value: string | undefined): ChecksumAlgorithm | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(",")
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== "");
  if (names.length === 0) return undefined;
  if (names.length > 1) {
    throw new S3Error("InvalidRequest", {
      message:
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    });
  }
  const algorithm = checksumAlgorithmFromHeader(names[0] as string);
  if (algorithm === undefined) {
    throw new S3Error("InvalidRequest", {
      message: "The value specified in the x-amz-trailer header is not supported",
    });
  }
  return algorithm;
}

/** Constant-time comparison of two ASCII strings (lengths are checked first: not secret). */
function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, "latin1");
  const bb = Buffer.from(b, "latin1");
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function malformed(message: string): S3Error {
  return new S3Error("InvalidArgument", {
    message: `Malformed aws-chunked body: ${message}`,
    extra: { ArgumentName: "x-amz-content-sha256" },
  });
}

function incomplete(expected: number, provided: number, message?: string): S3Error {
  return new S3Error("IncompleteBody", {
    ...(message === undefined ? {} : { message }),
    extra: { NumberBytesExpected: String(expected), NumberBytesProvided: String(provided) },
  });
}

function chunkSignatureMismatch(): S3Error {
  return new S3Error("SignatureDoesNotMatch", {
    message:
      "The chunk signature we calculated does not match the signature you provided. Check your key and signing method.",
  });
}

/**
 * The aws-chunked state machine without stream plumbing: feed it the raw body, it calls
 * `release` with payload bytes whose chunk has been verified, and throws an {@link S3Error} on
 * the first violation. {@link createAwsChunkedDecoder} wraps it as a Transform.
 */
export class AwsChunkedParser {
  private readonly mode: AwsChunkedMode;
  private readonly signed: boolean;
  private readonly expectedLength: number;
  private readonly encodedLength: number | undefined;
  private readonly maxChunkSize: number;
  private readonly signingKey: Buffer | undefined;
  private readonly payloadPrefix: string;
  private readonly trailerPrefix: string;
  private readonly trailerAlgorithm: ChecksumAlgorithm | undefined;
  private readonly trailerHasher: ChecksumHasher | undefined;
  private readonly received = new Map<string, string>();

  private state: State = "header";
  private line: Buffer[] = [];
  private lineLength = 0;
  private previousSignature: string;
  private chunkRemaining = 0;
  private chunkSignature = "";
  private chunkHash: Hash | undefined;
  private pending: Buffer[] = [];
  private crlfSeen = 0;
  private decoded = 0;
  private encoded = 0;
  private trailerLines: string[] = [];

  constructor(opts: AwsChunkedDecoderOptions) {
    this.mode = opts.mode;
    this.signed = opts.mode !== "streaming-unsigned-trailer";
    if (!Number.isSafeInteger(opts.decodedContentLength) || opts.decodedContentLength < 0) {
      throw new S3Error("InvalidArgument", {
        message: "x-amz-decoded-content-length must be a non-negative integer.",
        extra: { ArgumentName: "x-amz-decoded-content-length" },
      });
    }
    this.expectedLength = opts.decodedContentLength;
    this.encodedLength = opts.encodedContentLength;
    this.maxChunkSize = opts.maxChunkSize ?? AWS_CHUNKED_LIMITS.maxChunkSize;
    this.trailerAlgorithm = parseTrailerHeader(opts.trailer);
    if (this.trailerAlgorithm !== undefined && opts.mode === "streaming-signed") {
      throw new S3Error("InvalidRequest", {
        message:
          "x-amz-trailer requires x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or STREAMING-UNSIGNED-PAYLOAD-TRAILER.",
      });
    }
    this.trailerHasher =
      this.trailerAlgorithm === undefined ? undefined : createChecksumHasher(this.trailerAlgorithm);
    const ctx = opts.chunkContext;
    if (this.signed) {
      // A signed mode without its context is a programming error of the caller, not the client.
      if (ctx === undefined) throw new Error("aws-chunked: signed mode needs a chunkContext");
      this.signingKey = ctx.signingKey;
      this.previousSignature = ctx.seedSignature;
      this.payloadPrefix = `AWS4-HMAC-SHA256-PAYLOAD\n${ctx.datetime}\n${ctx.scope}\n`;
      this.trailerPrefix = `AWS4-HMAC-SHA256-TRAILER\n${ctx.datetime}\n${ctx.scope}\n`;
    } else {
      this.signingKey = undefined;
      this.previousSignature = "";
      this.payloadPrefix = "";
      this.trailerPrefix = "";
    }
  }

  /** Payload bytes decoded so far (released or held). */
  get decodedLength(): number {
    return this.decoded;
  }

  /** The checksum trailers received (lower-case name → value), complete once finished. */
  get trailers(): ReadonlyMap<string, string> {
    return this.received;
  }

  /** Whether the terminating empty line has been parsed and every final check passed. */
  get complete(): boolean {
    return this.state === "done";
  }

  /** Consumes raw bytes; `release` receives verified payload slices in order. */
  feed(buf: Buffer, release: (payload: Buffer) => void): void {
    this.encoded += buf.length;
    if (this.encodedLength !== undefined && this.encoded > this.encodedLength) {
      throw incomplete(this.encodedLength, this.encoded, "The body is longer than Content-Length.");
    }
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case "header": {
          const line = this.takeLine(buf, pos, AWS_CHUNKED_LIMITS.maxChunkHeaderLength, "chunk");
          if (line === undefined) return;
          pos = line.next;
          this.startChunk(line.text);
          break;
        }
        case "data": {
          const n = Math.min(this.chunkRemaining, buf.length - pos);
          const slice = buf.subarray(pos, pos + n);
          pos += n;
          this.chunkRemaining -= n;
          this.decoded += n;
          this.trailerHasher?.update(slice);
          if (this.chunkHash !== undefined) {
            this.chunkHash.update(slice);
            this.pending.push(slice);
          } else {
            // Unsigned chunks have nothing to verify before release.
            release(slice);
          }
          if (this.chunkRemaining === 0) {
            this.state = "data-crlf";
            this.crlfSeen = 0;
          }
          break;
        }
        case "data-crlf": {
          const expected = this.crlfSeen === 0 ? CR : LF;
          if (buf[pos] !== expected) throw malformed("chunk data is not followed by CRLF");
          pos++;
          if (++this.crlfSeen === 2) this.endChunk(release);
          break;
        }
        case "trailer": {
          const line = this.takeLine(buf, pos, AWS_CHUNKED_LIMITS.maxTrailerLineLength, "trailer");
          if (line === undefined) return;
          pos = line.next;
          if (line.text === "") this.finishTrailer();
          else this.addTrailerLine(line.text);
          break;
        }
        case "done":
          throw malformed("data after the final chunk");
      }
    }
  }

  /** Called at the end of the raw body: throws unless the body was complete and valid. */
  finish(): void {
    if (this.state !== "done") {
      throw incomplete(
        this.expectedLength,
        this.decoded,
        "The request body ended before the end of the aws-chunked encoding.",
      );
    }
    if (this.encodedLength !== undefined && this.encoded !== this.encodedLength) {
      throw incomplete(this.encodedLength, this.encoded);
    }
  }

  /**
   * Collects one CRLF-terminated line starting at `pos`, across calls; `undefined` when the line
   * continues in the next buffer. Bare LF and over-long lines are framing errors.
   */
  private takeLine(
    buf: Buffer,
    pos: number,
    max: number,
    what: string,
  ): { text: string; next: number } | undefined {
    const lf = buf.indexOf(LF, pos);
    const end = lf === -1 ? buf.length : lf;
    if (this.lineLength + (end - pos) > max + 1) {
      throw malformed(`${what} line longer than ${max} bytes`);
    }
    if (lf === -1) {
      this.line.push(buf.subarray(pos));
      this.lineLength += buf.length - pos;
      return undefined;
    }
    this.line.push(buf.subarray(pos, lf));
    const raw = this.line.length === 1 ? (this.line[0] as Buffer) : Buffer.concat(this.line);
    this.line = [];
    this.lineLength = 0;
    if (raw.length === 0 || raw[raw.length - 1] !== CR) {
      throw malformed(`${what} line not terminated by CRLF`);
    }
    return { text: raw.toString("latin1", 0, raw.length - 1), next: lf + 1 };
  }

  private startChunk(header: string): void {
    const match = (this.signed ? SIGNED_HEADER_RE : UNSIGNED_HEADER_RE).exec(header);
    if (match === null) {
      throw malformed(this.signed ? "invalid signed chunk header" : "invalid chunk header");
    }
    const size = parseInt(match[1] as string, 16);
    if (size > this.maxChunkSize) {
      throw new S3Error("InvalidArgument", {
        message: `Chunk size ${size} exceeds the maximum of ${this.maxChunkSize} bytes.`,
        extra: { ArgumentName: "x-amz-content-sha256" },
      });
    }
    if (this.decoded + size > this.expectedLength) {
      // Fail as soon as the client sends more than it declared (AWS answers IncompleteBody).
      throw incomplete(this.expectedLength, this.decoded + size);
    }
    this.chunkSignature = match[2] ?? "";
    if (size === 0) {
      if (this.signed) this.verifyChunk(EMPTY_SHA256);
      this.state = "trailer";
      return;
    }
    this.chunkRemaining = size;
    this.chunkHash = this.signed ? createHash("sha256") : undefined;
    this.state = "data";
  }

  private endChunk(release: (payload: Buffer) => void): void {
    this.state = "header";
    if (this.chunkHash === undefined) return;
    this.verifyChunk(this.chunkHash.digest("hex"));
    this.chunkHash = undefined;
    const verified = this.pending;
    this.pending = [];
    for (const slice of verified) release(slice);
  }

  /** Checks the current chunk's signature and advances the chain. */
  private verifyChunk(dataSha256: string): void {
    const stringToSign = `${this.payloadPrefix}${this.previousSignature}\n${EMPTY_SHA256}\n${dataSha256}`;
    const expected = createHmac("sha256", this.signingKey as Buffer)
      .update(stringToSign)
      .digest("hex");
    if (!safeEqual(expected, this.chunkSignature)) throw chunkSignatureMismatch();
    this.previousSignature = expected;
  }

  private addTrailerLine(text: string): void {
    if (this.trailerLines.length >= AWS_CHUNKED_LIMITS.maxTrailerLines) {
      throw malformed("too many trailer lines");
    }
    this.trailerLines.push(text);
  }

  /** Runs every end-of-body check once the terminating empty line arrived. */
  private finishTrailer(): void {
    const fields: Array<[string, string]> = [];
    let signature: string | undefined;
    for (const text of this.trailerLines) {
      const colon = text.indexOf(":");
      if (colon <= 0) throw malformed("trailer line without a header name");
      const name = text.slice(0, colon).trim().toLowerCase();
      const value = text.slice(colon + 1).trim();
      if (name === TRAILER_SIGNATURE) {
        if (this.mode !== "streaming-signed-trailer" || signature !== undefined) {
          throw malformed("unexpected x-amz-trailer-signature");
        }
        signature = value;
        continue;
      }
      if (signature !== undefined) throw malformed("trailer after x-amz-trailer-signature");
      const algorithm = checksumAlgorithmFromHeader(name);
      if (algorithm === undefined || algorithm !== this.trailerAlgorithm) {
        throw malformed(`trailer ${name} was not declared in x-amz-trailer`);
      }
      if (this.received.has(name)) throw malformed(`trailer ${name} repeated`);
      this.received.set(name, value);
      fields.push([name, value]);
    }
    if (this.mode === "streaming-signed-trailer") {
      if (signature === undefined) {
        throw new S3Error("SignatureDoesNotMatch", {
          message: "The trailer carries no x-amz-trailer-signature.",
        });
      }
      // The signed text is each trailer as `name:value\n` (LF, not the CRLF of the wire).
      const canonical = fields.map(([n, v]) => `${n}:${v}\n`).join("");
      const stringToSign = `${this.trailerPrefix}${this.previousSignature}\n${createHash("sha256").update(canonical).digest("hex")}`;
      const expected = createHmac("sha256", this.signingKey as Buffer)
        .update(stringToSign)
        .digest("hex");
      if (!safeEqual(expected, signature.toLowerCase())) {
        throw new S3Error("SignatureDoesNotMatch", {
          message:
            "The trailer signature we calculated does not match the signature you provided. Check your key and signing method.",
        });
      }
    }
    if (this.decoded !== this.expectedLength) throw incomplete(this.expectedLength, this.decoded);
    if (this.trailerAlgorithm !== undefined) {
      const name = `x-amz-checksum-${this.trailerAlgorithm.toLowerCase()}`;
      const value = this.received.get(name);
      if (value === undefined) {
        throw new S3Error("InvalidRequest", {
          message: `The x-amz-trailer header names ${name} but the trailer does not carry it.`,
        });
      }
      const claimed = parseDigestBase64(this.trailerAlgorithm, value);
      if (claimed === undefined) {
        throw new S3Error("InvalidRequest", {
          message: `Value for ${name} trailing header is invalid.`,
        });
      }
      const actual = (this.trailerHasher as ChecksumHasher).digest();
      if (!timingSafeEqual(actual, claimed)) {
        throw new S3Error("BadDigest", {
          message: `The ${this.trailerAlgorithm} you specified did not match the calculated checksum.`,
        });
      }
    }
    this.state = "done";
  }
}

/**
 * A Transform from an aws-chunked request body to the plain payload. Verified bytes flow
 * through, but the last verified slice is held back until the raw body ended and every final
 * check passed; on any failure the stream errors with an {@link S3Error} and the held bytes
 * are dropped.
 */
export class AwsChunkedDecoder extends Transform {
  private readonly parser: AwsChunkedParser;
  private held: Buffer | undefined;
  private readonly release = (payload: Buffer): void => {
    if (this.held !== undefined) this.push(this.held);
    this.held = payload;
  };

  constructor(opts: AwsChunkedDecoderOptions) {
    super();
    this.parser = new AwsChunkedParser(opts);
  }

  /** The checksum trailers received (lower-case name → value), complete at `end`. */
  get trailers(): ReadonlyMap<string, string> {
    return this.parser.trailers;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, cb: TransformCallback) {
    try {
      const buf = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
      this.parser.feed(buf, this.release);
      cb();
    } catch (err) {
      this.held = undefined;
      cb(toS3Error(err));
    }
  }

  override _flush(cb: TransformCallback) {
    try {
      this.parser.finish();
      if (this.held !== undefined) this.push(this.held);
      this.held = undefined;
      cb();
    } catch (err) {
      this.held = undefined;
      cb(toS3Error(err));
    }
  }
}

/**
 * Creates a Transform that decodes and verifies an aws-chunked body (see
 * {@link AwsChunkedDecoder}). Throws an {@link S3Error} at once for invalid options (an
 * unsupported `x-amz-trailer`, a negative decoded length).
 */
export function createAwsChunkedDecoder(opts: AwsChunkedDecoderOptions): AwsChunkedDecoder {
  return new AwsChunkedDecoder(opts);
}
