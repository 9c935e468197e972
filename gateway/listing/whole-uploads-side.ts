/**
 * A {@link ListSide} wrapper for backends whose ListMultipartUploads is not a listing: the
 * pinned MinIO answers only the uploads of the exact key named by `prefix`, ignores `key-marker`
 * and `max-uploads`, and returns every upload in one page, not always in UTF-8 byte order
 * (docs/listing.md, "Backend faults"). The wrapper lists the backend's uploads whole (prefix
 * `""`, no markers, following truncation should a backend paginate), then answers each request
 * from that list as S3 defines it: prefix, exclusive position, `/` roll-up, page size.
 *
 * Memory and time grow with the number of uploads in progress on that backend, which in a
 * migration is small (they are not migrated; docs/listing.md says how to check).
 */
import { compareKeys, foldCommonPrefix } from "../../s3/key-order.js";
import type {
  BackendEntry,
  BackendListPage,
  BackendListRequest,
  ListSide,
  SideName,
  UploadListEntry,
} from "./listing-types.js";

/** The most uploads a wrapped backend may hold before listings fail (503) rather than grow. */
export const MAX_WHOLE_UPLOADS = 100_000;

async function allUploads(
  side: ListSide,
  fetchOwner: boolean,
  signal: AbortSignal,
): Promise<UploadListEntry[]> {
  const out: UploadListEntry[] = [];
  let position: { startAfter?: string; idMarker?: string } = {};
  for (let pages = 0; ; pages++) {
    const page = await side.listPage(
      { kind: "uploads", prefix: "", fetchOwner, maxEntries: 1000, ...position },
      signal,
    );
    for (const e of page.entries) if (e.type === "upload") out.push(e);
    if (out.length > MAX_WHOLE_UPLOADS)
      throw new Error(`${side.name}: more than ${MAX_WHOLE_UPLOADS} uploads in progress`);
    const next = page.next;
    if (!page.isTruncated || next === undefined || pages > MAX_WHOLE_UPLOADS / 1000) break;
    if (next.key === position.startAfter && next.id === position.idMarker) break;
    position = { startAfter: next.key, ...(next.id === undefined ? {} : { idMarker: next.id }) };
  }
  // Stable: uploads of one key keep the backend's order (by initiation).
  return out
    .map((u, i) => ({ u, i }))
    .sort((a, b) => compareKeys(a.u.key, b.u.key) || a.i - b.i)
    .map((x) => x.u);
}

/** Answers `request` from a whole, sorted list of uploads as S3 would. */
export function pageOfUploads(
  all: readonly UploadListEntry[],
  request: BackendListRequest,
): BackendListPage {
  const entries: BackendEntry[] = [];
  let lastPrefix: string | undefined;
  let skipping = request.idMarker !== undefined;
  for (const u of all) {
    if (!u.key.startsWith(request.prefix)) continue;
    const folded = foldCommonPrefix(u.key, request.prefix, request.delimiter);
    const name = folded ?? u.key;
    if (request.startAfter !== undefined) {
      const order = compareKeys(name, request.startAfter);
      if (order < 0) continue;
      if (order === 0) {
        if (folded !== undefined || request.idMarker === undefined) continue;
        // Inside the chain of the marker key: after the marker upload.
        if (skipping) {
          if (u.uploadId === request.idMarker) skipping = false;
          continue;
        }
      }
    }
    if (folded !== undefined && folded === lastPrefix) continue;
    if (entries.length === request.maxEntries) {
      const last = entries[entries.length - 1] as BackendEntry;
      return {
        entries,
        isTruncated: true,
        next:
          last.type === "upload"
            ? { key: last.key, id: last.uploadId }
            : { key: last.type === "prefix" ? last.prefix : "" },
      };
    }
    if (folded !== undefined) {
      entries.push({ type: "prefix", prefix: folded });
      lastPrefix = folded;
    } else {
      entries.push(u);
    }
  }
  return { entries, isTruncated: false };
}

/** Wraps `side` so that its uploads are listed whole and paged here; other kinds pass through. */
export function wholeUploadsSide(side: ListSide): ListSide {
  return {
    name: side.name as SideName,
    listPage: async (request, signal) => {
      if (request.kind !== "uploads") return await side.listPage(request, signal);
      return pageOfUploads(await allUploads(side, request.fetchOwner, signal), request);
    },
  };
}
