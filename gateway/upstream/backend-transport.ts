/**
 * An {@link S3Transport} over one of the gateway's backends: the typed calls of
 * s3/client-operations.ts (HEAD, GET tagging, ListParts…) re-signed with the backend's service
 * credential on the gateway's own pool, with the same error mapping as S3Client. The plan
 * executors use it for the calls the gateway makes on its own behalf; relayed client requests
 * go through {@link sendUpstream} directly.
 */
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import {
  readBounded,
  type S3RequestInput,
  type S3Response,
  type S3Transport,
} from "../../s3/client.js";
import { errorFromAnswer, type S3ClientError } from "../../s3/client-errors.js";
import { EMPTY_SHA256, UNSIGNED_PAYLOAD } from "../../s3/sigv4-canonical.js";
import { sendUpstream, type Backend } from "./backends.js";

/** The largest error body read; the rest is discarded. */
const MAX_ERROR_BODY = 64 * 1024;

/** A transport that sends typed calls to `backend`, aborted by `signal`. */
export function backendTransport(backend: Backend, signal: AbortSignal): S3Transport {
  const scrub = (answer: {
    status: number;
    headers: Record<string, string>;
    body: Buffer;
    bucket?: string;
    key?: string;
  }): S3ClientError => errorFromAnswer({ ...answer, secrets: backend.secrets });
  return {
    errorFromAnswer: scrub,
    async request(input: S3RequestInput): Promise<S3Response> {
      const body = typeof input.body === "string" ? Buffer.from(input.body, "utf8") : input.body;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(input.headers ?? {})) {
        headers[name.toLowerCase()] = value;
      }
      const streaming = body instanceof Readable;
      const res = await sendUpstream(backend, {
        method: input.method,
        bucket: input.bucket,
        key: input.key,
        query: queryPairs(input.query),
        headers,
        body,
        contentLength: streaming ? input.contentLength : body?.length,
        payloadHash:
          input.payloadHash ??
          (body === undefined
            ? EMPTY_SHA256
            : streaming
              ? UNSIGNED_PAYLOAD
              : createHash("sha256").update(body).digest("hex")),
        signal: input.signal ?? signal,
      });
      const flat = flattenHeaders(res.headers);
      const status = res.statusCode;
      if ((status >= 200 && status < 300) || status === 304 || input.okStatuses?.includes(status)) {
        return { status, headers: flat, body: res.body };
      }
      const errBody = await readBounded(res.body, MAX_ERROR_BODY).catch(() => Buffer.alloc(0));
      throw scrub({
        status,
        headers: flat,
        body: errBody,
        ...(input.bucket === undefined ? {} : { bucket: input.bucket }),
        ...(input.key === undefined ? {} : { key: input.key }),
      });
    },
  };
}

function queryPairs(query: S3RequestInput["query"]): [string, string][] {
  if (query === undefined) return [];
  const entries: Iterable<readonly [string, string | undefined]> = Array.isArray(query)
    ? (query as ReadonlyArray<readonly [string, string]>)
    : Object.entries(query as Record<string, string | undefined>);
  const out: [string, string][] = [];
  for (const [k, v] of entries) if (v !== undefined) out.push([k, v]);
  return out;
}

/** undici's headers as plain strings, lower-case names, repeats joined. */
export function flattenHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
