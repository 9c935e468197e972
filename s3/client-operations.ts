/**
 * Typed S3 operations on top of {@link S3Transport.request}: each builds the request AWS documents
 * for the operation (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html)
 * and returns a plain object. Object bodies stay streams; XML bodies are read with a size cap.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { uriEncode } from "./uri-encode.js";
import { S3ClientError, readBodyLimited, type S3Response, type S3Transport } from "./client.js";
import {
  DEFAULT_RESPONSE_XML_LIMIT,
  S3_XMLNS,
  XmlWriter,
  buildCompleteMultipartUpload,
  buildDeleteRequest,
  buildTagging,
  parseCompleteMultipartUploadResult,
  parseCopyObjectResult,
  parseDeleteResult,
  parseInitiateMultipartUploadResult,
  parseListAllMyBucketsResult,
  parseListBucketResultV2,
  parseListMultipartUploadsResult,
  parseListPartsResult,
  parseTagging,
  rootElementName,
  s3UrlDecode,
  withDefined,
  type CompleteMultipartUploadResult,
  type CompletedPart,
  type CopyResult,
  type DeleteObjectEntry,
  type DeleteResult,
  type ListAllMyBucketsResult,
  type ListBucketResultV2,
  type ListMultipartUploadsResult,
  type ListPartsResult,
  type XmlTag,
} from "./xml.js";

/** Standard metadata S3 stores with an object and returns on GET/HEAD. */
export interface ObjectMetadata {
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  /** The `Expires` header exactly as stored (an HTTP date, but S3 keeps any string). */
  expires?: string;
  /** `x-amz-meta-*` values by lower-case name without the prefix. */
  userMetadata?: Record<string, string>;
}

const STANDARD_METADATA: ReadonlyArray<[keyof ObjectMetadata, string]> = [
  ["contentType", "content-type"],
  ["cacheControl", "cache-control"],
  ["contentDisposition", "content-disposition"],
  ["contentEncoding", "content-encoding"],
  ["contentLanguage", "content-language"],
  ["expires", "expires"],
];

const USER_META_PREFIX = "x-amz-meta-";

/** The request headers that store `metadata` with an object. */
export function metadataToHeaders(metadata: ObjectMetadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (metadata === undefined) return out;
  for (const [field, header] of STANDARD_METADATA) {
    const value = metadata[field];
    if (typeof value === "string") out[header] = value;
  }
  for (const [name, value] of Object.entries(metadata.userMetadata ?? {})) {
    out[USER_META_PREFIX + name.toLowerCase()] = value;
  }
  return out;
}

/**
 * The metadata in GET/HEAD response headers. `aws-chunked` is dropped from Content-Encoding:
 * it describes a transfer, never the object (PITFALLS.md, "Copier").
 */
export function metadataFromHeaders(headers: Record<string, string>): ObjectMetadata {
  const out: ObjectMetadata = {};
  for (const [field, header] of STANDARD_METADATA) {
    const value = headers[header];
    if (value !== undefined) (out as Record<string, string>)[field] = value;
  }
  if (out.contentEncoding !== undefined) {
    const kept = out.contentEncoding
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "" && s.toLowerCase() !== "aws-chunked");
    if (kept.length === 0) delete out.contentEncoding;
    else out.contentEncoding = kept.join(", ");
  }
  const user: Record<string, string> = {};
  let any = false;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(USER_META_PREFIX)) {
      user[name.slice(USER_META_PREFIX.length)] = value;
      any = true;
    }
  }
  if (any) out.userMetadata = user;
  return out;
}

