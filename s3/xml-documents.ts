/**
 * The non-listing S3 documents: Delete / DeleteResult, CompleteMultipartUpload /
 * CompleteMultipartUploadResult, InitiateMultipartUploadResult, CopyObjectResult,
 * CopyPartResult, Tagging and the Error document's parser (errors.ts renders errors).
 */
import { S3Error } from "./errors.js";
import {
  DEFAULT_COMPLETE_XML_LIMIT,
  DEFAULT_REQUEST_XML_LIMIT,
  DEFAULT_RESPONSE_XML_LIMIT,
  S3_XMLNS,
  XmlWriter,
  children,
  malformedXml,
  optChild,
  optText,
  parseBool,
  parseXmlDocument,
  reqText,
  reqUint,
  withDefined,
  type XmlNode,
  type XmlParseOptions,
} from "./xml-core.js";

/** The checksum elements S3 may attach to an object or part. */
export const CHECKSUM_ELEMENTS = [
  "ChecksumCRC32",
  "ChecksumCRC32C",
  "ChecksumCRC64NVME",
  "ChecksumSHA1",
  "ChecksumSHA256",
] as const;

/** One checksum element name, e.g. `ChecksumCRC32`. */
export type ChecksumElement = (typeof CHECKSUM_ELEMENTS)[number];

/** Base64 checksums by element name, as S3 writes them. */
export type XmlChecksums = Partial<Record<ChecksumElement, string>>;

function readChecksums(node: XmlNode): XmlChecksums | undefined {
  let out: XmlChecksums | undefined;
  for (const name of CHECKSUM_ELEMENTS) {
    const value = optText(node, name);
    if (value !== undefined) (out ??= {})[name] = value;
  }
  return out;
}

function writeChecksums(w: XmlWriter, checksums: XmlChecksums | undefined): void {
  if (checksums === undefined) return;
  for (const name of CHECKSUM_ELEMENTS) w.leaf(name, checksums[name]);
}

// ---------------------------------------------------------------------------------------------
// DeleteObjects (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html)

/** The most keys one DeleteObjects request may name. */
export const MAX_DELETE_OBJECTS = 1000;

/** One object named in a Delete request. */
export interface DeleteObjectEntry {
  key: string;
  versionId?: string;
}

/** The body of a DeleteObjects request. */
export interface DeleteRequest {
  quiet: boolean;
  objects: DeleteObjectEntry[];
}

/** Builds a DeleteObjects request body. */
export function buildDeleteRequest(r: DeleteRequest): string {
  const w = new XmlWriter().open("Delete", { xmlns: S3_XMLNS });
  if (r.quiet) w.leaf("Quiet", true);
  for (const o of r.objects) {
    w.open("Object").leaf("Key", o.key).leaf("VersionId", o.versionId).close("Object");
  }
  return w.close("Delete").toString();
}

/**
 * Parses a DeleteObjects request body. More than `maxObjects` (1,000 by default, as S3) or none
 * at all is `MalformedXML`, as on S3.
 */
export function parseDeleteRequest(
  body: string | Buffer,
  options: XmlParseOptions & { maxObjects?: number } = {},
): DeleteRequest {
  const node = parseXmlDocument(body, "Delete", ["Delete.Object"], {
    maxBytes: options.maxBytes ?? DEFAULT_REQUEST_XML_LIMIT,
  });
  const objects = children(node, "Object").map((o) =>
    withDefined<DeleteObjectEntry>(
      { key: reqText(o, "Key") },
      { versionId: optText(o, "VersionId") },
    ),
  );
  if (objects.length === 0 || objects.length > (options.maxObjects ?? MAX_DELETE_OBJECTS)) {
    throw malformedXml("Delete must name between 1 and 1000 objects");
  }
  return { quiet: parseBool(optText(node, "Quiet"), "Quiet") ?? false, objects };
}

/** One successfully deleted object of a DeleteResult. */
export interface DeletedEntry {
  key: string;
  versionId?: string;
  deleteMarker?: boolean;
  deleteMarkerVersionId?: string;
}

/** One failed deletion of a DeleteResult. */
export interface DeleteErrorEntry {
  key: string;
  versionId?: string;
  code: string;
  message: string;
}

/** The response document of DeleteObjects. */
export interface DeleteResult {
  deleted: DeletedEntry[];
  errors: DeleteErrorEntry[];
}

/** Builds a `DeleteResult` document. */
export function buildDeleteResult(r: DeleteResult): string {
  const w = new XmlWriter().open("DeleteResult", { xmlns: S3_XMLNS });
  for (const d of r.deleted) {
    w.open("Deleted")
      .leaf("Key", d.key)
      .leaf("VersionId", d.versionId)
      .leaf("DeleteMarker", d.deleteMarker)
      .leaf("DeleteMarkerVersionId", d.deleteMarkerVersionId)
      .close("Deleted");
  }
  for (const e of r.errors) {
    w.open("Error")
      .leaf("Key", e.key)
      .leaf("VersionId", e.versionId)
      .leaf("Code", e.code)
      .leaf("Message", e.message)
      .close("Error");
  }
  return w.close("DeleteResult").toString();
}

