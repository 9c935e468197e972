/**
 * The XML answers of the four merged listings, written as a stream of chunks from one page of
 * merged entries (at most 1,000, the only thing held): ListBucketResult (v1 and v2),
 * ListMultipartUploadsResult and ListVersionsResult, with the elements in the order S3 writes
 * them and `encoding-type=url` applied where S3 applies it
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html#API_ListObjectsV2_ResponseSyntax).
 */
import { Readable } from "node:stream";
import { S3_XMLNS, XML_DECLARATION, escapeXmlText, s3UrlEncode } from "../../s3/xml-core.js";
import type { XmlOwner } from "../../s3/xml-list.js";
import type { ListingQuery } from "./listing-query.js";
import type { BackendEntry } from "./listing-types.js";

/** One item of a merged page: a CommonPrefix or an entry (object, upload or version). */
export type PageItem =
  | { readonly kind: "prefix"; readonly name: string }
  | { readonly kind: "entry"; readonly entry: BackendEntry };

/** One page of a merged listing, ready to be written. */
export interface ListingPage {
  readonly bucket: string;
  readonly query: ListingQuery;
  readonly items: readonly PageItem[];
  readonly isTruncated: boolean;
  /** v1 NextMarker (with a delimiter), NextKeyMarker of uploads and versions. */
  readonly nextMarker?: string;
  /** NextUploadIdMarker / NextVersionIdMarker. */
  readonly nextIdMarker?: string;
  /** ListObjectsV2 NextContinuationToken. */
  readonly nextContinuationToken?: string;
}

const CHUNK_ITEMS = 64;

function leaf(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? "" : `<${name}>${escapeXmlText(String(value))}</${name}>`;
}

function owner(name: string, o: XmlOwner | undefined): string {
  if (o === undefined) return "";
  return `<${name}>${leaf("ID", o.id)}${leaf("DisplayName", o.displayName)}</${name}>`;
}

function header(root: string, fields: string[]): string {
  return `${XML_DECLARATION}<${root} xmlns="${S3_XMLNS}">${fields.join("")}`;
}

function itemXml(item: PageItem, page: ListingPage, enc: (s: string) => string): string {
  if (item.kind === "prefix")
    return `<CommonPrefixes>${leaf("Prefix", enc(item.name))}</CommonPrefixes>`;
  const e = item.entry;
  switch (e.type) {
    case "object":
      return (
        `<Contents>${leaf("Key", enc(e.key))}${leaf("LastModified", e.lastModified)}` +
        `${leaf("ETag", e.etag)}${leaf("Size", e.size)}` +
        `${page.query.fetchOwner ? owner("Owner", e.owner) : ""}` +
        `${leaf("StorageClass", e.storageClass)}</Contents>`
      );
    case "upload":
      return (
        `<Upload>${leaf("Key", enc(e.key))}${leaf("UploadId", e.uploadId)}` +
        `${owner("Initiator", e.initiator)}${owner("Owner", e.owner)}` +
        `${leaf("StorageClass", e.storageClass)}${leaf("Initiated", e.initiated)}</Upload>`
      );
    case "version": {
      const tag = e.isDeleteMarker ? "DeleteMarker" : "Version";
      return (
        `<${tag}>${leaf("Key", enc(e.key))}${leaf("VersionId", e.versionId)}` +
        `${leaf("IsLatest", e.isLatest)}${leaf("LastModified", e.lastModified)}` +
        `${leaf("ETag", e.etag)}${leaf("Size", e.size)}${owner("Owner", e.owner)}` +
        `${leaf("StorageClass", e.storageClass)}</${tag}>`
      );
    }
    case "prefix":
      return `<CommonPrefixes>${leaf("Prefix", enc(e.prefix))}</CommonPrefixes>`;
  }
}

