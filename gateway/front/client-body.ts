/**
 * The client's request body, handed to a plan executor once: verified as it streams
 * (aws-chunked decoded, every chunk signature, the payload hash, Content-MD5 and trailing
 * checksums checked, the last bytes held back until every check passed) with its exact length,
 * or read whole when a plan must send it to two backends. `Expect: 100-continue` is answered
 * only when an executor asks for the body, so a request refused before that never sends it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { parseTrailerHeader } from "../../s3/aws-chunked.js";
import type { ChecksumAlgorithm } from "../../s3/checksums.js";
import { readBounded } from "../../s3/client.js";
import { S3Error } from "../../s3/errors.js";
import { verifiedBody } from "../../s3/request-body.js";
import { UNSIGNED_PAYLOAD } from "../../s3/sigv4-canonical.js";
import type { PayloadMode, VerifiedRequest } from "../../s3/sigv4-types.js";
import { parseCompleteMultipartUpload, parseDeleteRequest } from "../../s3/xml-documents.js";
import type { ClientBody, PreparedBody } from "../execute/context.js";
import { withTrailingChecksum } from "../upstream/trailer.js";
import type { S3Operation } from "./operation-traits.js";

/** What {@link clientBody} needs. */
export interface ClientBodyInput {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly verified: VerifiedRequest;
  readonly operation: S3Operation;
  readonly expectContinue: boolean;
  /** Caps of the XML bodies the gateway always reads whole and validates. */
  readonly maxXmlBodyBytes: { readonly deleteObjects: number; readonly completeMultipart: number };
  /** Aborted by a failing body check (with its S3 error) or by the client going away. */
  readonly abort: AbortController;
  /** Called once the body starts to flow (the minimum-rate watch starts then). */
  readonly onStart: () => void;
}

/** Whether the request announces a body (a length or chunked transfer coding). */
export function hasRequestBody(req: IncomingMessage): boolean {
  return (
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined
  );
}

/** The client's body behind a guard that hands it out once. */
export function clientBody(input: ClientBodyInput): ClientBody {
  const { req, verified } = input;
  const present = verified.payload.startsWith("streaming-") || hasRequestBody(req);
  let taken = false;
  const take = (): void => {
    if (taken) throw new Error("the request body was already taken");
    taken = true;
  };
  const payloadHash =
    verified.payload === "hex" && verified.payloadSha256 !== undefined
      ? verified.payloadSha256
      : UNSIGNED_PAYLOAD;

  const none = (): PreparedBody => {
    if (input.expectContinue) input.res.writeContinue();
    const method = req.method ?? "GET";
    return {
      body: undefined,
      contentLength: method === "PUT" || method === "POST" ? 0 : undefined,
      decodedLength: 0,
      payloadHash,
      headers: {},
      present: false,
      discard: () => undefined,
    };
  };

  /** Verifies the announced framing and starts the flow; refuses oversized XML up front. */
  const open = (maxWhole: number | undefined): { body: Readable; length: number } => {
    const vb = verifiedBody(verified, bodyHeaders(req, input.operation), req);
    if (vb.contentLength === undefined) throw new S3Error("MissingContentLength");
    // An oversized XML body is refused from its announced length, before a byte is read (the
    // exact length is enforced while decoding, so it cannot grow past it).
    if (maxWhole !== undefined && vb.contentLength > maxWhole) {
      throw new S3Error("MaxMessageLengthExceeded", {
        message: `Your request was too large: ${input.operation} accepts at most ${maxWhole} bytes here.`,
      });
    }
    if (input.expectContinue) input.res.writeContinue();
    input.onStart();
    return { body: vb.body, length: vb.contentLength };
  };

  const whole = async (maxBytes: number): Promise<PreparedBody> => {
    const { body, length } = open(maxBytes);
    // Small and bounded: read whole, every body check passes first.
    const buf = await readBounded(body, maxBytes + 1);
    if (input.operation === "DeleteObjects" || input.operation === "CompleteMultipartUpload") {
      validateXmlBody(input.operation, buf, maxBytes);
    }
    return {
      body: buf,
      contentLength: length,
      decodedLength: length,
      payloadHash,
      headers: {},
      present: true,
      discard: () => undefined,
    };
  };

  return {
    present,
    async stream() {
      take();
      if (!present) return none();
      const cap = xmlBodyCap(input);
      if (cap !== undefined) return await whole(cap);
      const { body, length } = open(undefined);
      if (length === 0) {
        // Nothing is held back for an empty body: wait for every check before sending.
        body.resume();
        await finished(body);
        return {
          body: Buffer.alloc(0),
          contentLength: 0,
          decodedLength: 0,
          payloadHash,
          headers: {},
          present: true,
          discard: () => undefined,
        };
      }
      body.once("error", (err) => input.abort.abort(err));
      const trailer =
        trailerAlgorithm(verified.payload, req) ??
        integrityTrailer(input.operation, verified.payload, req);
      if (trailer !== undefined) {
        // The client's trailing checksum (or the gateway's own, integrityTrailer) goes on to
        // the backend in our own trailer.
        const t = withTrailingChecksum(body, { decodedLength: length, algorithm: trailer });
        // The encoder re-emits the client body's failure, which the abort above already
        // carries to the request; once undici has let go of the encoder (an early backend
        // answer) nobody else listens, and an unheard 'error' would take the process down.
        t.body.on("error", () => undefined);
        return {
          body: t.body,
          contentLength: t.contentLength,
          decodedLength: length,
          payloadHash: t.payloadHash,
          headers: t.headers,
          present: true,
          discard: () => {
            t.body.destroy();
            body.destroy();
          },
        };
      }
      return {
        body,
        contentLength: length,
        decodedLength: length,
        payloadHash,
        headers: {},
        present: true,
        discard: () => body.destroy(),
      };
    },
    async buffered(maxBytes) {
      take();
      if (!present) return none();
      return await whole(Math.min(maxBytes, xmlBodyCap(input) ?? maxBytes));
    },
  };
}

