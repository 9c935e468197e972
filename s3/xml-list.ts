/**
 * Listing documents: ListBucketResult (ListObjects v1 and ListObjectsV2),
 * ListMultipartUploadsResult, ListPartsResult and ListAllMyBucketsResult, as typed objects with
 * a builder and a parser each.
 *
 * Values are kept exactly as they appear in the document: when `encodingType` is `url`, keys,
 * prefixes, delimiters and markers are still url-encoded and the caller decodes them with
 * s3UrlDecode (the listing merge needs that choice, so it is not hidden here).
 */
import {
  DEFAULT_RESPONSE_XML_LIMIT,
  S3_XMLNS,
  XmlWriter,
  children,
  optChild,
  optText,
  parseBool,
  parseUint,
  parseXmlDocument,
  reqText,
  reqUint,
  withDefined,
  type XmlNode,
  type XmlParseOptions,
} from "./xml-core.js";

/** The owner or initiator of a bucket, object or upload. */
export interface XmlOwner {
  id?: string;
  displayName?: string;
}

/** One `<Contents>` entry of a listing. */
export interface ListObjectEntry {
  key: string;
  /** ISO-8601 timestamp exactly as the server wrote it. */
  lastModified: string;
  /** The ETag with its quotes, as S3 writes it. */
  etag: string;
  size: number;
  storageClass?: string;
  owner?: XmlOwner;
}

/** Fields shared by ListObjects v1 and v2 results. */
interface ListBucketResultBase {
  name: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  isTruncated: boolean;
  encodingType?: string;
  contents: ListObjectEntry[];
  /** The `<CommonPrefixes><Prefix>` values, in document order. */
  commonPrefixes: string[];
}

/** ListObjects (v1) result (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html). */
export interface ListBucketResultV1 extends ListBucketResultBase {
  marker: string;
  /** Only present when a delimiter was given (S3 semantics). */
  nextMarker?: string;
}

/** ListObjectsV2 result (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html). */
export interface ListBucketResultV2 extends ListBucketResultBase {
  keyCount: number;
  continuationToken?: string;
  nextContinuationToken?: string;
  startAfter?: string;
}

const LIST_REPEATS = ["ListBucketResult.Contents", "ListBucketResult.CommonPrefixes"];

function writeOwner(w: XmlWriter, name: string, owner: XmlOwner | undefined): void {
  if (owner === undefined) return;
  w.open(name).leaf("ID", owner.id).leaf("DisplayName", owner.displayName).close(name);
}

function readOwner(node: XmlNode, name: string): XmlOwner | undefined {
  const owner = optChild(node, name);
  if (owner === undefined) return undefined;
  return withDefined<XmlOwner>(
    {},
    { id: optText(owner, "ID"), displayName: optText(owner, "DisplayName") },
  );
}

function writeContents(w: XmlWriter, contents: readonly ListObjectEntry[]): void {
  for (const c of contents) {
    w.open("Contents")
      .leaf("Key", c.key)
      .leaf("LastModified", c.lastModified)
      .leaf("ETag", c.etag)
      .leaf("Size", c.size);
    writeOwner(w, "Owner", c.owner);
    w.leaf("StorageClass", c.storageClass).close("Contents");
  }
}

function writeCommonPrefixes(w: XmlWriter, prefixes: readonly string[]): void {
  for (const p of prefixes) w.open("CommonPrefixes").leaf("Prefix", p).close("CommonPrefixes");
}

function readContents(node: XmlNode): ListObjectEntry[] {
  return children(node, "Contents").map((c) => {
    const entry: ListObjectEntry = {
      key: reqText(c, "Key"),
      lastModified: optText(c, "LastModified") ?? "",
      etag: optText(c, "ETag") ?? "",
      size: reqUint(c, "Size"),
    };
    return withDefined(entry, {
      storageClass: optText(c, "StorageClass"),
      owner: readOwner(c, "Owner"),
    });
  });
}

function readCommonPrefixes(node: XmlNode): string[] {
  return children(node, "CommonPrefixes").map((p) => reqText(p, "Prefix"));
}

