/**
 * The `copy` plan (DESIGN 3.3): CopyObject and UploadPartCopy in migrate mode. The destination
 * is the target (or the source, for a part of an upload that lives there); the copy source is
 * read where it is: first where a backend can copy it by itself (the copy source on the
 * destination's own backend), else across clusters, a copy the gateway streams itself — GET
 * from one backend, PUT (UploadPart) to the other — honouring the metadata and tagging
 * directives, the `x-amz-copy-source-if-*` conditions and `x-amz-copy-source-range`, and
 * answering with S3's own CopyObjectResult / CopyPartResult.
 *
 * Integrity: when the copy source is a whole single-part object its ETag is the MD5 of its
 * bytes, so the PUT carries it as Content-MD5 and the destination refuses anything else. A
 * source that fails mid-body aborts the PUT before its last byte: nothing is committed.
 * Objects over 5 GiB (the largest single PUT) are copied part by part.
 */
import { S3ClientError } from "../../s3/client-errors.js";
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  getObjectTagging,
  metadataFromHeaders,
  metadataToHeaders,
  uploadPart,
} from "../../s3/client-operations.js";
import { S3Error } from "../../s3/errors.js";
import { EMPTY_SHA256, UNSIGNED_PAYLOAD } from "../../s3/sigv4-canonical.js";
import { percentDecode, uriEncode } from "../../s3/uri-encode.js";
import { buildCopyObjectResult, buildCopyPartResult } from "../../s3/xml-documents.js";
import { readBounded } from "../../s3/client.js";
import type { CopyPlan } from "../routing/plan.js";
import { backendTransport, flattenHeaders } from "../upstream/backend-transport.js";
import { sendUpstream, type Backend } from "../upstream/backends.js";
import type { ExecContext } from "./context.js";
import { sourceUnavailable } from "./facts.js";
import type { ExecResult } from "./result.js";
import { readUpstreamError, sendWithBody } from "./single.js";

/** The largest object one PUT may carry (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html). */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

/** Part size of a cross-cluster copy of an object over {@link MAX_SINGLE_PUT_BYTES}. */
export const CROSS_COPY_PART_BYTES = 512 * 1024 ** 2;

/** One place the copy source may be. */
interface Candidate {
  readonly backend: Backend;
  /** The bucket on that backend. */
  readonly bucket: string;
  /** For a migrate-mode bucket's source: the bucket whose tombstones hide its keys. */
  readonly tombstoneBucket?: string;
}

/** Request headers that describe the copy itself, never sent with the cross-cluster PUT. */
const COPY_HEADERS = /^x-amz-(copy-source.*|metadata-directive|tagging-directive)$/;

/** Standard metadata headers, replaced as a whole by `x-amz-metadata-directive: REPLACE`. */
const METADATA_HEADER =
  /^(content-type|cache-control|content-disposition|content-encoding|content-language|expires|x-amz-meta-.*)$/;

/** Carries out a `copy` plan. */
export async function executeCopy(ctx: ExecContext, plan: CopyPlan): Promise<ExecResult> {
  const cs = ctx.copySource;
  if (cs === undefined) throw new S3Error("InvalidRequest", { message: "Missing copy source." });
  const { key: sourceKey, versionId } = decodeCopySource(cs.rawRest);
  const destination: Candidate =
    plan.destination === "target"
      ? { backend: ctx.backends.target, bucket: plan.bucket }
      : { backend: ctx.backends.source(plan.source), bucket: plan.source.sourceBucket };
  const candidates = copySourceCandidates(ctx, cs.bucket);
  // A copy has no body of its own; read what was sent once, so each attempt can send it.
  const body = await ctx.body.buffered(64 * 1024);
  let lastMiss: ExecResult | undefined;
  for (const from of candidates) {
    if (sameService(from.backend, destination.backend)) {
      // The destination's backend copies it by itself; a NoSuchKey means "not here".
      const header =
        `/${uriEncode(from.bucket)}/` +
        `${uriEncode(sourceKey, { keepSlash: true })}` +
        (versionId === undefined ? "" : `?versionId=${uriEncode(versionId)}`);
      const upstream = await sendWithBody(ctx, {
        backend: destination.backend,
        bucket: destination.bucket,
        headers: { ...withoutDropped(ctx.headers, plan.dropHeaders), "x-amz-copy-source": header },
        body,
      });
      if (upstream.statusCode < 300)
        return { kind: "upstream", upstream, backend: destination.backend };
      const error = await readUpstreamError(upstream, destination.backend, true);
      if (error.error.code !== "NoSuchKey" && error.error.code !== "NoSuchVersion") return error;
      lastMiss = error;
      continue;
    }
    if (
      from.tombstoneBucket !== undefined &&
      (await ctx.keys.hasTombstone(from.tombstoneBucket, sourceKey))
    ) {
      // Deleted by a client during migrate mode: the source's copy is not the object.
      continue;
    }
    const result = await crossCopy(ctx, plan, { from, destination, sourceKey, versionId });
    if (result !== undefined) return result;
  }
  return (
    lastMiss ?? {
      kind: "error",
      error: new S3Error("NoSuchKey", { resource: `/${cs.bucket}/${sourceKey}` }),
    }
  );
}