/** Parses a `DeleteResult` document. */
export function parseDeleteResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): DeleteResult {
  const node = parseXmlDocument(
    body,
    "DeleteResult",
    ["DeleteResult.Deleted", "DeleteResult.Error"],
    {
      maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
    },
  );
  return {
    deleted: children(node, "Deleted").map((d) =>
      withDefined<DeletedEntry>(
        // MinIO has been seen to answer an empty <Deleted></Deleted>: read it as key "".
        { key: optText(d, "Key") ?? "" },
        {
          versionId: optText(d, "VersionId"),
          deleteMarker: parseBool(optText(d, "DeleteMarker"), "DeleteMarker"),
          deleteMarkerVersionId: optText(d, "DeleteMarkerVersionId"),
        },
      ),
    ),
    errors: children(node, "Error").map((e) =>
      withDefined<DeleteErrorEntry>(
        {
          key: optText(e, "Key") ?? "",
          code: optText(e, "Code") ?? "InternalError",
          message: optText(e, "Message") ?? "",
        },
        { versionId: optText(e, "VersionId") },
      ),
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Multipart (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html)

/** The most parts a multipart upload may have. */
export const MAX_PARTS = 10_000;

/** One part named in a CompleteMultipartUpload request. */
export interface CompletedPart {
  partNumber: number;
  /** The part's ETag as UploadPart returned it (with quotes). */
  etag: string;
  checksums?: XmlChecksums;
}

/** The body of a CompleteMultipartUpload request. */
export interface CompleteMultipartUploadRequest {
  parts: CompletedPart[];
}

/** Builds a CompleteMultipartUpload request body. */
export function buildCompleteMultipartUpload(r: CompleteMultipartUploadRequest): string {
  const w = new XmlWriter().open("CompleteMultipartUpload", { xmlns: S3_XMLNS });
  for (const p of r.parts) {
    w.open("Part").leaf("PartNumber", p.partNumber).leaf("ETag", p.etag);
    writeChecksums(w, p.checksums);
    w.close("Part");
  }
  return w.close("CompleteMultipartUpload").toString();
}

/**
 * Parses a CompleteMultipartUpload request body. The order of parts is kept as sent: checking
 * it (`InvalidPartOrder`) is the server's job, not the parser's.
 */
export function parseCompleteMultipartUpload(
  body: string | Buffer,
  options: XmlParseOptions = {},
): CompleteMultipartUploadRequest {
  const node = parseXmlDocument(body, "CompleteMultipartUpload", ["CompleteMultipartUpload.Part"], {
    maxBytes: options.maxBytes ?? DEFAULT_COMPLETE_XML_LIMIT,
  });
  const parts = children(node, "Part").map((p) =>
    withDefined<CompletedPart>(
      { partNumber: reqUint(p, "PartNumber"), etag: reqText(p, "ETag") },
      { checksums: readChecksums(p) },
    ),
  );
  if (parts.length === 0 || parts.length > MAX_PARTS) {
    throw malformedXml("CompleteMultipartUpload must name between 1 and 10000 parts");
  }
  return { parts };
}

/** The response document of CompleteMultipartUpload. */
export interface CompleteMultipartUploadResult {
  location?: string;
  bucket: string;
  key: string;
  etag: string;
  checksums?: XmlChecksums;
}

/** Builds a `CompleteMultipartUploadResult` document. */
export function buildCompleteMultipartUploadResult(r: CompleteMultipartUploadResult): string {
  const w = new XmlWriter()
    .open("CompleteMultipartUploadResult", { xmlns: S3_XMLNS })
    .leaf("Location", r.location)
    .leaf("Bucket", r.bucket)
    .leaf("Key", r.key)
    .leaf("ETag", r.etag);
  writeChecksums(w, r.checksums);
  return w.close("CompleteMultipartUploadResult").toString();
}

/** Parses a `CompleteMultipartUploadResult` document. */
export function parseCompleteMultipartUploadResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): CompleteMultipartUploadResult {
  const node = parseXmlDocument(body, "CompleteMultipartUploadResult", [], {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  return withDefined<CompleteMultipartUploadResult>(
    {
      bucket: optText(node, "Bucket") ?? "",
      key: optText(node, "Key") ?? "",
      etag: reqText(node, "ETag"),
    },
    { location: optText(node, "Location"), checksums: readChecksums(node) },
  );
}

/** The response document of CreateMultipartUpload. */
export interface InitiateMultipartUploadResult {
  bucket: string;
  key: string;
  uploadId: string;
}

/** Builds an `InitiateMultipartUploadResult` document. */
export function buildInitiateMultipartUploadResult(r: InitiateMultipartUploadResult): string {
  return new XmlWriter()
    .open("InitiateMultipartUploadResult", { xmlns: S3_XMLNS })
    .leaf("Bucket", r.bucket)
    .leaf("Key", r.key)
    .leaf("UploadId", r.uploadId)
    .close("InitiateMultipartUploadResult")
    .toString();
}

/** Parses an `InitiateMultipartUploadResult` document. */
export function parseInitiateMultipartUploadResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): InitiateMultipartUploadResult {
  const node = parseXmlDocument(body, "InitiateMultipartUploadResult", [], {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  return {
    bucket: optText(node, "Bucket") ?? "",
    key: optText(node, "Key") ?? "",
    uploadId: reqText(node, "UploadId"),
  };
}

// ---------------------------------------------------------------------------------------------
// CopyObject / UploadPartCopy (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html)

/** The response document of CopyObject (`CopyObjectResult`) and UploadPartCopy (`CopyPartResult`). */
export interface CopyResult {
  /** ISO-8601 timestamp as written by the server. */
  lastModified: string;
  etag: string;
  checksums?: XmlChecksums;
}

function buildCopy(root: string, r: CopyResult): string {
  const w = new XmlWriter()
    .open(root, { xmlns: S3_XMLNS })
    .leaf("LastModified", r.lastModified)
    .leaf("ETag", r.etag);
  writeChecksums(w, r.checksums);
  return w.close(root).toString();
}

function parseCopy(root: string, body: string | Buffer, options: XmlParseOptions): CopyResult {
  const node = parseXmlDocument(body, root, [], {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  return withDefined<CopyResult>(
    { lastModified: optText(node, "LastModified") ?? "", etag: reqText(node, "ETag") },
    { checksums: readChecksums(node) },
  );
}

/** Builds a `CopyObjectResult` document. */
export function buildCopyObjectResult(r: CopyResult): string {
  return buildCopy("CopyObjectResult", r);
}

/** Parses a `CopyObjectResult` document. */
export function parseCopyObjectResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): CopyResult {
  return parseCopy("CopyObjectResult", body, options);
}

/** Builds a `CopyPartResult` document. */
export function buildCopyPartResult(r: CopyResult): string {
  return buildCopy("CopyPartResult", r);
}

/** Parses a `CopyPartResult` document. */
export function parseCopyPartResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): CopyResult {
  return parseCopy("CopyPartResult", body, options);
}

// ---------------------------------------------------------------------------------------------
// Tagging (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectTagging.html)

/** One tag of an object or bucket. */
export interface XmlTag {
  key: string;
  value: string;
}

/** Builds a `Tagging` document (request of PutObjectTagging, response of GetObjectTagging). */
export function buildTagging(tags: readonly XmlTag[]): string {
  const w = new XmlWriter().open("Tagging", { xmlns: S3_XMLNS }).open("TagSet");
  for (const t of tags) w.open("Tag").leaf("Key", t.key).leaf("Value", t.value).close("Tag");
  return w.close("TagSet").close("Tagging").toString();
}

/** Parses a `Tagging` document into its tags, in document order. */
export function parseTagging(body: string | Buffer, options: XmlParseOptions = {}): XmlTag[] {
  const node = parseXmlDocument(body, "Tagging", ["Tagging.TagSet.Tag"], {
    maxBytes: options.maxBytes ?? DEFAULT_REQUEST_XML_LIMIT,
  });
  const set = optChild(node, "TagSet");
  if (set === undefined) throw malformedXml("missing <TagSet>");
  return children(set, "Tag").map((t) => ({
    key: reqText(t, "Key"),
    value: optText(t, "Value") ?? "",
  }));
}

// ---------------------------------------------------------------------------------------------
// Error (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses)

/**
 * The fields of an S3 `Error` document that are safe to keep. Servers also echo `StringToSign`,
 * `CanonicalRequest`, `AWSAccessKeyId` and the like; those are deliberately never read.
 */
export interface ParsedErrorDocument {
  code: string;
  message?: string;
  resource?: string;
  requestId?: string;
  hostId?: string;
  bucketName?: string;
  key?: string;
}

/**
 * Parses an S3 `Error` document; build one with renderErrorXml from errors.ts. A body that is
 * not an Error document throws (the caller then maps the HTTP status itself).
 */
export function parseErrorDocument(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ParsedErrorDocument {
  const node = parseXmlDocument(body, "Error", [], { maxBytes: options.maxBytes ?? 64 * 1024 });
  const code = optText(node, "Code");
  if (code === undefined || code.trim() === "") throw malformedXml("Error without <Code>");
  return withDefined<ParsedErrorDocument>(
    { code: code.trim() },
    {
      message: optText(node, "Message"),
      resource: optText(node, "Resource"),
      requestId: optText(node, "RequestId"),
      hostId: optText(node, "HostId"),
      bucketName: optText(node, "BucketName"),
      key: optText(node, "Key"),
    },
  );
}

/** Whether `err` came from one of these parsers rejecting its input. */
export function isMalformedXmlError(err: unknown): err is S3Error {
  return err instanceof S3Error && err.code === "MalformedXML";
}