function readBase(node: XmlNode): ListBucketResultBase {
  const base: ListBucketResultBase = {
    name: optText(node, "Name") ?? "",
    prefix: optText(node, "Prefix") ?? "",
    maxKeys: parseUint(optText(node, "MaxKeys"), "MaxKeys") ?? 1000,
    isTruncated: parseBool(optText(node, "IsTruncated"), "IsTruncated") ?? false,
    contents: readContents(node),
    commonPrefixes: readCommonPrefixes(node),
  };
  const delimiter = optText(node, "Delimiter");
  return withDefined(base, {
    delimiter: delimiter === "" ? undefined : delimiter,
    encodingType: optText(node, "EncodingType"),
  });
}

/** Builds a ListObjects (v1) `ListBucketResult` document. */
export function buildListBucketResultV1(r: ListBucketResultV1): string {
  const w = new XmlWriter()
    .open("ListBucketResult", { xmlns: S3_XMLNS })
    .leaf("Name", r.name)
    .leaf("Prefix", r.prefix)
    .leaf("Marker", r.marker)
    .leaf("NextMarker", r.nextMarker)
    .leaf("MaxKeys", r.maxKeys)
    .leaf("Delimiter", r.delimiter)
    .leaf("IsTruncated", r.isTruncated)
    .leaf("EncodingType", r.encodingType);
  writeContents(w, r.contents);
  writeCommonPrefixes(w, r.commonPrefixes);
  return w.close("ListBucketResult").toString();
}

/** Builds a ListObjectsV2 `ListBucketResult` document. */
export function buildListBucketResultV2(r: ListBucketResultV2): string {
  const w = new XmlWriter()
    .open("ListBucketResult", { xmlns: S3_XMLNS })
    .leaf("Name", r.name)
    .leaf("Prefix", r.prefix)
    .leaf("KeyCount", r.keyCount)
    .leaf("MaxKeys", r.maxKeys)
    .leaf("Delimiter", r.delimiter)
    .leaf("IsTruncated", r.isTruncated)
    .leaf("EncodingType", r.encodingType)
    .leaf("ContinuationToken", r.continuationToken)
    .leaf("NextContinuationToken", r.nextContinuationToken)
    .leaf("StartAfter", r.startAfter);
  writeContents(w, r.contents);
  writeCommonPrefixes(w, r.commonPrefixes);
  return w.close("ListBucketResult").toString();
}

