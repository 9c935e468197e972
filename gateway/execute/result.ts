/**
 * What an executor returns; the responder (front/respond.ts) writes it. Executors never write
 * to the client themselves, so every answer gets the same request id, error rendering and
 * accounting.
 */
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { S3Error } from "../../s3/errors.js";
import type { Backend } from "../upstream/backends.js";

/** A backend's answer to relay: a success streamed as is, or an error re-rendered as ours. */
export interface UpstreamResult {
  readonly kind: "upstream";
  readonly upstream: Dispatcher.ResponseData;
  /** The backend that answered (its secrets are scrubbed from an error). */
  readonly backend: Backend;
  /** Headers to add to the answer (e.g. that the source served it). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Our own S3 error. */
export interface ErrorResult {
  readonly kind: "error";
  readonly error: S3Error;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A document the gateway composed (a merged DeleteResult, a CopyObjectResult…). */
export interface DocumentResult {
  readonly kind: "document";
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The body: whole, or streamed (a merged listing). */
  readonly body: Buffer | Readable;
}

/** The outcome of one executor. */
export type ExecResult = UpstreamResult | ErrorResult | DocumentResult;

/** The response header that says an answer came from the source (DESIGN 3.3, observability). */
export const SERVED_FROM_HEADER = "x-s3gw-served-from";