/** The places the copy source bucket's objects live, in the order to look. */
function copySourceCandidates(ctx: ExecContext, bucket: string): Candidate[] {
  const state = ctx.snapshot.buckets.get(bucket);
  const target: Candidate = { backend: ctx.backends.target, bucket };
  if (state === undefined || state.mode === "ready") return [target];
  const source: Candidate = { backend: ctx.backends.source(state), bucket: state.sourceBucket };
  return state.mode === "forward" ? [source] : [target, { ...source, tombstoneBucket: bucket }];
}

/** Whether one backend can copy between the two (same endpoint, pool and credential). */
function sameService(a: Backend, b: Backend): boolean {
  return (
    a.origin === b.origin &&
    a.pool === b.pool &&
    a.credentials.accessKeyId === b.credentials.accessKeyId
  );
}

function withoutDropped(
  headers: Readonly<Record<string, string>>,
  drop: readonly string[] | undefined,
): Record<string, string> {
  const out = { ...headers };
  for (const name of drop ?? []) delete out[name];
  return out;
}

/** Splits `x-amz-copy-source`'s raw remainder into the decoded key and version id. */
function decodeCopySource(rawRest: string): { key: string; versionId: string | undefined } {
  const q = rawRest.indexOf("?");
  const rawKey = q < 0 ? rawRest : rawRest.slice(0, q);
  let versionId: string | undefined;
  if (q >= 0) {
    for (const part of rawRest.slice(q + 1).split("&")) {
      const [name, value = ""] = part.split("=");
      if (name === "versionId") versionId = decode(value);
    }
  }
  return { key: decode(rawKey), versionId };
}

function decode(text: string): string {
  try {
    return percentDecode(text).toString("utf8");
  } catch {
    throw new S3Error("InvalidArgument", {
      message: "Invalid copy source encoding.",
      extra: { ArgumentName: "x-amz-copy-source" },
    });
  }
}

/** The GET headers that carry the copy-source conditions and range. */
function sourceGetHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const map: [string, string][] = [
    ["x-amz-copy-source-if-match", "if-match"],
    ["x-amz-copy-source-if-none-match", "if-none-match"],
    ["x-amz-copy-source-if-modified-since", "if-modified-since"],
    ["x-amz-copy-source-if-unmodified-since", "if-unmodified-since"],
    ["x-amz-copy-source-range", "range"],
  ];
  for (const [from, to] of map) {
    const v = headers[from];
    if (v !== undefined) out[to] = v;
  }
  return out;
}

/**
 * Streams the copy source from `from` to `destination`. Resolves undefined when `from` does
 * not hold the key (the next candidate is tried).
 */
