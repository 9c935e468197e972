/**
 * Types shared by the SigV4 signer, the verifier and the aws-chunked decoder. They are the
 * contract between those modules: change them only together.
 */

/** An access key pair. The secret never appears in logs, errors or metrics. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Optional STS session token, sent as `x-amz-security-token`. */
  readonly sessionToken?: string;
}

/**
 * How the payload of a request is protected, from `x-amz-content-sha256`
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html).
 */
export type PayloadMode =
  /** A hex SHA-256 of the whole body; checked once the body has been read. */
  | "hex"
  /** `UNSIGNED-PAYLOAD`: the body is not covered by the signature. */
  | "unsigned"
  /** `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked, every chunk signed. */
  | "streaming-signed"
  /** `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and a signed trailer. */
  | "streaming-signed-trailer"
  /** `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: unsigned chunks, a trailer with a checksum. */
  | "streaming-unsigned-trailer";

/** What a chunk-signature chain needs, derived while verifying the request's seed signature. */
export interface ChunkSigningContext {
  /** The derived signing key for the request's scope (HMAC chain result). */
  readonly signingKey: Buffer;
  /** `x-amz-date` of the request, `YYYYMMDDTHHMMSSZ`. */
  readonly datetime: string;
  /** The credential scope, `YYYYMMDD/region/service/aws4_request`. */
  readonly scope: string;
  /** The request's own signature: the "previous signature" of the first chunk. */
  readonly seedSignature: string;
}

/** A request as it arrived, before any framework touched it. */
export interface IncomingSigV4Request {
  /** The HTTP method, upper case. */
  readonly method: string;
  /** The request-target exactly as on the request line (`request.raw.url`): path and query. */
  readonly rawUrl: string;
  /** Node's `rawHeaders`: alternating names and values, in arrival order, repeats kept. */
  readonly rawHeaders: readonly string[];
}

/** The outcome of a successful verification. */
export interface VerifiedRequest {
  /** The access key that signed. */
  readonly accessKeyId: string;
  /** Header (`Authorization`) or query (presigned URL) authentication. */
  readonly authType: "header" | "presigned";
  /** How the body is protected; presigned requests are always `unsigned`. */
  readonly payload: PayloadMode;
  /** With `payload === "hex"`: the lower-case hex SHA-256 the body must have. */
  readonly payloadSha256?: string;
  /** The lower-case header names the client signed. */
  readonly signedHeaders: readonly string[];
  /** Present for the `streaming-signed*` modes. */
  readonly chunkContext?: ChunkSigningContext;
  /** The credential scope's region, as signed by the client. */
  readonly region: string;
}
