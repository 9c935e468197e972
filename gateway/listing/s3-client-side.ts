/**
 * A {@link ListSide} over the project's S3 client: lists one bucket of one S3 server. It lets
 * the merged-listing engine run against real servers without the gateway (the model tests do),
 * and is the reference for the gateway's own implementation over its re-signing backends.
 */
import type { S3Transport } from "../../s3/client.js";
import {
  listMultipartUploadsPageFrom,
  listObjectVersionsPage,
  listObjectsV2PageFrom,
} from "../../s3/client-listing.js";
import { compareKeys } from "../../s3/key-order.js";
import type {
  BackendEntry,
  BackendListPage,
  BackendListRequest,
  ListSide,
  PrefixListEntry,
  SideName,
} from "./listing-types.js";

/** Where a {@link S3ClientListSide} lists. */
export interface S3ClientListSideOptions {
  readonly name: SideName;
  readonly client: S3Transport;
  readonly bucket: string;
  /** Ask the server for url-encoded keys (only for servers that encode exactly as S3 does). */
  readonly encodingType?: "url";
}

/**
 * Interleaves CommonPrefixes with the other entries in UTF-8 byte order (S3 documents give
 * them as two lists). Stable: entries of equal keys keep their order.
 */
function interleave(entries: BackendEntry[], prefixes: readonly string[]): BackendEntry[] {
  if (prefixes.length === 0) return entries;
  const out: BackendEntry[] = [];
  let p = 0;
  const prefixEntries: PrefixListEntry[] = prefixes.map((prefix) => ({ type: "prefix", prefix }));
  for (const e of entries) {
    const name = e.type === "prefix" ? e.prefix : e.key;
    while (
      p < prefixEntries.length &&
      compareKeys((prefixEntries[p] as PrefixListEntry).prefix, name) < 0
    ) {
      out.push(prefixEntries[p++] as PrefixListEntry);
    }
    out.push(e);
  }
  while (p < prefixEntries.length) out.push(prefixEntries[p++] as PrefixListEntry);
  return out;
}

/** Lists one bucket through an {@link S3Client}. */
export class S3ClientListSide implements ListSide {
  readonly name: SideName;

  constructor(private readonly options: S3ClientListSideOptions) {
    this.name = options.name;
  }

  /** Fetches one page with the S3 call that matches the request's kind. */
  async listPage(request: BackendListRequest, signal: AbortSignal): Promise<BackendListPage> {
    const { client, bucket } = this.options;
    const common = {
      bucket,
      prefix: request.prefix === "" ? undefined : request.prefix,
      delimiter: request.delimiter,
      maxEntries: request.maxEntries,
      encodingType: this.options.encodingType,
      signal,
    };
    switch (request.kind) {
      case "objects": {
        const r = await listObjectsV2PageFrom(client, {
          ...common,
          startAfter: request.startAfter,
          continuationToken: request.continuationToken,
          fetchOwner: request.fetchOwner,
        });
        const objects: BackendEntry[] = r.contents.map((c) => ({ type: "object", ...c }));
        return {
          entries: interleave(objects, r.commonPrefixes),
          isTruncated: r.isTruncated,
          ...(r.isTruncated && r.nextContinuationToken !== undefined
            ? { nextToken: r.nextContinuationToken }
            : {}),
        };
      }
      case "uploads": {
        const r = await listMultipartUploadsPageFrom(client, {
          ...common,
          keyMarker: request.startAfter,
          uploadIdMarker: request.idMarker,
        });
        const uploads: BackendEntry[] = r.uploads.map((u) => ({ type: "upload", ...u }));
        return {
          entries: interleave(uploads, r.commonPrefixes),
          isTruncated: r.isTruncated,
          ...(r.nextKeyMarker === undefined
            ? {}
            : {
                next: {
                  key: r.nextKeyMarker,
                  ...(r.nextUploadIdMarker === undefined ? {} : { id: r.nextUploadIdMarker }),
                },
              }),
        };
      }
      case "versions": {
        const r = await listObjectVersionsPage(client, {
          ...common,
          keyMarker: request.startAfter,
          versionIdMarker: request.idMarker,
        });
        const versions: BackendEntry[] = r.versions.map((v) => ({ type: "version", ...v }));
        return {
          entries: interleave(versions, r.commonPrefixes),
          isTruncated: r.isTruncated,
          ...(r.nextKeyMarker === undefined
            ? {}
            : {
                next: {
                  key: r.nextKeyMarker,
                  ...(r.nextVersionIdMarker === undefined ? {} : { id: r.nextVersionIdMarker }),
                },
              }),
        };
      }
    }
  }
}
