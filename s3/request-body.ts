/**
 * The plain, verified request body the gateway sends upstream, whatever way the client
 * protected it (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html):
 * a hex SHA-256 of the payload, `UNSIGNED-PAYLOAD`, or one of the aws-chunked `STREAMING-*`
 * encodings (decoded here, see ./aws-chunked.ts). Whole-body `x-amz-checksum-*` headers and
 * Content-MD5 (RFC 1864) are verified as the bytes pass.
 *
 * Every check that can only be made at the end of the body is made before the last bytes are
 * released, so an upstream request that streams `body` with `contentLength` is never complete
 * when a check fails, and can be destroyed instead (PITFALLS.md, "No partial objects").
 */
import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { AwsChunkedParser, isAwsChunkedMode } from "./aws-chunked.js";
import {
  checksumAlgorithmFromHeader,
  createChecksumHasher,
  parseDigestBase64,
  type ChecksumHasher,
  type DigestAlgorithm,
} from "./checksums.js";
import { S3Error, toS3Error } from "./errors.js";
import type { VerifiedRequest } from "./sigv4-types.js";

/** The request headers that describe the body, already parsed by the caller. */
export interface RequestBodyHeaders {
  /** `Content-Length`; absent with `Transfer-Encoding: chunked`. */
  readonly contentLength?: number;
  /** `x-amz-decoded-content-length`; required for the aws-chunked modes. */
  readonly decodedContentLength?: number;
  /** `x-amz-trailer`: the trailing checksum an aws-chunked body ends with. */
  readonly trailer?: string;
  /**
   * Whole-body digests sent as headers, by lower-case header name: `x-amz-checksum-<alg>`
   * values and `content-md5`. Other names (e.g. `x-amz-checksum-algorithm`) are ignored.
   */
  readonly checksums: Readonly<Record<string, string>>;
}

/** What {@link verifiedBody} returns. */
export interface VerifiedBody {
  /** The plain payload; errors with an {@link S3Error} when a check fails. */
  readonly body: Readable;
  /** The exact payload length to send upstream, when known. */
  readonly contentLength: number | undefined;
}

interface DigestCheck {
  readonly header: string;
  readonly algorithm: DigestAlgorithm;
  readonly hasher: ChecksumHasher;
  readonly expected: Buffer;
}

/**
 * Parses the digest headers into checks; throws `InvalidDigest` (Content-MD5) or
 * `InvalidRequest` (x-amz-checksum-*) for values that are not base64 of the right length, as
 * S3 does before reading the body.
 */
function digestChecks(checksums: Readonly<Record<string, string>>): DigestCheck[] {
  const checks: DigestCheck[] = [];
  let amzChecksums = 0;
  for (const [rawName, value] of Object.entries(checksums)) {
    const header = rawName.toLowerCase();
    let algorithm: DigestAlgorithm | undefined;
    if (header === "content-md5") {
      algorithm = "MD5";
    } else {
      algorithm = checksumAlgorithmFromHeader(header);
      if (algorithm === undefined) continue;
      amzChecksums++;
    }
    const expected = parseDigestBase64(algorithm, value);
    if (expected === undefined) {
      throw algorithm === "MD5"
        ? new S3Error("InvalidDigest")
        : new S3Error("InvalidRequest", { message: `Value for ${header} header is invalid.` });
    }
    checks.push({ header, algorithm, hasher: createChecksumHasher(algorithm), expected });
  }
  if (amzChecksums > 1) {
    throw new S3Error("InvalidRequest", {
      message:
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    });
  }
  return checks;
}

interface VerifyingOptions {
  readonly parser: AwsChunkedParser | undefined;
  /** The exact payload length (plain bodies with a Content-Length). */
  readonly expectedLength: number | undefined;
  /** `hex` mode: the lower-case hex SHA-256 the payload must have. */
  readonly sha256Hex: string | undefined;
  readonly digests: DigestCheck[];
}

/**
 * One Transform for every mode: optional aws-chunked decoding, then length, SHA-256 and digest
 * checks on the payload, with the last payload slice held back until all of them passed.
 */
class VerifyingBody extends Transform {
  private held: Buffer | undefined;
  private count = 0;
  private readonly sha256: Hash | undefined;
  private readonly accept = (payload: Buffer): void => {
    this.count += payload.length;
    const max = this.opts.expectedLength;
    if (max !== undefined && this.count > max) throw incompleteBody(max, this.count);
    this.sha256?.update(payload);
    for (const d of this.opts.digests) d.hasher.update(payload);
    if (this.held !== undefined) this.push(this.held);
    this.held = payload;
  };

  /** Called once when the stream is destroyed, before `error`/`close` are emitted. */
  onDestroy: (() => void) | undefined;

  constructor(private readonly opts: VerifyingOptions) {
    super();
    this.sha256 = opts.sha256Hex === undefined ? undefined : createHash("sha256");
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    const hook = this.onDestroy;
    this.onDestroy = undefined;
    this.held = undefined;
    hook?.();
    cb(err);
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, cb: TransformCallback) {
    try {
      const buf = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
      if (this.opts.parser !== undefined) this.opts.parser.feed(buf, this.accept);
      else this.accept(buf);
      cb();
    } catch (err) {
      this.held = undefined;
      cb(toS3Error(err));
    }
  }