/** What GET and HEAD say about an object. */
export interface ObjectInfo {
  /** HTTP status: 200, 206 for a range or part, 304 when a condition said not modified. */
  status: number;
  /** Bytes in this answer's body (the range or part for 206). */
  contentLength: number;
  /** `Content-Range` of a 206 answer. */
  contentRange?: string;
  /** The ETag with quotes. */
  etag: string;
  /** The `Last-Modified` HTTP date. */
  lastModified?: string;
  versionId?: string;
  storageClass?: string;
  /** `x-amz-mp-parts-count`: how many parts a multipart object has (HEAD/GET with partNumber). */
  partsCount?: number;
  /** `x-amz-tagging-count`. */
  tagCount?: number;
  /** `x-amz-checksum-*` values by algorithm header name. */
  checksums?: Record<string, string>;
  metadata: ObjectMetadata;
  /** Every response header, for anything not surfaced above. */
  headers: Record<string, string>;
}

function intHeader(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]+$/.test(value)) return undefined;
  return Number(value);
}

function objectInfo(res: S3Response): ObjectInfo {
  const h = res.headers;
  const info: ObjectInfo = {
    status: res.status,
    contentLength: intHeader(h["content-length"]) ?? 0,
    etag: h["etag"] ?? "",
    metadata: metadataFromHeaders(h),
    headers: h,
  };
  withDefined(info, {
    contentRange: h["content-range"],
    lastModified: h["last-modified"],
    versionId: h["x-amz-version-id"],
    storageClass: h["x-amz-storage-class"],
    partsCount: intHeader(h["x-amz-mp-parts-count"]),
    tagCount: intHeader(h["x-amz-tagging-count"]),
  });
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-type") {
      (info.checksums ??= {})[name] = value;
    }
  }
  return info;
}

/** Conditional request headers (RFC 9110 §13) S3 honours on GET, HEAD and (some) PUT. */
export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

function conditionHeaders(c: Conditions): Record<string, string> {
  const out: Record<string, string> = {};
  if (c.ifMatch !== undefined) out["if-match"] = c.ifMatch;
  if (c.ifNoneMatch !== undefined) out["if-none-match"] = c.ifNoneMatch;
  if (c.ifModifiedSince !== undefined) out["if-modified-since"] = c.ifModifiedSince;
  if (c.ifUnmodifiedSince !== undefined) out["if-unmodified-since"] = c.ifUnmodifiedSince;
  return out;
}

/** Fields every operation on a bucket accepts. */
export interface BucketInput {
  bucket: string;
  signal?: AbortSignal;
}

/** Fields every operation on an object accepts. */
export interface ObjectInput extends BucketInput {
  key: string;
}

async function readXml(res: S3Response, ctx: { bucket?: string; key?: string }): Promise<Buffer> {
  return readBodyLimited(res.body, DEFAULT_RESPONSE_XML_LIMIT, ctx);
}

/**
 * Reads and parses an XML answer. A document we cannot read is the server's fault, so it
 * becomes `InternalError` (500), never the `MalformedXML` (400) a gateway would blame its
 * client for.
 */
async function readDocument<T>(
  res: S3Response,
  ctx: { bucket?: string; key?: string },
  parse: (body: Buffer) => T,
): Promise<T> {
  const body = await readXml(res, ctx);
  try {
    return parse(body);
  } catch (err) {
    if (err instanceof S3ClientError) throw err;
    throw new S3ClientError("InternalError", {
      status: 500,
      message: "The S3 server sent a response document that could not be read.",
      requestId: res.headers["x-amz-request-id"],
      ...ctx,
      cause: err,
    });
  }
}

async function drain(res: S3Response): Promise<void> {
  res.body.resume();
  // Most write answers (PutObject, UploadPart) have no body: nothing to wait for, and a
  // promise with three listeners per object is measurable on the copier's small-object path.
  if (res.headers["content-length"] === "0") return;
  await new Promise<void>((resolve) => {
    if (res.body.readableEnded || res.body.destroyed) resolve();
    else
      res.body
        .once("end", resolve)
        .once("error", () => resolve())
        .once("close", resolve);
  });
}

/**
 * CopyObject, UploadPartCopy and CompleteMultipartUpload can fail after the 200 status line
 * was sent: the body is then an Error document (https://repost.aws/knowledge-center/s3-resolve-200-internalerror).
 */
