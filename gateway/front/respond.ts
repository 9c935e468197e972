/**
 * The one place that writes S3 answers (STYLE rule 4): an executor's result (a relayed backend
 * answer, our own error, a document the gateway composed), and the errors of the front end
 * itself. Every answer carries our `x-amz-request-id`.
 *
 * A backend's error body is never relayed: S3 servers echo the service access key, the
 * StringToSign and the CanonicalRequest in it (PITFALLS.md, "URLs and hosts"). Only its code
 * and a vetted message are kept (errorFromAnswer), and the resource is the client's own.
 */
import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { readBodyLimited, readBounded } from "../../s3/client.js";
import { errorFromAnswer } from "../../s3/client-errors.js";
import { renderErrorXml, S3Error } from "../../s3/errors.js";
import { buildListAllMyBucketsResult, parseListAllMyBucketsResult } from "../../s3/xml.js";
import type { ExecResult } from "../execute/result.js";
import { ERROR_HEADERS_KEPT, relayedResponseHeaders } from "../upstream/headers.js";

/** What every answer needs to know about its request. */
export interface AnswerContext {
  readonly requestId: string;
  readonly method: string;
  /** The client-facing resource (`/bucket/key`), for error documents. */
  readonly resource: string | undefined;
}

/** Options for {@link sendError}. */
export interface SendErrorOptions {
  /** Headers to add (e.g. kept from a backend error answer). */
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** Close the connection after the answer (the request body was not, or not fully, read). */
  readonly closeConnection?: boolean;
}

/**
 * Writes an S3 error document (no body for HEAD). When headers were already sent (an error in
 * the middle of a relayed body), the connection is destroyed instead: a client must see a
 * failure, never a clean short answer.
 */
export function sendError(
  res: ServerResponse,
  err: S3Error,
  ctx: AnswerContext,
  options: SendErrorOptions = {},
): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = Buffer.from(
    renderErrorXml(err, {
      requestId: ctx.requestId,
      ...(ctx.resource === undefined ? {} : { resource: ctx.resource }),
    }),
    "utf8",
  );
  const headers: Record<string, string | string[]> = {
    ...options.headers,
    "x-amz-request-id": ctx.requestId,
    "content-type": "application/xml",
    "content-length": String(body.length),
  };
  if (options.closeConnection === true) headers["connection"] = "close";
  res.writeHead(err.status, headers);
  if (ctx.method === "HEAD" || err.status === 304) res.end();
  else res.end(body);
}

/** The largest backend error body read; the rest is discarded. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Whether a backend status is an error answer to re-render: anything from 300 up except 304
 * (Not Modified, a normal answer to a conditional request).
 */
export function isErrorStatus(status: number): boolean {
  return status >= 300 && status !== 304;
}

/**
 * Turns a backend error answer into our own S3Error (bounded read, vetted fields only) and the
 * headers worth keeping from it.
 */
export async function backendError(
  upstream: Dispatcher.ResponseData,
  options: { readonly secrets: readonly string[]; readonly hasKey: boolean },
): Promise<{ error: S3Error; headers: Record<string, string> }> {
  const body = await readBounded(upstream.body, MAX_ERROR_BODY).catch(() => Buffer.alloc(0));
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value !== undefined)
      flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  const parsed = errorFromAnswer({
    status: upstream.statusCode,
    headers: flat,
    body,
    secrets: options.secrets,
    ...(options.hasKey ? { key: "k" } : {}),
  });
  // A fresh error: the backend's request id, host id and resource stay behind.
  const error = S3Error.fromCode(parsed.code, parsed.status, { message: parsed.message });
  const headers: Record<string, string> = {};
  for (const name of ERROR_HEADERS_KEPT) {
    const v = flat[name];
    if (v !== undefined) headers[name] = v;
  }
  return { error, headers };
}

/** Options for {@link relaySuccess}. */
export interface RelayOptions {
  /** Called with the number of body bytes written to the client once the relay ends. */
  readonly onDone: (bytesOut: number, error: Error | undefined) => void;
}

/**
 * Relays a successful backend answer: status, headers (minus hop-by-hop and backend identity,
 * plus our request id) and the streamed body. A failure in the middle of the body (backend
 * gone, body idle timeout) destroys the client connection, so the client sees an error.
 */
