/**
 * Listing calls for a listing merge: ListObjectsV2, ListMultipartUploads and ListObjectVersions
 * pages with every position parameter exposed and the choice of `encoding-type` left to the
 * caller. By default no `encoding-type` is sent: versitygw encodes a space as `%20` but leaves
 * `+` as is, so a url-encoded answer cannot be decoded right for every server; raw XML carries
 * every key except those with characters XML 1.0 cannot hold (control characters), for which
 * `encodingType: "url"` must be chosen with a server that encodes as S3 does (MinIO).
 */
import { readBodyLimited, S3ClientError, type S3Response, type S3Transport } from "./client.js";
import {
  DEFAULT_RESPONSE_XML_LIMIT,
  parseListBucketResultV2,
  parseListMultipartUploadsResult,
  s3UrlDecode,
  type ListBucketResultV2,
  type ListMultipartUploadsResult,
} from "./xml.js";
import { parseListVersionsResult, type ListVersionsResult } from "./xml-list-versions.js";

/** Fields every listing page request takes. */
export interface ListingPageInput {
  bucket: string;
  prefix?: string;
  delimiter?: string;
  /** Entries per page (`max-keys` / `max-uploads`), 1..1000. */
  maxEntries?: number;
  /** `url` asks the server to url-encode keys (decoded here); absent sends none. */
  encodingType?: "url";
  signal?: AbortSignal;
}

async function readPage<T>(
  res: S3Response,
  bucket: string,
  parse: (body: Buffer) => T,
): Promise<T> {
  const body = await readBodyLimited(res.body, DEFAULT_RESPONSE_XML_LIMIT, { bucket });
  try {
    return parse(body);
  } catch (err) {
    // A document we cannot read is the server's fault, never the client's MalformedXML.
    throw new S3ClientError("InternalError", {
      status: 500,
      message: "The S3 server sent a listing that could not be read.",
      requestId: res.headers["x-amz-request-id"],
      bucket,
      cause: err,
    });
  }
}

function decoder(encodingType: string | undefined): (s: string) => string {
  return encodingType === "url" ? s3UrlDecode : (s) => s;
}

function max(n: number | undefined): string | undefined {
  return n === undefined ? undefined : String(n);
}

/** One ListObjectsV2 page from an exclusive `startAfter` position, keys decoded. */
export async function listObjectsV2PageFrom(
  client: S3Transport,
  input: ListingPageInput & {
    startAfter?: string;
    /** The server's own token for the position; `startAfter` is then not sent. */
    continuationToken?: string;
    fetchOwner?: boolean;
  },
): Promise<ListBucketResultV2> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    query: {
      "list-type": "2",
      "encoding-type": input.encodingType,
      prefix: input.prefix,
      delimiter: input.delimiter,
      "max-keys": max(input.maxEntries),
      ...(input.continuationToken === undefined
        ? { "start-after": input.startAfter }
        : { "continuation-token": input.continuationToken }),
      "fetch-owner": input.fetchOwner === true ? "true" : undefined,
    },
    signal: input.signal,
  });
  return await readPage(res, input.bucket, (body) => {
    const r = parseListBucketResultV2(body);
    const d = decoder(r.encodingType);
    return {
      ...r,
      prefix: d(r.prefix),
      contents: r.contents.map((c) => ({ ...c, key: d(c.key) })),
      commonPrefixes: r.commonPrefixes.map(d),
    };
  });
}

/** One ListMultipartUploads page from `keyMarker` (and `uploadIdMarker`), keys decoded. */
export async function listMultipartUploadsPageFrom(
  client: S3Transport,
  input: ListingPageInput & { keyMarker?: string; uploadIdMarker?: string },
): Promise<ListMultipartUploadsResult> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    query: {
      uploads: "",
      "encoding-type": input.encodingType,
      prefix: input.prefix,
      delimiter: input.delimiter,
      "key-marker": input.keyMarker,
      "upload-id-marker": input.uploadIdMarker,
      "max-uploads": max(input.maxEntries),
    },
    signal: input.signal,
  });
  return await readPage(res, input.bucket, (body) => {
    const r = parseListMultipartUploadsResult(body);
    const d = decoder(r.encodingType);
    const out: ListMultipartUploadsResult = {
      ...r,
      keyMarker: d(r.keyMarker),
      uploads: r.uploads.map((u) => ({ ...u, key: d(u.key) })),
      commonPrefixes: r.commonPrefixes.map(d),
    };
    if (r.nextKeyMarker !== undefined) out.nextKeyMarker = d(r.nextKeyMarker);
    return out;
  });
}

/** One ListObjectVersions page from `keyMarker` (and `versionIdMarker`), keys decoded. */
export async function listObjectVersionsPage(
  client: S3Transport,
  input: ListingPageInput & { keyMarker?: string; versionIdMarker?: string },
): Promise<ListVersionsResult> {
  const res = await client.request({
    method: "GET",
    bucket: input.bucket,
    query: {
      versions: "",
      "encoding-type": input.encodingType,
      prefix: input.prefix,
      delimiter: input.delimiter,
      "key-marker": input.keyMarker,
      "version-id-marker": input.versionIdMarker,
      "max-keys": max(input.maxEntries),
    },
    signal: input.signal,
  });
  return await readPage(res, input.bucket, (body) => {
    const r = parseListVersionsResult(body);
    const d = decoder(r.encodingType);
    const out: ListVersionsResult = {
      ...r,
      versions: r.versions.map((v) => ({ ...v, key: d(v.key) })),
      commonPrefixes: r.commonPrefixes.map(d),
    };
    if (r.nextKeyMarker !== undefined) out.nextKeyMarker = d(r.nextKeyMarker);
    return out;
  });
}