function throwIfErrorDocument(
  client: S3Transport,
  body: Buffer,
  res: S3Response,
  ctx: { bucket?: string; key?: string },
): void {
  if (rootElementName(body, { maxBytes: DEFAULT_RESPONSE_XML_LIMIT }) !== "Error") return;
  throw client.errorFromAnswer({ status: 500, headers: res.headers, body, ...ctx });
}

// ---------------------------------------------------------------------------------------------
// Buckets

/** HeadBucket: resolves when the bucket exists and is accessible; NoSuchBucket / AccessDenied otherwise. */
export async function headBucket(
  client: S3Transport,
  input: BucketInput,
): Promise<{ region?: string }> {
  const res = await client.request({ method: "HEAD", bucket: input.bucket, signal: input.signal });
  await drain(res);
  const region = res.headers["x-amz-bucket-region"];
  return region === undefined ? {} : { region };
}

/** CreateBucket, with a LocationConstraint when `locationConstraint` is given. */
export async function createBucket(
  client: S3Transport,
  input: BucketInput & { locationConstraint?: string },
): Promise<void> {
  const body =
    input.locationConstraint === undefined
      ? undefined
      : new XmlWriter()
          .open("CreateBucketConfiguration", { xmlns: S3_XMLNS })
          .leaf("LocationConstraint", input.locationConstraint)
          .close("CreateBucketConfiguration")
          .toString();
  const res = await client.request({
    method: "PUT",
    bucket: input.bucket,
    body,
    signal: input.signal,
  });
  await drain(res);
}

/** DeleteBucket (the bucket must be empty). */
export async function deleteBucket(client: S3Transport, input: BucketInput): Promise<void> {
  const res = await client.request({
    method: "DELETE",
    bucket: input.bucket,
    signal: input.signal,
  });
  await drain(res);
}

/** ListBuckets: every bucket the credential owns. */
export async function listBuckets(
  client: S3Transport,
  input: { signal?: AbortSignal } = {},
): Promise<ListAllMyBucketsResult> {
  const res = await client.request({ method: "GET", signal: input.signal });
  return await readDocument(res, {}, parseListAllMyBucketsResult);
}

// ---------------------------------------------------------------------------------------------
// Objects

/** Input of HeadObject. */
export interface HeadObjectInput extends ObjectInput, Conditions {
  /** Ask about one part (`x-amz-mp-parts-count` tells the number of parts). */
  partNumber?: number;
  versionId?: string;
  range?: string;
}

/** HeadObject: the object's size, ETag and metadata, without its body. */
export async function headObject(client: S3Transport, input: HeadObjectInput): Promise<ObjectInfo> {
  const headers = conditionHeaders(input);
  if (input.range !== undefined) headers["range"] = input.range;
  const res = await client.request({
    method: "HEAD",
    bucket: input.bucket,
    key: input.key,
    query: {
      partNumber: input.partNumber === undefined ? undefined : String(input.partNumber),
      versionId: input.versionId,
    },
    headers,
    signal: input.signal,
  });
  await drain(res);
  return objectInfo(res);
}

/** Input of GetObject. */
export interface GetObjectInput extends ObjectInput, Conditions {
  /** An HTTP Range, `bytes=0-99`, or `{ start, end }` (inclusive end; open when absent). */
  range?: string | { start: number; end?: number };
  partNumber?: number;
  versionId?: string;
}

/** The answer of GetObject: metadata and the body as a stream (consume or destroy it). */
export interface GetObjectOutput extends ObjectInfo {
  body: Readable;
}

/** GetObject: streams the object (or a range or part of it). A 304 answer has an empty body. */
export async function getObject(
  client: S3Transport,
  input: GetObjectInput,
): Promise<GetObjectOutput> {
  const headers = conditionHeaders(input);
  if (input.range !== undefined) {
    headers["range"] =
      typeof input.range === "string"
        ? input.range
        : `bytes=${input.range.start}-${input.range.end ?? ""}`;
  }
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    key: input.key,
    query: {
      partNumber: input.partNumber === undefined ? undefined : String(input.partNumber),
      versionId: input.versionId,
    },
    headers,
    signal: input.signal,
  });
  return { ...objectInfo(res), body: res.body };
}