export function relaySuccess(
  res: ServerResponse,
  upstream: Dispatcher.ResponseData,
  ctx: AnswerContext,
  options: RelayOptions,
): void {
  const headers = relayedResponseHeaders(upstream.headers);
  headers["x-amz-request-id"] = ctx.requestId;
  res.writeHead(upstream.statusCode, headers);
  let bytesOut = 0;
  let done = false;
  const finish = (err: Error | undefined): void => {
    if (done) return;
    done = true;
    if (err !== undefined) {
      // A backend failing mid-body must abort the client connection, never end a short
      // answer cleanly; a client going away must release the backend connection.
      upstream.body.destroy();
      res.destroy(err);
    }
    options.onDone(bytesOut, err);
  };
  // A plain pipe with our own error wiring instead of stream.pipeline: pipeline makes an
  // AbortController and, at the end, a DOMException for every answer, which the gateway
  // profile (bench/gateway) showed at ~1% of its CPU for 4 KiB GETs.
  upstream.body.on("data", (chunk: Buffer) => {
    bytesOut += chunk.length;
  });
  upstream.body.once("error", (err) => finish(err));
  upstream.body.once("end", () => res.end());
  upstream.body.pipe(res, { end: false });
  res.once("finish", () => finish(undefined));
  res.once("close", () => {
    if (!res.writableFinished) finish(new Error("client connection closed"));
  });
}

/** The largest ListBuckets document the gateway filters (a bound on what it buffers). */
const MAX_LIST_BUCKETS_BODY = 16 * 1024 * 1024;

/**
 * Reads a ListBuckets answer and rebuilds it with only the buckets `allow` accepts, so a
 * bucket-limited credential does not learn other buckets' names.
 */
export async function filterListBuckets(
  upstream: Dispatcher.ResponseData,
  allow: (bucket: string) => boolean,
): Promise<Buffer> {
  const raw = await readBodyLimited(upstream.body, MAX_LIST_BUCKETS_BODY);
  const doc = parseListAllMyBucketsResult(raw);
  const filtered = { ...doc, buckets: doc.buckets.filter((b) => allow(b.name)) };
  return Buffer.from(buildListAllMyBucketsResult(filtered), "utf8");
}

/** Writes a complete small body answer (the filtered ListBuckets). */
export function sendBody(
  res: ServerResponse,
  status: number,
  body: Buffer,
  ctx: AnswerContext,
  contentType: string,
): void {
  res.writeHead(status, {
    "x-amz-request-id": ctx.requestId,
    "content-type": contentType,
    "content-length": String(body.length),
  });
  res.end(body);
}

/** Options for {@link respond}. */
export interface RespondOptions {
  /** Secrets to scrub from a backend's error (the answering backend's service secret). */
  readonly secrets: readonly string[];
  /** Whether the request addressed an object (shapes the error code of a body-less 404). */
  readonly hasKey: boolean;
  /** Close the connection after an error answer (the request body was not fully read). */
  readonly closeConnection: boolean;
  /** Called with the number of body bytes written once the answer ends. */
  readonly onDone: (bytesOut: number) => void;
}

/** Writes an executor's result: the only way an executor's outcome reaches the client. */
export function respond(
  res: ServerResponse,
  result: ExecResult,
  ctx: AnswerContext,
  options: RespondOptions,
): void {
  switch (result.kind) {
    case "error":
      sendError(res, result.error, ctx, {
        ...(result.headers === undefined ? {} : { headers: result.headers }),
        closeConnection: options.closeConnection,
      });
      return;
    case "document": {
      const headers: Record<string, string> = {
        ...result.headers,
        "x-amz-request-id": ctx.requestId,
      };
      if (Buffer.isBuffer(result.body)) {
        headers["content-length"] = String(result.body.length);
        res.writeHead(result.status, headers);
        res.end(ctx.method === "HEAD" ? undefined : result.body);
        options.onDone(result.body.length);
        return;
      }
      res.writeHead(result.status, headers);
      let bytes = 0;
      const body = result.body;
      body.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      // A failure in the middle of a composed stream must abort the connection.
      body.once("error", (err) => res.destroy(err));
      res.once("close", () => {
        if (!res.writableFinished) body.destroy();
        options.onDone(bytes);
      });
      body.pipe(res);
      return;
    }
    case "upstream": {
      const { upstream } = result;
      if (isErrorStatus(upstream.statusCode)) {
        void backendError(upstream, { secrets: options.secrets, hasKey: options.hasKey }).then(
          ({ error, headers }) => {
            sendError(res, error, ctx, {
              headers: { ...headers, ...result.headers },
              closeConnection: options.closeConnection,
            });
          },
        );
        return;
      }
      for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
      relaySuccess(res, upstream, ctx, { onDone: (bytes) => options.onDone(bytes) });
      return;
    }
  }
}