  override _flush(cb: TransformCallback) {
    try {
      this.opts.parser?.finish();
      const expected = this.opts.expectedLength;
      if (expected !== undefined && this.count !== expected) {
        throw incompleteBody(expected, this.count);
      }
      if (this.sha256 !== undefined) {
        const actual = this.sha256.digest();
        const claimed = Buffer.from(this.opts.sha256Hex as string, "hex");
        if (claimed.length !== actual.length || !timingSafeEqual(actual, claimed)) {
          throw new S3Error("XAmzContentSHA256Mismatch", {
            extra: {
              ClientComputedContentSHA256: this.opts.sha256Hex as string,
              S3ComputedContentSHA256: actual.toString("hex"),
            },
          });
        }
      }
      for (const d of this.opts.digests) {
        if (!timingSafeEqual(d.hasher.digest(), d.expected)) {
          throw new S3Error("BadDigest", {
            message:
              d.algorithm === "MD5"
                ? "The Content-MD5 you specified did not match what we received."
                : `The ${d.algorithm} you specified did not match the calculated checksum.`,
          });
        }
      }
      if (this.held !== undefined) this.push(this.held);
      this.held = undefined;
      cb();
    } catch (err) {
      this.held = undefined;
      cb(toS3Error(err));
    }
  }
}

function incompleteBody(expected: number, provided: number): S3Error {
  return new S3Error("IncompleteBody", {
    extra: { NumberBytesExpected: String(expected), NumberBytesProvided: String(provided) },
  });
}

/**
 * Wraps the raw request body into the verified plain body for `verified.payload`:
 * - `hex`: passes through, checks the SHA-256 at the end (`XAmzContentSHA256Mismatch`);
 * - `unsigned`: passes through, checks Content-Length when given (`IncompleteBody`);
 * - `streaming-*`: decodes aws-chunked, verifying every chunk signature, the trailer signature
 *   and checksum and `x-amz-decoded-content-length`; `contentLength` is the decoded length.
 * In every mode `x-amz-checksum-*` and Content-MD5 headers are verified (`BadDigest`).
 *
 * Header problems throw an {@link S3Error} at once, before any byte is read. Body problems
 * make `body` error; then `raw` is unpiped and left paused, not destroyed, so the caller can
 * still answer with the S3 error (and should close the connection). With `contentLength` 0
 * no bytes are held back: wait for `body` to end before sending an empty upstream request.
 */
export function verifiedBody(
  verified: VerifiedRequest,
  headers: RequestBodyHeaders,
  raw: Readable,
): VerifiedBody {
  const digests = digestChecks(headers.checksums);
  let parser: AwsChunkedParser | undefined;
  let expectedLength: number | undefined;
  let sha256Hex: string | undefined;
  let contentLength: number | undefined;
  const mode = verified.payload;
  if (isAwsChunkedMode(mode)) {
    const decoded = headers.decodedContentLength;
    if (decoded === undefined) {
      throw new S3Error("MissingContentLength", {
        message: "You must provide x-amz-decoded-content-length with an aws-chunked body.",
      });
    }
    parser = new AwsChunkedParser({
      mode,
      decodedContentLength: decoded,
      ...(verified.chunkContext === undefined ? {} : { chunkContext: verified.chunkContext }),
      ...(headers.trailer === undefined ? {} : { trailer: headers.trailer }),
      ...(headers.contentLength === undefined
        ? {}
        : { encodedContentLength: headers.contentLength }),
    });
    contentLength = decoded;
  } else {
    expectedLength = headers.contentLength;
    contentLength = headers.contentLength;
    if (mode === "hex") {
      if (verified.payloadSha256 === undefined) {
        throw new Error("verifiedBody: hex payload mode without payloadSha256");
      }
      sha256Hex = verified.payloadSha256.toLowerCase();
    }
  }
  const body = new VerifyingBody({ parser, expectedLength, sha256Hex, digests });
  linkRaw(raw, body);
  return { body, contentLength };
}

/**
 * Pipes `raw` into `body`. A client that goes away mid-body fails `body` with IncompleteBody.
 * When `body` is destroyed (failed, or by its consumer) `raw` is unpiped and paused at once,
 * before `body` emits `error`, so an error handler may still resume (drain) or destroy `raw`.
 */
function linkRaw(raw: Readable, body: VerifyingBody): void {
  const onError = (err: unknown): void => {
    body.destroy(
      new S3Error("IncompleteBody", {
        message: "The request body was not received completely.",
        cause: err,
      }),
    );
  };
  const onClose = (): void => {
    if (!raw.readableEnded) onError(new Error("request body closed before its end"));
  };
  raw.on("error", onError);
  raw.once("close", onClose);
  body.onDestroy = () => {
    raw.removeListener("close", onClose);
    // The error listener stays: a late client reset must not become an uncaught error.
    raw.unpipe(body);
    if (!raw.readableEnded) raw.pause();
  };
  raw.pipe(body);
}