/** Input of PutObject. */
export interface PutObjectInput extends ObjectInput {
  body: Buffer | string | Readable;
  /** Required with a stream body. */
  contentLength?: number;
  metadata?: ObjectMetadata;
  /** `*` makes the write conditional on the key not existing (412 when it does). */
  ifNoneMatch?: string;
  ifMatch?: string;
  /** Base64 MD5 of the body, checked by the server. */
  contentMd5?: string;
  /** URL-encoded tag set (`k1=v1&k2=v2`) or tags. */
  tagging?: string | readonly XmlTag[];
  /** Any other header (checksums, storage class, ...); signed like the rest. */
  headers?: Record<string, string>;
  /** Overrides the payload hash (e.g. a known SHA-256 of a stream). */
  payloadHash?: string;
}

/** What a write returns. */
export interface PutObjectOutput {
  etag: string;
  versionId?: string;
  headers: Record<string, string>;
}

function taggingHeader(tagging: string | readonly XmlTag[]): string {
  if (typeof tagging === "string") return tagging;
  return tagging
    .map((t) => `${encodeURIComponent(t.key)}=${encodeURIComponent(t.value)}`)
    .join("&");
}

function writeHeaders(input: {
  metadata?: ObjectMetadata;
  ifNoneMatch?: string;
  ifMatch?: string;
  contentMd5?: string;
  tagging?: string | readonly XmlTag[];
  headers?: Record<string, string>;
}): Record<string, string> {
  const headers: Record<string, string> = { ...metadataToHeaders(input.metadata) };
  if (input.ifNoneMatch !== undefined) headers["if-none-match"] = input.ifNoneMatch;
  if (input.ifMatch !== undefined) headers["if-match"] = input.ifMatch;
  if (input.contentMd5 !== undefined) headers["content-md5"] = input.contentMd5;
  if (input.tagging !== undefined) headers["x-amz-tagging"] = taggingHeader(input.tagging);
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  return headers;
}

function writeOutput(res: S3Response): PutObjectOutput {
  const out: PutObjectOutput = { etag: res.headers["etag"] ?? "", headers: res.headers };
  const versionId = res.headers["x-amz-version-id"];
  if (versionId !== undefined) out.versionId = versionId;
  return out;
}

/** PutObject from a Buffer, string or stream (a stream is sent once, never retried). */
export async function putObject(
  client: S3Transport,
  input: PutObjectInput,
): Promise<PutObjectOutput> {
  const res = await sendPutObject(client, input, []);
  await drain(res);
  return writeOutput(res);
}

/**
 * The answer of a conditional write (`If-None-Match: *`, `If-Match`): written, or refused
 * because the precondition failed (412), which is an outcome, not an error
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
 */
export type ConditionalWrite<T> = ({ written: true } & T) | { written: false };

/**
 * PutObject with a condition (`ifNoneMatch: "*"` to create only, or `ifMatch`): a 412 answer
 * resolves `{ written: false }` instead of throwing. Other failures throw as with putObject.
 */
export async function putObjectConditionally(
  client: S3Transport,
  input: PutObjectInput,
): Promise<ConditionalWrite<PutObjectOutput>> {
  const res = await sendPutObject(client, input, PRECONDITION_FAILED);
  await drain(res);
  if (res.status === 412) return { written: false };
  return { written: true, ...writeOutput(res) };
}

const PRECONDITION_FAILED: readonly number[] = [412];

function sendPutObject(
  client: S3Transport,
  input: PutObjectInput,
  okStatuses: readonly number[],
): Promise<S3Response> {
  return client.request({
    method: "PUT",
    bucket: input.bucket,
    key: input.key,
    headers: writeHeaders(input),
    body: input.body,
    contentLength: input.contentLength,
    payloadHash: input.payloadHash,
    okStatuses,
    signal: input.signal,
  });
}

