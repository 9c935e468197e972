/**
 * The S3 error model: one table of error codes → HTTP status and default message, one domain
 * error class, one renderer of the S3 XML error document.
 *
 * Codes and statuses follow the Amazon S3 API Reference, "Error responses → List of error codes"
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
 */

/** One row of the error table: the HTTP status and the message S3 uses by default. */
export interface S3ErrorSpec {
  readonly status: number;
  readonly message: string;
}

/** Every S3 error code this project can produce, with its HTTP status and default message. */
export const S3_ERRORS = {
  AccessDenied: { status: 403, message: "Access Denied" },
  AuthorizationHeaderMalformed: {
    status: 400,
    message: "The authorization header that you provided is not valid.",
  },
  AuthorizationQueryParametersError: {
    status: 400,
    message: "Error parsing the X-Amz-Credential parameter.",
  },
  BadDigest: {
    status: 400,
    message:
      "The Content-MD5 or checksum value that you specified did not match what the server received.",
  },
  BucketAlreadyOwnedByYou: {
    status: 409,
    message: "The bucket that you tried to create already exists, and you own it.",
  },
  BucketNotEmpty: { status: 409, message: "The bucket that you tried to delete is not empty." },
  ConditionalRequestConflict: {
    status: 409,
    message: "A conflicting operation occurred. If using PutObject you can retry the request.",
  },
  EntityTooLarge: {
    status: 400,
    message: "Your proposed upload exceeds the maximum allowed object size.",
  },
  EntityTooSmall: {
    status: 400,
    message: "Your proposed upload is smaller than the minimum allowed object size.",
  },
  ExpiredToken: { status: 400, message: "The provided token has expired." },
  IncompleteBody: {
    status: 400,
    message: "You did not provide the number of bytes specified by the Content-Length HTTP header.",
  },
  InternalError: {
    status: 500,
    message: "We encountered an internal error. Please try again.",
  },
  InvalidAccessKeyId: {
    status: 403,
    message: "The AWS access key ID that you provided does not exist in our records.",
  },
  InvalidArgument: { status: 400, message: "Invalid Argument" },
  InvalidBucketName: { status: 400, message: "The specified bucket is not valid." },
  InvalidDigest: {
    status: 400,
    message: "The Content-MD5 or checksum value that you specified is not valid.",
  },
  InvalidPolicyDocument: {
    status: 400,
    message:
      "The content of the form does not meet the conditions specified in the policy document.",
  },
  InvalidPart: {
    status: 400,
    message: "One or more of the specified parts could not be found.",
  },
  InvalidPartOrder: {
    status: 400,
    message: "The list of parts was not in ascending order.",
  },
  InvalidRange: { status: 416, message: "The requested range cannot be satisfied." },
  InvalidRequest: { status: 400, message: "Invalid Request" },
  InvalidURI: { status: 400, message: "Couldn't parse the specified URI." },
  KeyTooLongError: { status: 400, message: "Your key is too long." },
  MalformedPOSTRequest: {
    status: 400,
    message: "The body of your POST request is not well-formed multipart/form-data.",
  },
  MalformedXML: {
    status: 400,
    message:
      "The XML that you provided was not well formed or did not validate against our published schema.",
  },
  MaxMessageLengthExceeded: { status: 400, message: "Your request was too large." },
  MaxPostPreDataLengthExceeded: {
    status: 400,
    message: "Your POST request fields preceding the upload file were too large.",
  },
  MetadataTooLarge: {
    status: 400,
    message: "Your metadata headers exceed the maximum allowed metadata size.",
  },
  MethodNotAllowed: {
    status: 405,
    message: "The specified method is not allowed against this resource.",
  },
  MissingContentLength: {
    status: 411,
    message: "You must provide the Content-Length HTTP header.",
  },
  MissingSecurityHeader: {
    status: 400,
    message: "Your request is missing a required header.",
  },
  NoSuchBucket: { status: 404, message: "The specified bucket does not exist." },
  NoSuchKey: { status: 404, message: "The specified key does not exist." },
  NoSuchUpload: {
    status: 404,
    message:
      "The specified multipart upload does not exist. The upload ID might not be valid, or the multipart upload might have been aborted or completed.",
  },
  NotImplemented: {
    status: 501,
    message: "A header that you provided implies functionality that is not implemented.",
  },
  NotModified: { status: 304, message: "Not Modified" },
  PreconditionFailed: {
    status: 412,
    message: "At least one of the preconditions that you specified did not hold.",
  },
  RequestHeaderSectionTooLarge: {
    status: 400,
    message: "Your request header section exceeds the maximum allowed size.",
  },
  RequestTimeout: {
    status: 400,
    message:
      "Your socket connection to the server was not read from or written to within the timeout period.",
  },
  RequestTimeTooSkewed: {
    status: 403,
    message: "The difference between the request time and the server's time is too large.",
  },
  ServiceUnavailable: {
    status: 503,
    message: "Service is unable to handle request.",
  },
  SignatureDoesNotMatch: {
    status: 403,
    message:
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  },
  SlowDown: { status: 503, message: "Please reduce your request rate." },
  XAmzContentSHA256Mismatch: {
    status: 400,
    message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
  },
} as const satisfies Record<string, S3ErrorSpec>;

