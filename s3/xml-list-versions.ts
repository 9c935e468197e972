/**
 * The ListObjectVersions answer, `ListVersionsResult`
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html), parsed into a
 * typed object. Values are kept as the document has them (url-encoded when `EncodingType` is
 * `url`), as for the other listing documents in xml-list.ts.
 */
import {
  DEFAULT_RESPONSE_XML_LIMIT,
  children,
  optChild,
  optText,
  parseBool,
  parseUint,
  parseXmlDocument,
  reqText,
  withDefined,
  type XmlNode,
  type XmlParseOptions,
} from "./xml-core.js";
import type { XmlOwner } from "./xml-list.js";

/** One `<Version>` or `<DeleteMarker>` of a ListVersionsResult. */
export interface ObjectVersionEntry {
  key: string;
  versionId: string;
  isLatest: boolean;
  /** A `<DeleteMarker>` (no ETag, no size). */
  isDeleteMarker: boolean;
  /** ISO-8601 timestamp as the server wrote it. */
  lastModified: string;
  etag?: string;
  size?: number;
  storageClass?: string;
  owner?: XmlOwner;
}

/** A parsed `ListVersionsResult`. */
export interface ListVersionsResult {
  name: string;
  prefix: string;
  keyMarker: string;
  versionIdMarker: string;
  nextKeyMarker?: string;
  nextVersionIdMarker?: string;
  delimiter?: string;
  maxKeys: number;
  isTruncated: boolean;
  encodingType?: string;
  /**
   * Versions and delete markers by key, newest first within a key. The parser reads the two
   * element kinds separately, so within a key they are ordered by IsLatest then LastModified
   * descending (the order S3 lists them in).
   */
  versions: ObjectVersionEntry[];
  commonPrefixes: string[];
}

const REPEATS = [
  "ListVersionsResult.Version",
  "ListVersionsResult.DeleteMarker",
  "ListVersionsResult.CommonPrefixes",
];

function readOwner(node: XmlNode): XmlOwner | undefined {
  const owner = optChild(node, "Owner");
  if (owner === undefined) return undefined;
  return withDefined<XmlOwner>(
    {},
    { id: optText(owner, "ID"), displayName: optText(owner, "DisplayName") },
  );
}

function readVersion(node: XmlNode, isDeleteMarker: boolean): ObjectVersionEntry {
  const entry: ObjectVersionEntry = {
    key: reqText(node, "Key"),
    versionId: optText(node, "VersionId") ?? "null",
    isLatest: parseBool(optText(node, "IsLatest"), "IsLatest") ?? false,
    isDeleteMarker,
    lastModified: optText(node, "LastModified") ?? "",
  };
  return withDefined(entry, {
    etag: optText(node, "ETag"),
    size: parseUint(optText(node, "Size"), "Size"),
    storageClass: optText(node, "StorageClass"),
    owner: readOwner(node),
  });
}

/** Parses a `ListVersionsResult` document. */
export function parseListVersionsResult(
  body: string | Buffer,
  options: XmlParseOptions = {},
): ListVersionsResult {
  const node = parseXmlDocument(body, "ListVersionsResult", REPEATS, {
    maxBytes: options.maxBytes ?? DEFAULT_RESPONSE_XML_LIMIT,
  });
  const versions = [
    ...children(node, "Version").map((v) => readVersion(v, false)),
    ...children(node, "DeleteMarker").map((v) => readVersion(v, true)),
  ];
  // Keys in document order (first appearance), then newest first within a key.
  const firstSeen = new Map<string, number>();
  versions.forEach((v, i) => {
    if (!firstSeen.has(v.key)) firstSeen.set(v.key, i);
  });
  versions.sort(
    (a, b) =>
      (firstSeen.get(a.key) as number) - (firstSeen.get(b.key) as number) ||
      Number(b.isLatest) - Number(a.isLatest) ||
      (a.lastModified < b.lastModified ? 1 : a.lastModified > b.lastModified ? -1 : 0),
  );
  const delimiter = optText(node, "Delimiter");
  const result: ListVersionsResult = {
    name: optText(node, "Name") ?? "",
    prefix: optText(node, "Prefix") ?? "",
    keyMarker: optText(node, "KeyMarker") ?? "",
    versionIdMarker: optText(node, "VersionIdMarker") ?? "",
    maxKeys: parseUint(optText(node, "MaxKeys"), "MaxKeys") ?? 1000,
    isTruncated: parseBool(optText(node, "IsTruncated"), "IsTruncated") ?? false,
    versions,
    commonPrefixes: children(node, "CommonPrefixes").map((p) => reqText(p, "Prefix")),
  };
  return withDefined(result, {
    nextKeyMarker: optText(node, "NextKeyMarker"),
    nextVersionIdMarker: optText(node, "NextVersionIdMarker"),
    delimiter: delimiter === "" ? undefined : delimiter,
    encodingType: optText(node, "EncodingType"),
  });
}