/** Input of CopyObject. */
export interface CopyObjectInput extends ObjectInput {
  sourceBucket: string;
  sourceKey: string;
  sourceVersionId?: string;
  /** `COPY` (default on S3) keeps the source's metadata; `REPLACE` uses `metadata`. */
  metadataDirective?: "COPY" | "REPLACE";
  metadata?: ObjectMetadata;
  taggingDirective?: "COPY" | "REPLACE";
  tagging?: string | readonly XmlTag[];
  ifNoneMatch?: string;
  /** `x-amz-copy-source-if-*` conditions on the source. */
  sourceConditions?: Conditions;
  headers?: Record<string, string>;
}

/** The `x-amz-copy-source` value: `/bucket/key` URL-encoded, `?versionId=` when given. */
export function copySourceHeader(bucket: string, key: string, versionId?: string): string {
  const path = `${uriEncode(bucket)}/${uriEncode(key, { keepSlash: true })}`;
  return versionId === undefined ? path : `${path}?versionId=${uriEncode(versionId)}`;
}

/** CopyObject (server-side copy within one endpoint). */
export async function copyObject(
  client: S3Transport,
  input: CopyObjectInput,
): Promise<CopyResult & { versionId?: string }> {
  const headers = writeHeaders(input);
  headers["x-amz-copy-source"] = copySourceHeader(
    input.sourceBucket,
    input.sourceKey,
    input.sourceVersionId,
  );
  if (input.metadataDirective !== undefined) {
    headers["x-amz-metadata-directive"] = input.metadataDirective;
  }
  if (input.taggingDirective !== undefined) {
    headers["x-amz-tagging-directive"] = input.taggingDirective;
  }
  for (const [name, value] of Object.entries(conditionHeaders(input.sourceConditions ?? {}))) {
    headers[`x-amz-copy-source-${name}`] = value;
  }
  const ctx = { bucket: input.bucket, key: input.key };
  const res = await client.request({
    method: "PUT",
    bucket: input.bucket,
    key: input.key,
    headers,
    signal: input.signal,
  });
  const result: CopyResult & { versionId?: string } = await readDocument(res, ctx, (body) => {
    throwIfErrorDocument(client, body, res, ctx);
    return parseCopyObjectResult(body);
  });
  const versionId = res.headers["x-amz-version-id"];
  if (versionId !== undefined) result.versionId = versionId;
  return result;
}

/** DeleteObject. Deleting a missing key succeeds, as on S3. */
export async function deleteObject(
  client: S3Transport,
  input: ObjectInput & { versionId?: string },
): Promise<{ versionId?: string; deleteMarker?: boolean }> {
  const res = await client.request({
    method: "DELETE",
    bucket: input.bucket,
    key: input.key,
    query: { versionId: input.versionId },
    signal: input.signal,
  });
  await drain(res);
  const out: { versionId?: string; deleteMarker?: boolean } = {};
  if (res.headers["x-amz-version-id"] !== undefined)
    out.versionId = res.headers["x-amz-version-id"];
  if (res.headers["x-amz-delete-marker"] !== undefined) {
    out.deleteMarker = res.headers["x-amz-delete-marker"] === "true";
  }
  return out;
}

/** DeleteObjects: up to 1,000 keys in one request; per-key failures are in `errors`. */
export async function deleteObjects(
  client: S3Transport,
  input: BucketInput & { objects: readonly DeleteObjectEntry[]; quiet?: boolean },
): Promise<DeleteResult> {
  const body = Buffer.from(
    buildDeleteRequest({ quiet: input.quiet ?? false, objects: [...input.objects] }),
    "utf8",
  );
  // S3 requires an integrity header on DeleteObjects; Content-MD5 is the one every server knows.
  const md5 = createHash("md5").update(body).digest("base64");
  const res = await client.request({
    method: "POST",
    bucket: input.bucket,
    query: [["delete", ""]],
    headers: { "content-md5": md5, "content-type": "application/xml" },
    body,
    signal: input.signal,
  });
  return await readDocument(res, { bucket: input.bucket }, parseDeleteResult);
}