/** An S3 error code from {@link S3_ERRORS}. */
export type S3ErrorCode = keyof typeof S3_ERRORS;

/** Options for {@link S3Error}: a message other than the default, and extra XML fields. */
export interface S3ErrorOptions {
  /** Replaces the table's default message. Never put secrets here: it reaches the client. */
  message?: string;
  /** The resource (bucket or key path) the error is about. */
  resource?: string;
  /** Extra elements for the XML body (e.g. `ArgumentName`), rendered in order. */
  extra?: Record<string, string>;
  /** HTTP status other than the table's (e.g. an upstream's when the code is unknown to us). */
  status?: number;
  /** Why it happened, for logs only; never rendered to clients. */
  cause?: unknown;
}

/** A typed S3 error: the code decides the HTTP status via {@link S3_ERRORS}. */
export class S3Error extends Error {
  /** The S3 error code, e.g. `NoSuchKey`. */
  readonly code: string;
  /** The HTTP status to answer with. */
  readonly status: number;
  /** The resource the error concerns, if known. */
  readonly resource: string | undefined;
  /** Extra XML fields rendered inside `<Error>`. */
  readonly extra: Readonly<Record<string, string>>;

  constructor(code: S3ErrorCode, options: S3ErrorOptions = {}) {
    const spec = S3_ERRORS[code];
    super(options.message ?? spec.message, { cause: options.cause });
    this.name = "S3Error";
    this.code = code;
    this.status = options.status ?? spec.status;
    this.resource = options.resource;
    this.extra = options.extra ?? {};
  }

  /**
   * An error whose code came from elsewhere (an upstream S3 answer) and may not be in our table.
   * Known codes keep the table's status unless `status` is given.
   */
  static fromCode(code: string, status: number, options: S3ErrorOptions = {}): S3Error {
    if (isS3ErrorCode(code)) return new S3Error(code, { status, ...options });
    const err = new S3Error("InternalError", { status, ...options });
    (err as { code: string }).code = code;
    if (options.message === undefined) err.message = code;
    return err;
  }
}

/** Whether `code` is a row of {@link S3_ERRORS}. */
export function isS3ErrorCode(code: string): code is S3ErrorCode {
  return Object.prototype.hasOwnProperty.call(S3_ERRORS, code);
}

/** Escapes text for an XML element body or attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/** Context the renderer adds to every error body. */
export interface ErrorRenderContext {
  requestId: string;
  /** Used when the error carries no resource of its own. */
  resource?: string;
}

/**
 * Renders the S3 XML error document
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses).
 */
export function renderErrorXml(err: S3Error, ctx: ErrorRenderContext): string {
  const resource = err.resource ?? ctx.resource;
  let body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${escapeXml(err.code)}</Code><Message>${escapeXml(err.message)}</Message>`;
  for (const [name, value] of Object.entries(err.extra)) {
    body += `<${name}>${escapeXml(value)}</${name}>`;
  }
  if (resource !== undefined) body += `<Resource>${escapeXml(resource)}</Resource>`;
  body += `<RequestId>${escapeXml(ctx.requestId)}</RequestId></Error>`;
  return body;
}

/** Turns anything thrown into an S3Error; unknown errors become `InternalError`. */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  return new S3Error("InternalError", { cause: err });
}