async function crossCopy(
  ctx: ExecContext,
  plan: CopyPlan,
  input: {
    from: Candidate;
    destination: Candidate;
    sourceKey: string;
    versionId: string | undefined;
  },
): Promise<ExecResult | undefined> {
  const { from, destination, sourceKey, versionId } = input;
  const isPart = ctx.operation === "UploadPartCopy";
  ctx.touch(from.backend.name);
  ctx.touch(destination.backend.name);
  const started = process.hrtime.bigint();
  let get;
  try {
    get = await sendUpstream(from.backend, {
      method: "GET",
      bucket: from.bucket,
      key: sourceKey,
      query: versionId === undefined ? [] : [["versionId", versionId]],
      headers: sourceGetHeaders(ctx.headers),
      body: undefined,
      contentLength: undefined,
      payloadHash: EMPTY_SHA256,
      signal: ctx.signal,
    });
  } catch (err) {
    throw from.backend.name === "source" ? sourceUnavailable(err) : err;
  } finally {
    if (from.backend.name === "source") {
      ctx.metrics.sourceCall(ctx.operation, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
  const getHeaders = flattenHeaders(get.headers);
  if (get.statusCode === 304 || get.statusCode === 412) {
    get.body.resume();
    return { kind: "error", error: new S3Error("PreconditionFailed") };
  }
  if (get.statusCode >= 300) {
    const body = await readBounded(get.body, 64 * 1024).catch(() => Buffer.alloc(0));
    const err = backendTransport(from.backend, ctx.signal).errorFromAnswer({
      status: get.statusCode,
      headers: getHeaders,
      body,
      key: sourceKey,
    });
    if (err.status === 404 && (err.code === "NoSuchKey" || err.code === "NoSuchVersion")) {
      return undefined;
    }
    if (err.code === "InvalidRange") return { kind: "error", error: err };
    if (from.backend.name === "source" && err.status >= 500) throw sourceUnavailable(err);
    return { kind: "error", error: err };
  }
  const size = Number(getHeaders["content-length"] ?? "-1");
  if (!Number.isSafeInteger(size) || size < 0) {
    get.body.destroy();
    throw new S3Error("InternalError", { message: "The copy source answered without a length." });
  }
  if (!isPart && size > MAX_SINGLE_PUT_BYTES) {
    get.body.destroy();
    return await copyInParts(ctx, plan, { ...input, size, getHeaders });
  }
  const headers = isPart
    ? {}
    : await destinationHeaders(ctx, plan, { from, sourceKey, versionId, getHeaders });
  const wholeEtag = /^"?([0-9a-f]{32})"?$/.exec(getHeaders["etag"] ?? "");
  if (
    wholeEtag !== null &&
    get.statusCode === 200 &&
    getHeaders["x-amz-server-side-encryption"] !== "aws:kms"
  ) {
    // A single-part object's ETag is the MD5 of its bytes: the destination verifies them.
    headers["content-md5"] = Buffer.from(wholeEtag[1] as string, "hex").toString("base64");
  }
  let put;
  try {
    put = await sendUpstream(destination.backend, {
      method: "PUT",
      bucket: destination.bucket,
      key: ctx.key,
      query: isPart ? ctx.query : [],
      headers,
      body: get.body,
      contentLength: size,
      payloadHash: UNSIGNED_PAYLOAD,
      signal: ctx.signal,
    });
  } catch (err) {
    get.body.destroy();
    ctx.metrics.crossCopy(ctx.operation, "error", 0);
    throw err;
  }
  if (put.statusCode >= 300) {
    ctx.metrics.crossCopy(ctx.operation, "error", 0);
    return { kind: "upstream", upstream: put, backend: destination.backend };
  }
  put.body.resume();
  ctx.metrics.crossCopy(ctx.operation, "ok", size);
  const etag = flattenHeaders(put.headers)["etag"] ?? "";
  const result = { etag, lastModified: new Date().toISOString() };
  const answerHeaders: Record<string, string> = { "content-type": "application/xml" };
  if (versionId !== undefined) answerHeaders["x-amz-copy-source-version-id"] = versionId;
  const versionOut = flattenHeaders(put.headers)["x-amz-version-id"];
  if (versionOut !== undefined && !isPart) answerHeaders["x-amz-version-id"] = versionOut;
  return {
    kind: "document",
    status: 200,
    headers: answerHeaders,
    body: Buffer.from(isPart ? buildCopyPartResult(result) : buildCopyObjectResult(result), "utf8"),
  };
}

/**
 * The PUT headers of a cross-cluster CopyObject: metadata from the copy source (COPY, the
 * default) or from the request (REPLACE); tags likewise by `x-amz-tagging-directive`; every
 * other request header (storage class, ACL, encryption, object lock, the client's own
 * conditions on the destination) as sent.
 */
async function destinationHeaders(
  ctx: ExecContext,
  plan: CopyPlan,
  input: {
    from: Candidate;
    sourceKey: string;
    versionId: string | undefined;
    getHeaders: Record<string, string>;
  },
): Promise<Record<string, string>> {
  const replaceMeta =
    (ctx.headers["x-amz-metadata-directive"] ?? "COPY").toUpperCase() === "REPLACE";
  const replaceTags =
    (ctx.headers["x-amz-tagging-directive"] ?? "COPY").toUpperCase() === "REPLACE";
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(withoutDropped(ctx.headers, plan.dropHeaders))) {
    if (COPY_HEADERS.test(name)) continue;
    if (!replaceMeta && METADATA_HEADER.test(name)) continue;
    if (!replaceTags && name === "x-amz-tagging") continue;
    if (name === "content-md5" || name.startsWith("x-amz-checksum-")) continue;
    out[name] = value;
  }
  if (!replaceMeta) Object.assign(out, metadataToHeaders(metadataFromHeaders(input.getHeaders)));
  if (!replaceTags && Number(input.getHeaders["x-amz-tagging-count"] ?? "0") > 0) {
    const tags = await getObjectTagging(backendTransport(input.from.backend, ctx.signal), {
      bucket: input.from.bucket,
      key: input.sourceKey,
      ...(input.versionId === undefined ? {} : { versionId: input.versionId }),
    });
    if (tags.length > 0) {
      out["x-amz-tagging"] = tags
        .map((t) => `${encodeURIComponent(t.key)}=${encodeURIComponent(t.value)}`)
        .join("&");
    }
  }
  return out;
}

/**
 * A cross-cluster CopyObject of an object over 5 GiB: a multipart upload on the destination,
 * one ranged GET per part (pinned to the source's ETag, so a change mid-copy fails it), parts
 * sent one after the other (memory stays one stream), aborted on any failure.
 */
async function copyInParts(
  ctx: ExecContext,
  plan: CopyPlan,
  input: {
    from: Candidate;
    destination: Candidate;
    sourceKey: string;
    versionId: string | undefined;
    size: number;
    getHeaders: Record<string, string>;
  },
): Promise<ExecResult> {
  const { from, destination, sourceKey, versionId, size, getHeaders } = input;
  const headers = await destinationHeaders(ctx, plan, { from, sourceKey, versionId, getHeaders });
  const dest = backendTransport(destination.backend, ctx.signal);
  const key = ctx.key ?? "";
  const { uploadId } = await createMultipartUpload(dest, {
    bucket: destination.bucket,
    key,
    headers,
  });
  const parts: { partNumber: number; etag: string }[] = [];
  try {
    for (let start = 0, n = 1; start < size; start += CROSS_COPY_PART_BYTES, n++) {
      const end = Math.min(size, start + CROSS_COPY_PART_BYTES) - 1;
      const get = await sendUpstream(from.backend, {
        method: "GET",
        bucket: from.bucket,
        key: sourceKey,
        query: versionId === undefined ? [] : [["versionId", versionId]],
        headers: { range: `bytes=${start}-${end}`, "if-match": getHeaders["etag"] ?? "*" },
        body: undefined,
        contentLength: undefined,
        payloadHash: EMPTY_SHA256,
        signal: ctx.signal,
      });
      if (get.statusCode !== 206) {
        get.body.resume();
        throw new S3Error("InternalError", {
          message: "The copy source changed or failed during the copy.",
        });
      }
      const part = await uploadPart(dest, {
        bucket: destination.bucket,
        key,
        uploadId,
        partNumber: n,
        body: get.body,
        contentLength: end - start + 1,
      });
      parts.push({ partNumber: n, etag: part.etag });
    }
    // The typed call also turns an Error document inside a 200 answer into an error.
    const { etag } = await completeMultipartUpload(dest, {
      bucket: destination.bucket,
      key,
      uploadId,
      parts,
    });
    ctx.metrics.crossCopy(ctx.operation, "ok", size);
    return {
      kind: "document",
      status: 200,
      headers: { "content-type": "application/xml" },
      body: Buffer.from(
        buildCopyObjectResult({ etag, lastModified: new Date().toISOString() }),
        "utf8",
      ),
    };
  } catch (err) {
    ctx.metrics.crossCopy(ctx.operation, "error", 0);
    await abortMultipartUpload(dest, {
      bucket: destination.bucket,
      key: ctx.key ?? "",
      uploadId,
    }).catch(() => undefined);
    if (err instanceof S3ClientError && from.backend.name === "source")
      throw sourceUnavailable(err);
    throw err;
  }
}