// ---------------------------------------------------------------------------------------------
// Multipart uploads

/** CreateMultipartUpload: starts an upload and returns its id. */
export async function createMultipartUpload(
  client: S3Transport,
  input: ObjectInput & {
    metadata?: ObjectMetadata;
    tagging?: string | readonly XmlTag[];
    headers?: Record<string, string>;
  },
): Promise<{ uploadId: string }> {
  const ctx = { bucket: input.bucket, key: input.key };
  const res = await client.request({
    method: "POST",
    bucket: input.bucket,
    key: input.key,
    query: [["uploads", ""]],
    headers: writeHeaders(input),
    signal: input.signal,
  });
  const result = await readDocument(res, ctx, parseInitiateMultipartUploadResult);
  return { uploadId: result.uploadId };
}

/** UploadPart: one part of 5 MiB..5 GiB (the last may be smaller). */
export async function uploadPart(
  client: S3Transport,
  input: ObjectInput & {
    uploadId: string;
    partNumber: number;
    body: Buffer | string | Readable;
    contentLength?: number;
    contentMd5?: string;
    headers?: Record<string, string>;
    payloadHash?: string;
  },
): Promise<{ etag: string; headers: Record<string, string> }> {
  const headers: Record<string, string> = { ...input.headers };
  if (input.contentMd5 !== undefined) headers["content-md5"] = input.contentMd5;
  const res = await client.request({
    method: "PUT",
    bucket: input.bucket,
    key: input.key,
    query: [
      ["partNumber", String(input.partNumber)],
      ["uploadId", input.uploadId],
    ],
    headers,
    body: input.body,
    contentLength: input.contentLength,
    payloadHash: input.payloadHash,
    signal: input.signal,
  });
  await drain(res);
  return { etag: res.headers["etag"] ?? "", headers: res.headers };
}

/** Input of CompleteMultipartUpload. */
export interface CompleteMultipartUploadInput extends ObjectInput {
  uploadId: string;
  parts: readonly CompletedPart[];
  /** `*` completes only if the key does not exist yet (412 when it does). */
  ifNoneMatch?: string;
  headers?: Record<string, string>;
}

/** CompleteMultipartUpload: joins the parts; the ETag ends in `-<number of parts>`. */
export async function completeMultipartUpload(
  client: S3Transport,
  input: CompleteMultipartUploadInput,
): Promise<CompleteMultipartUploadResult & { versionId?: string }> {
  const res = await sendCompleteMultipartUpload(client, input, []);
  return await readCompleteResult(client, res, input);
}

/**
 * CompleteMultipartUpload with `ifNoneMatch` (a conditional multipart upload only fails here):
 * a refusal resolves `{ written: false }`, whether it came as a 412 status or as a
 * `PreconditionFailed` Error document inside a 200 answer (S3 sends the status line before it
 * knows the outcome). The upload is left in place: the caller aborts it.
 */
export async function completeMultipartUploadConditionally(
  client: S3Transport,
  input: CompleteMultipartUploadInput,
): Promise<ConditionalWrite<CompleteMultipartUploadResult & { versionId?: string }>> {
  const res = await sendCompleteMultipartUpload(client, input, PRECONDITION_FAILED);
  if (res.status === 412) {
    await drain(res);
    return { written: false };
  }
  try {
    return { written: true, ...(await readCompleteResult(client, res, input)) };
  } catch (err) {
    if (err instanceof S3ClientError && err.code === "PreconditionFailed")
      return { written: false };
    throw err;
  }
}

