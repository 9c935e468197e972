/**
 * The seam between the merged-listing engine and the two buckets it merges: a {@link ListSide}
 * per backend answers "one page of this listing, in S3's order, from this position". The engine
 * never sees HTTP, XML or credentials; an implementation over the project's S3 client lives in
 * s3-client-side.ts and the gateway provides one over its re-signing backends.
 */
import type { XmlOwner } from "../../s3/xml-list.js";

/** Which bucket of a migrate-mode pair a side is: the target wins on a key present on both. */
export type SideName = "target" | "source";

/** The four listings migrate mode merges, named as AWS spells the operations. */
export type ListingOperation =
  "ListObjectsV2" | "ListObjects" | "ListMultipartUploads" | "ListObjectVersions";

/** What a backend lists: objects (v1 and v2 alike), in-progress uploads or object versions. */
export type BackendListKind = "objects" | "uploads" | "versions";

/**
 * One page request to a backend, in the form every backend of the rig answers correctly
 * (docs/listing.md, "Backend faults"):
 * - `startAfter` is always inside `prefix`'s range (or absent): the engine normalises markers
 *   S3 treats as positions but MinIO refuses with NotImplemented;
 * - `delimiter` is only ever `/` (other delimiters are rolled up by the engine, because MinIO
 *   repeats or invents common prefixes for them);
 * - no `encoding-type`: the implementation chooses how keys travel and returns them decoded.
 */
export interface BackendListRequest {
  /** What to list. */
  readonly kind: BackendListKind;
  /** Only keys that start with it; `""` for the whole bucket. */
  readonly prefix: string;
  /**
   * Exclusive position: S3's `start-after` for objects, `key-marker` for uploads and versions.
   * Absent for the first page.
   */
  readonly startAfter?: string;
  /**
   * With `startAfter`, resumes inside the chain of that key: `upload-id-marker` (uploads) or
   * `version-id-marker` (versions). Only ever a value the same backend returned as its own
   * NextUploadIdMarker / NextVersionIdMarker.
   */
  readonly idMarker?: string;
  /**
   * Objects: the backend's own NextContinuationToken for the position `startAfter` (the last
   * name of its previous page). A backend that issued it resumes by it rather than by
   * `start-after`: the pinned MinIO answers a `start-after` inside some "directories" with a
   * short page that claims to be the last (docs/listing.md, "Backend faults"), while its own
   * tokens resume exactly.
   */
  readonly continuationToken?: string;
  /** `/` or absent. */
  readonly delimiter?: "/";
  /** Entries per page, 1..1000 (`max-keys` / `max-uploads`). */
  readonly maxEntries: number;
  /** Ask for owners (`fetch-owner=true` for ListObjectsV2; v1, uploads and versions always have them). */
  readonly fetchOwner: boolean;
}

/** An object of a ListObjects/ListObjectsV2 page. */
export interface ObjectListEntry {
  readonly type: "object";
  readonly key: string;
  /** ISO-8601 timestamp exactly as the backend wrote it. */
  readonly lastModified: string;
  /** With its quotes. */
  readonly etag: string;
  readonly size: number;
  readonly storageClass?: string;
  readonly owner?: XmlOwner;
}

/** A CommonPrefix the backend rolled up (only with the `/` delimiter). */
export interface PrefixListEntry {
  readonly type: "prefix";
  readonly prefix: string;
}

/** An in-progress multipart upload. */
export interface UploadListEntry {
  readonly type: "upload";
  readonly key: string;
  readonly uploadId: string;
  /** ISO-8601 timestamp as the backend wrote it. */
  readonly initiated: string;
  readonly storageClass?: string;
  readonly initiator?: XmlOwner;
  readonly owner?: XmlOwner;
}

/** A version or delete marker of a ListObjectVersions page. */
export interface VersionListEntry {
  readonly type: "version";
  readonly key: string;
  /** `null` for the one version of a key in an unversioned bucket. */
  readonly versionId: string;
  readonly isLatest: boolean;
  /** A `<DeleteMarker>` rather than a `<Version>`. */
  readonly isDeleteMarker: boolean;
  readonly lastModified: string;
  /** Absent on delete markers. */
  readonly etag?: string;
  /** Absent on delete markers. */
  readonly size?: number;
  readonly storageClass?: string;
  readonly owner?: XmlOwner;
}

/** Any entry a backend page can hold. */
export type BackendEntry = ObjectListEntry | PrefixListEntry | UploadListEntry | VersionListEntry;

/** One parsed backend page, entries decoded and in the backend's order. */
export interface BackendListPage {
  /** Objects, uploads or versions interleaved with CommonPrefixes in UTF-8 byte order. */
  readonly entries: readonly BackendEntry[];
  /** Whether the backend has more after this page. */
  readonly isTruncated: boolean;
  /**
   * The backend's own next position when it gives one (NextKeyMarker + NextUploadIdMarker /
   * NextVersionIdMarker); absent for objects, where the last entry is the position.
   */
  readonly next?: { readonly key: string; readonly id?: string };
  /** Objects: the backend's NextContinuationToken, when it is truncated and gave one. */
  readonly nextToken?: string;
  /** Served again from the pages a listing's previous page parked, not fetched (page-cache.ts). */
  readonly reused?: true;
}

/**
 * One backend of a merged listing. `listPage` must reject (with anything) when the backend
 * fails or answers an error: the engine then answers 503 for the whole listing, never a
 * partial one. It must honour `signal` (the engine aborts its read-ahead when a page is done).
 */
export interface ListSide {
  /** Which bucket this is. */
  readonly name: SideName;
  /** Fetches one page. */
  listPage(request: BackendListRequest, signal: AbortSignal): Promise<BackendListPage>;
}

/**
 * Counters a merged listing reports (the gateway maps them to Prometheus metrics). Every hook
 * is optional and must not throw.
 */
export interface ListingMetrics {
  /** One merged listing page was answered. */
  listing?(operation: ListingOperation): void;
  /** A backend page was fetched from `side`. */
  pageFetched?(side: SideName): void;
  /** A page of `side` parked by the listing's previous page was used again (page-cache.ts). */
  pageReused?(side: SideName): void;
  /** `count` entries (keys, uploads, versions or prefixes) were read from `side`. */
  entriesRead?(side: SideName, count: number): void;
  /** `count` entries present on both sides were folded into one (the target's). */
  duplicatesFolded?(count: number): void;
}