/** The XML body cap of an operation whose body the gateway always validates, or undefined. */
function xmlBodyCap(input: ClientBodyInput): number | undefined {
  if (input.operation === "DeleteObjects") return input.maxXmlBodyBytes.deleteObjects;
  if (input.operation === "CompleteMultipartUpload") return input.maxXmlBodyBytes.completeMultipart;
  return undefined;
}

/** Throws MalformedXML for a DeleteObjects or CompleteMultipartUpload body S3 would refuse. */
function validateXmlBody(operation: S3Operation, xml: Buffer, maxBytes: number): void {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html: up to 1,000 keys.
  if (operation === "DeleteObjects") parseDeleteRequest(xml, { maxBytes });
  else parseCompleteMultipartUpload(xml, { maxBytes });
}

/** The checksum algorithm of an aws-chunked body's trailer, or undefined. */
function trailerAlgorithm(
  payload: PayloadMode,
  req: IncomingMessage,
): ChecksumAlgorithm | undefined {
  if (payload !== "streaming-signed-trailer" && payload !== "streaming-unsigned-trailer") {
    return undefined;
  }
  const value = req.headers["x-amz-trailer"];
  // verifiedBody has already refused a trailer header S3 would not accept.
  return typeof value === "string" ? parseTrailerHeader(value) : undefined;
}

/**
 * The checksum the gateway adds, in its own aws-chunked trailer, to a PutObject body that
 * carries no integrity of its own (no hex payload hash, Content-MD5 or x-amz-checksum-*:
 * unsigned, presigned, aws-chunked without trailer). Some backends commit whatever arrived when
 * a connection drops before Content-Length is reached (versitygw 1.8 posix does): a client that
 * went away mid-upload would replace a good object with a truncated one. With the body framed
 * as aws-chunked and the checksum in a trailer sent only after the last verified byte, a cut
 * body lacks its final chunk and trailer and is invalid to the backend, whatever it does on a
 * dropped connection. CRC32 is the cheapest algorithm both backends verify.
 */
function integrityTrailer(
  operation: string,
  payload: PayloadMode,
  req: IncomingMessage,
): ChecksumAlgorithm | undefined {
  if (operation !== "PutObject" || payload === "hex") return undefined;
  if (req.headers["content-md5"] !== undefined) return undefined;
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith("x-amz-checksum-")) return undefined;
  }
  return "CRC32";
}

/** The headers verifiedBody needs, parsed from the request. */
function bodyHeaders(
  req: IncomingMessage,
  operation: S3Operation,
): Parameters<typeof verifiedBody>[1] {
  const h = req.headers;
  const lengthOf = (v: string | string[] | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^\d{1,16}$/.test(v)) {
      throw new S3Error("InvalidArgument", {
        message: `${name} must be a non-negative integer.`,
        extra: { ArgumentName: name },
      });
    }
    return Number(v);
  };
  // On CompleteMultipartUpload the x-amz-checksum-* headers are the whole object's checksum
  // (with x-amz-checksum-type FULL_OBJECT or COMPOSITE), not the XML body's: the backend checks
  // them against the parts. `-type` and `-algorithm` name a kind of checksum, never carry one.
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html
  const objectChecksums = operation === "CompleteMultipartUpload";
  const checksums: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    const isChecksum =
      name.startsWith("x-amz-checksum-") &&
      name !== "x-amz-checksum-type" &&
      name !== "x-amz-checksum-algorithm" &&
      !objectChecksums;
    if ((name === "content-md5" || isChecksum) && typeof value === "string") {
      checksums[name] = value;
    }
  }
  const contentLength = lengthOf(h["content-length"], "Content-Length");
  const decoded = lengthOf(h["x-amz-decoded-content-length"], "x-amz-decoded-content-length");
  const trailer = h["x-amz-trailer"];
  return {
    ...(contentLength === undefined ? {} : { contentLength }),
    ...(decoded === undefined ? {} : { decodedContentLength: decoded }),
    ...(typeof trailer === "string" ? { trailer } : {}),
    checksums,
  };
}