function sendCompleteMultipartUpload(
  client: S3Transport,
  input: CompleteMultipartUploadInput,
  okStatuses: readonly number[],
): Promise<S3Response> {
  const headers: Record<string, string> = { "content-type": "application/xml", ...input.headers };
  if (input.ifNoneMatch !== undefined) headers["if-none-match"] = input.ifNoneMatch;
  return client.request({
    method: "POST",
    bucket: input.bucket,
    key: input.key,
    query: [["uploadId", input.uploadId]],
    headers,
    body: buildCompleteMultipartUpload({ parts: [...input.parts] }),
    okStatuses,
    signal: input.signal,
  });
}

/** Reads a CompleteMultipartUpload answer, throwing the Error document a 200 answer may carry. */
async function readCompleteResult(
  client: S3Transport,
  res: S3Response,
  input: ObjectInput,
): Promise<CompleteMultipartUploadResult & { versionId?: string }> {
  const ctx = { bucket: input.bucket, key: input.key };
  const result: CompleteMultipartUploadResult & { versionId?: string } = await readDocument(
    res,
    ctx,
    (body) => {
      throwIfErrorDocument(client, body, res, ctx);
      return parseCompleteMultipartUploadResult(body);
    },
  );
  const versionId = res.headers["x-amz-version-id"];
  if (versionId !== undefined) result.versionId = versionId;
  return result;
}

/** AbortMultipartUpload: discards the upload and its parts. */
export async function abortMultipartUpload(
  client: S3Transport,
  input: ObjectInput & { uploadId: string },
): Promise<void> {
  const res = await client.request({
    method: "DELETE",
    bucket: input.bucket,
    key: input.key,
    query: [["uploadId", input.uploadId]],
    signal: input.signal,
  });
  await drain(res);
}

/** ListParts: one page of the parts uploaded so far. */
export async function listParts(
  client: S3Transport,
  input: ObjectInput & { uploadId: string; maxParts?: number; partNumberMarker?: number },
): Promise<ListPartsResult> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    key: input.key,
    query: {
      uploadId: input.uploadId,
      "max-parts": input.maxParts === undefined ? undefined : String(input.maxParts),
      "part-number-marker":
        input.partNumberMarker === undefined ? undefined : String(input.partNumberMarker),
    },
    signal: input.signal,
  });
  return await readDocument(res, { bucket: input.bucket, key: input.key }, parseListPartsResult);
}

/**
 * Decodes the url-encoded fields of a listing when the server says it encoded them
 * (`EncodingType` = `url`); servers that ignore the request send raw values and say nothing.
 */
function decoder(encodingType: string | undefined): (s: string) => string {
  return encodingType === "url" ? s3UrlDecode : (s) => s;
}

/** ListMultipartUploads: one page of in-progress uploads, keys decoded. */
export async function listMultipartUploads(
  client: S3Transport,
  input: BucketInput & {
    prefix?: string;
    delimiter?: string;
    keyMarker?: string;
    uploadIdMarker?: string;
    maxUploads?: number;
  },
): Promise<ListMultipartUploadsResult> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    query: {
      uploads: "",
      "encoding-type": "url",
      prefix: input.prefix,
      delimiter: input.delimiter,
      "key-marker": input.keyMarker,
      "upload-id-marker": input.uploadIdMarker,
      "max-uploads": input.maxUploads === undefined ? undefined : String(input.maxUploads),
    },
    signal: input.signal,
  });
  return await readDocument(res, { bucket: input.bucket }, (body) =>
    decodeUploads(parseListMultipartUploadsResult(body)),
  );
}

function decodeUploads(r: ListMultipartUploadsResult): ListMultipartUploadsResult {
  const d = decoder(r.encodingType);
  const out: ListMultipartUploadsResult = {
    ...r,
    keyMarker: d(r.keyMarker),
    uploads: r.uploads.map((u) => ({ ...u, key: d(u.key) })),
    commonPrefixes: r.commonPrefixes.map(d),
  };
  if (r.nextKeyMarker !== undefined) out.nextKeyMarker = d(r.nextKeyMarker);
  if (r.prefix !== undefined) out.prefix = d(r.prefix);
  if (r.delimiter !== undefined) out.delimiter = d(r.delimiter);
  delete out.encodingType;
  return out;
}

