/**
 * Carries a client's trailing checksum to the backend.
 *
 * Current SDKs and the AWS CLI send a body as aws-chunked with the checksum in a trailer
 * (`x-amz-trailer: x-amz-checksum-crc32`). The gateway decodes and verifies it (s3/request-body),
 * but a plain upstream body cannot carry a trailer, and dropping the checksum breaks multipart
 * uploads created with a checksum algorithm: the backend then refuses every UploadPart
 * ("Checksum Type mismatch ... expected CRC32, actual null") and the CompleteMultipartUpload
 * that names part checksums. So the gateway sends such a body upstream as its own aws-chunked
 * `STREAMING-UNSIGNED-PAYLOAD-TRAILER` body: fixed-size chunks (so the encoded length is exact
 * and known before the first byte) and a trailer with the checksum it computed itself over the
 * verified bytes — equal to the client's, which was checked against the same bytes.
 *
 * Never the client's envelope: its chunk signatures are bound to the client's credential and
 * would not survive re-signing (PITFALLS, Chorus #265).
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
 */
import { Transform, type Readable, type TransformCallback } from "node:stream";
import {
  checksumHeaderName,
  createChecksumHasher,
  DIGEST_LENGTHS,
  type ChecksumAlgorithm,
  type ChecksumHasher,
} from "../../s3/checksums.js";

/** The payload hash of an aws-chunked body with unsigned chunks and an unsigned trailer. */
export const STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/** The decoded bytes per upstream chunk (the last one may be shorter). */
const CHUNK_BYTES = 64 * 1024;

/** An upstream body re-framed with a trailing checksum. */
export interface TrailerBody {
  /** The aws-chunked body to send. */
  readonly body: Readable;
  /** Its exact encoded length (the upstream Content-Length). */
  readonly contentLength: number;
  /** Headers to add upstream (they replace what the client sent under the same names). */
  readonly headers: Record<string, string>;
  /** The upstream `x-amz-content-sha256`. */
  readonly payloadHash: string;
}

/** The length of one chunk's framing: hex size, CRLF, data, CRLF. */
function frameLength(size: number): number {
  return size.toString(16).length + 2 + size + 2;
}

/** The exact encoded length of `decodedLength` bytes with a trailer of `algorithm`. */
export function trailerBodyLength(decodedLength: number, algorithm: ChecksumAlgorithm): number {
  const full = Math.floor(decodedLength / CHUNK_BYTES);
  const rest = decodedLength % CHUNK_BYTES;
  const b64 = 4 * Math.ceil(DIGEST_LENGTHS[algorithm] / 3);
  const trailerLine = checksumHeaderName(algorithm).length + 1 + b64 + 2;
  return full * frameLength(CHUNK_BYTES) + (rest > 0 ? frameLength(rest) : 0) + 3 + trailerLine + 2;
}

/** Re-frames verified plain bytes as aws-chunked with an unsigned checksum trailer. */
class TrailerEncoder extends Transform {
  private readonly hasher: ChecksumHasher;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly algorithm: ChecksumAlgorithm) {
    super();
    this.hasher = createChecksumHasher(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hasher.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes >= CHUNK_BYTES) this.emitChunk(CHUNK_BYTES);
    done();
  }

  override _flush(done: TransformCallback): void {
    // Reached only when the verified body ended, i.e. after every client-side check passed:
    // the last chunk and the trailer (which commits the upload) are held back until then.
    if (this.pendingBytes > 0) this.emitChunk(this.pendingBytes);
    const value = this.hasher.digest().toString("base64");
    this.push(`0\r\n${checksumHeaderName(this.algorithm)}:${value}\r\n\r\n`);
    done();
  }

  private emitChunk(size: number): void {
    const all =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const data = all.subarray(0, size);
    const rest = all.subarray(size);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    this.push(`${size.toString(16)}\r\n`);
    this.push(data);
    this.push("\r\n");
  }
}

/**
 * Wraps a verified plain body of `decodedLength` bytes whose client sent `algorithm` in an
 * aws-chunked trailer, so the backend receives (and verifies, and stores) the same checksum.
 */
export function withTrailingChecksum(
  body: Readable,
  options: {
    readonly decodedLength: number;
    readonly algorithm: ChecksumAlgorithm;
  },
): TrailerBody {
  const encoder = new TrailerEncoder(options.algorithm);
  body.once("error", (err) => encoder.destroy(err));
  body.pipe(encoder);
  return {
    body: encoder,
    contentLength: trailerBodyLength(options.decodedLength, options.algorithm),
    // No `Content-Encoding: aws-chunked`: MinIO and versitygw recognise the framing by
    // `x-amz-content-sha256` (as they must for minio-go), and versitygw would store the
    // header as the object's Content-Encoding. The client's own encodings pass unchanged.
    headers: {
      "x-amz-decoded-content-length": String(options.decodedLength),
      "x-amz-trailer": checksumHeaderName(options.algorithm),
      "x-amz-sdk-checksum-algorithm": options.algorithm,
    },
    payloadHash: STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  };
}