/** Parses a ListObjects (v1) `ListBucketResult` document. */
export function parseListBucketResultV1(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListBucketResultV1 {
  const node = parseXmlDocument(body, "ListBucketResult", LIST_REPEATS, {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  const result: ListBucketResultV1 = { ...readBase(node), marker: optText(node, "Marker") ?? "" };
  return withDefined(result, { nextMarker: optText(node, "NextMarker") });
}

/** Parses a ListObjectsV2 `ListBucketResult` document. */
export function parseListBucketResultV2(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListBucketResultV2 {
  const node = parseXmlDocument(body, "ListBucketResult", LIST_REPEATS, {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  const base = readBase(node);
  const result: ListBucketResultV2 = {
    ...base,
    keyCount:
      parseUint(optText(node, "KeyCount"), "KeyCount") ??
      base.contents.length + base.commonPrefixes.length,
  };
  const next = optText(node, "NextContinuationToken");
  return withDefined(result, {
    continuationToken: optText(node, "ContinuationToken"),
    nextContinuationToken: next === "" ? undefined : next,
    startAfter: optText(node, "StartAfter"),
  });
}

/** One in-progress upload of a ListMultipartUploadsResult. */
export interface MultipartUploadEntry {
  key: string;
  uploadId: string;
  initiator?: XmlOwner;
  owner?: XmlOwner;
  storageClass?: string;
  /** ISO-8601 timestamp as written by the server. */
  initiated: string;
}

/**
 * ListMultipartUploads result
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html).
 */
export interface ListMultipartUploadsResult {
  bucket: string;
  keyMarker: string;
  uploadIdMarker: string;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
  delimiter?: string;
  prefix?: string;
  maxUploads: number;
  isTruncated: boolean;
  encodingType?: string;
  uploads: MultipartUploadEntry[];
  commonPrefixes: string[];
}

const UPLOADS_REPEATS = [
  "ListMultipartUploadsResult.Upload",
  "ListMultipartUploadsResult.CommonPrefixes",
];

/** Builds a `ListMultipartUploadsResult` document. */
export function buildListMultipartUploadsResult(r: ListMultipartUploadsResult): string {
  const w = new XmlWriter()
    .open("ListMultipartUploadsResult", { xmlns: S3_XMLNS })
    .leaf("Bucket", r.bucket)
    .leaf("KeyMarker", r.keyMarker)
    .leaf("UploadIdMarker", r.uploadIdMarker)
    .leaf("NextKeyMarker", r.nextKeyMarker)
    .leaf("NextUploadIdMarker", r.nextUploadIdMarker)
    .leaf("Delimiter", r.delimiter)
    .leaf("Prefix", r.prefix)
    .leaf("MaxUploads", r.maxUploads)
    .leaf("IsTruncated", r.isTruncated)
    .leaf("EncodingType", r.encodingType);
  for (const u of r.uploads) {
    w.open("Upload").leaf("Key", u.key).leaf("UploadId", u.uploadId);
    writeOwner(w, "Initiator", u.initiator);
    writeOwner(w, "Owner", u.owner);
    w.leaf("StorageClass", u.storageClass).leaf("Initiated", u.initiated).close("Upload");
  }
  writeCommonPrefixes(w, r.commonPrefixes);
  return w.close("ListMultipartUploadsResult").toString();
}

/** Parses a `ListMultipartUploadsResult` document. */
export function parseListMultipartUploadsResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListMultipartUploadsResult {
  const node = parseXmlDocument(body, "ListMultipartUploadsResult", UPLOADS_REPEATS, {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  const result: ListMultipartUploadsResult = {
    bucket: optText(node, "Bucket") ?? "",
    keyMarker: optText(node, "KeyMarker") ?? "",
    uploadIdMarker: optText(node, "UploadIdMarker") ?? "",
    maxUploads: parseUint(optText(node, "MaxUploads"), "MaxUploads") ?? 1000,
    isTruncated: parseBool(optText(node, "IsTruncated"), "IsTruncated") ?? false,
    uploads: children(node, "Upload").map((u) => {
      const entry: MultipartUploadEntry = {
        key: reqText(u, "Key"),
        uploadId: reqText(u, "UploadId"),
        initiated: optText(u, "Initiated") ?? "",
      };
      return withDefined(entry, {
        initiator: readOwner(u, "Initiator"),
        owner: readOwner(u, "Owner"),
        storageClass: optText(u, "StorageClass"),
      });
    }),
    commonPrefixes: readCommonPrefixes(node),
  };
  return withDefined(result, {
    nextKeyMarker: optText(node, "NextKeyMarker"),
    nextUploadIdMarker: optText(node, "NextUploadIdMarker"),
    delimiter: optText(node, "Delimiter"),
    prefix: optText(node, "Prefix"),
    encodingType: optText(node, "EncodingType"),
  });
}

/** One part of a ListPartsResult. */
export interface ListPartEntry {
  partNumber: number;
  lastModified: string;
  etag: string;
  size: number;
}

/** ListParts result (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListParts.html). */
export interface ListPartsResult {
  bucket: string;
  key: string;
  uploadId: string;
  partNumberMarker: number;
  nextPartNumberMarker?: number;
  maxParts: number;
  isTruncated: boolean;
  initiator?: XmlOwner;
  owner?: XmlOwner;
  storageClass?: string;
  parts: ListPartEntry[];
}

/** Builds a `ListPartsResult` document. */
export function buildListPartsResult(r: ListPartsResult): string {
  const w = new XmlWriter()
    .open("ListPartsResult", { xmlns: S3_XMLNS })
    .leaf("Bucket", r.bucket)
    .leaf("Key", r.key)
    .leaf("UploadId", r.uploadId);
  writeOwner(w, "Initiator", r.initiator);
  writeOwner(w, "Owner", r.owner);
  w.leaf("StorageClass", r.storageClass)
    .leaf("PartNumberMarker", r.partNumberMarker)
    .leaf("NextPartNumberMarker", r.nextPartNumberMarker)
    .leaf("MaxParts", r.maxParts)
    .leaf("IsTruncated", r.isTruncated);
  for (const p of r.parts) {
    w.open("Part")
      .leaf("PartNumber", p.partNumber)
      .leaf("LastModified", p.lastModified)
      .leaf("ETag", p.etag)
      .leaf("Size", p.size)
      .close("Part");
  }
  return w.close("ListPartsResult").toString();
}

/** Parses a `ListPartsResult` document. */
export function parseListPartsResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListPartsResult {
  const node = parseXmlDocument(body, "ListPartsResult", ["ListPartsResult.Part"], {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  const result: ListPartsResult = {
    bucket: optText(node, "Bucket") ?? "",
    key: optText(node, "Key") ?? "",
    uploadId: optText(node, "UploadId") ?? "",
    partNumberMarker: parseUint(optText(node, "PartNumberMarker"), "PartNumberMarker") ?? 0,
    maxParts: parseUint(optText(node, "MaxParts"), "MaxParts") ?? 1000,
    isTruncated: parseBool(optText(node, "IsTruncated"), "IsTruncated") ?? false,
    parts: children(node, "Part").map((p) => ({
      partNumber: reqUint(p, "PartNumber"),
      lastModified: optText(p, "LastModified") ?? "",
      etag: optText(p, "ETag") ?? "",
      size: reqUint(p, "Size"),
    })),
  };
  return withDefined(result, {
    nextPartNumberMarker: parseUint(optText(node, "NextPartNumberMarker"), "NextPartNumberMarker"),
    initiator: readOwner(node, "Initiator"),
    owner: readOwner(node, "Owner"),
    storageClass: optText(node, "StorageClass"),
  });
}

/** One bucket of a ListAllMyBucketsResult. */
export interface BucketEntry {
  name: string;
  /** ISO-8601 timestamp as written by the server. */
  creationDate: string;
}

/** ListBuckets result (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html). */
export interface ListAllMyBucketsResult {
  owner?: XmlOwner;
  buckets: BucketEntry[];
  continuationToken?: string;
}

/** Builds a `ListAllMyBucketsResult` document. */
export function buildListAllMyBucketsResult(r: ListAllMyBucketsResult): string {
  const w = new XmlWriter().open("ListAllMyBucketsResult", { xmlns: S3_XMLNS });
  writeOwner(w, "Owner", r.owner);
  w.open("Buckets");
  for (const b of r.buckets) {
    w.open("Bucket").leaf("Name", b.name).leaf("CreationDate", b.creationDate).close("Bucket");
  }
  w.close("Buckets").leaf("ContinuationToken", r.continuationToken);
  return w.close("ListAllMyBucketsResult").toString();
}

/** Parses a `ListAllMyBucketsResult` document. */
export function parseListAllMyBucketsResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListAllMyBucketsResult {
  const node = parseXmlDocument(
    body,
    "ListAllMyBucketsResult",
    ["ListAllMyBucketsResult.Buckets.Bucket"],
    { maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT },
  );
  const buckets = optChild(node, "Buckets");
  const result: ListAllMyBucketsResult = {
    buckets:
      buckets === undefined
        ? []
        : children(buckets, "Bucket").map((b) => ({
            name: reqText(b, "Name"),
            creationDate: optText(b, "CreationDate") ?? "",
          })),
  };
  const token = optText(node, "ContinuationToken");
  return withDefined(result, {
    owner: readOwner(node, "Owner"),
    continuationToken: token === "" ? undefined : token,
  });
}