function headerOf(page: ListingPage, enc: (s: string) => string): { root: string; head: string } {
  const q = page.query;
  const encodingType = q.encodeUrl ? "url" : undefined;
  const delimiter = q.delimiter === undefined ? undefined : enc(q.delimiter);
  switch (q.operation) {
    case "ListObjectsV2":
      return {
        root: "ListBucketResult",
        head: header("ListBucketResult", [
          leaf("Name", page.bucket),
          leaf("Prefix", enc(q.prefix)),
          leaf("KeyCount", page.items.length),
          leaf("MaxKeys", q.maxKeys),
          leaf("Delimiter", delimiter),
          leaf("IsTruncated", page.isTruncated),
          leaf("EncodingType", encodingType),
          leaf("ContinuationToken", q.continuationToken),
          leaf("NextContinuationToken", page.nextContinuationToken),
          leaf("StartAfter", q.marker === undefined ? undefined : enc(q.marker)),
        ]),
      };
    case "ListObjects":
      return {
        root: "ListBucketResult",
        head: header("ListBucketResult", [
          leaf("Name", page.bucket),
          leaf("Prefix", enc(q.prefix)),
          leaf("Marker", enc(q.marker ?? "")),
          leaf("NextMarker", page.nextMarker === undefined ? undefined : enc(page.nextMarker)),
          leaf("MaxKeys", q.maxKeys),
          leaf("Delimiter", delimiter),
          leaf("IsTruncated", page.isTruncated),
          leaf("EncodingType", encodingType),
        ]),
      };
    case "ListMultipartUploads":
      return {
        root: "ListMultipartUploadsResult",
        head: header("ListMultipartUploadsResult", [
          leaf("Bucket", page.bucket),
          leaf("KeyMarker", enc(q.marker ?? "")),
          leaf("UploadIdMarker", q.idMarker ?? ""),
          leaf("NextKeyMarker", page.nextMarker === undefined ? undefined : enc(page.nextMarker)),
          leaf("NextUploadIdMarker", page.nextIdMarker),
          leaf("Delimiter", delimiter),
          leaf("Prefix", enc(q.prefix)),
          leaf("MaxUploads", q.maxKeys),
          leaf("IsTruncated", page.isTruncated),
          leaf("EncodingType", encodingType),
        ]),
      };
    case "ListObjectVersions":
      return {
        root: "ListVersionsResult",
        head: header("ListVersionsResult", [
          leaf("Name", page.bucket),
          leaf("Prefix", enc(q.prefix)),
          leaf("KeyMarker", enc(q.marker ?? "")),
          leaf("VersionIdMarker", q.idMarker ?? ""),
          leaf("NextKeyMarker", page.nextMarker === undefined ? undefined : enc(page.nextMarker)),
          leaf("NextVersionIdMarker", page.nextIdMarker),
          leaf("MaxKeys", q.maxKeys),
          leaf("Delimiter", delimiter),
          leaf("IsTruncated", page.isTruncated),
          leaf("EncodingType", encodingType),
        ]),
      };
  }
}

/**
 * The chunks of a page's document: the header, then the entries a few at a time, Contents /
 * Upload / Version elements before CommonPrefixes as S3 writes them, then the closing tag.
 */
export function* listingXmlChunks(page: ListingPage): Generator<Buffer> {
  const enc = page.query.encodeUrl ? s3UrlEncode : (s: string): string => s;
  const { root, head } = headerOf(page, enc);
  yield Buffer.from(head, "utf8");
  // S3 writes every entry first and the CommonPrefixes after them (the SDKs read either order,
  // older hand-written parsers may not): two passes over the page.
  for (const wantPrefixes of [false, true]) {
    let chunk = "";
    let n = 0;
    for (const item of page.items) {
      const isPrefix = item.kind === "prefix" || item.entry.type === "prefix";
      if (isPrefix !== wantPrefixes) continue;
      chunk += itemXml(item, page, enc);
      if (++n % CHUNK_ITEMS === 0) {
        yield Buffer.from(chunk, "utf8");
        chunk = "";
      }
    }
    if (chunk !== "") yield Buffer.from(chunk, "utf8");
  }
  yield Buffer.from(`</${root}>`, "utf8");
}

/** The page's document as a byte stream. */
export function listingXmlStream(page: ListingPage): Readable {
  return Readable.from(listingXmlChunks(page), { objectMode: false });
}