/** Input of ListObjectsV2. */
export interface ListObjectsV2Input extends BucketInput {
  prefix?: string;
  delimiter?: string;
  /** Keys per page, 1..1000 (the server's default when absent). */
  maxKeys?: number;
  startAfter?: string;
  continuationToken?: string;
  fetchOwner?: boolean;
}

/**
 * One ListObjectsV2 page. Keys, prefixes, delimiter and StartAfter are returned decoded:
 * `encoding-type=url` is always requested so that keys XML cannot carry survive the trip.
 */
export async function listObjectsV2Page(
  client: S3Transport,
  input: ListObjectsV2Input,
): Promise<ListBucketResultV2> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    query: {
      "list-type": "2",
      "encoding-type": "url",
      prefix: input.prefix,
      delimiter: input.delimiter,
      "max-keys": input.maxKeys === undefined ? undefined : String(input.maxKeys),
      "start-after": input.startAfter,
      "continuation-token": input.continuationToken,
      "fetch-owner": input.fetchOwner === true ? "true" : undefined,
    },
    signal: input.signal,
  });
  return await readDocument(res, { bucket: input.bucket }, (body) =>
    decodeListV2(parseListBucketResultV2(body)),
  );
}

function decodeListV2(r: ListBucketResultV2): ListBucketResultV2 {
  const d = decoder(r.encodingType);
  const out: ListBucketResultV2 = {
    ...r,
    prefix: d(r.prefix),
    contents: r.contents.map((c) => ({ ...c, key: d(c.key) })),
    commonPrefixes: r.commonPrefixes.map(d),
  };
  if (r.delimiter !== undefined) out.delimiter = d(r.delimiter);
  if (r.startAfter !== undefined) out.startAfter = d(r.startAfter);
  delete out.encodingType;
  return out;
}

/**
 * ListObjectsV2 as an async iterator over pages: one page in memory at a time, the next one
 * requested only when the consumer asks. Stops at the last page, or throws if a server claims
 * more pages without a continuation token (which would loop forever).
 */
export async function* listObjectsV2(
  client: S3Transport,
  input: ListObjectsV2Input,
): AsyncGenerator<ListBucketResultV2> {
  let token = input.continuationToken;
  for (;;) {
    const page = await listObjectsV2Page(client, { ...input, continuationToken: token });
    yield page;
    if (!page.isTruncated) return;
    if (page.nextContinuationToken === undefined || page.nextContinuationToken === token) {
      throw new S3ClientError("InternalError", {
        status: 500,
        message: "ListObjectsV2 page is truncated but has no new continuation token",
        bucket: input.bucket,
      });
    }
    token = page.nextContinuationToken;
  }
}

// ---------------------------------------------------------------------------------------------
// Tagging

/** GetObjectTagging: the object's tags (GET returns only their count). */
export async function getObjectTagging(
  client: S3Transport,
  input: ObjectInput & { versionId?: string },
): Promise<XmlTag[]> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    key: input.key,
    query: { tagging: "", versionId: input.versionId },
    signal: input.signal,
  });
  return await readDocument(res, { bucket: input.bucket, key: input.key }, parseTagging);
}

/** PutObjectTagging: replaces the object's tags. */
export async function putObjectTagging(
  client: S3Transport,
  input: ObjectInput & { tags: readonly XmlTag[]; versionId?: string },
): Promise<void> {
  const body = Buffer.from(buildTagging(input.tags), "utf8");
  const res = await client.request({
    method: "PUT",
    bucket: input.bucket,
    key: input.key,
    query: { tagging: "", versionId: input.versionId },
    headers: {
      "content-md5": createHash("md5").update(body).digest("base64"),
      "content-type": "application/xml",
    },
    body,
    signal: input.signal,
  });
  await drain(res);
}
