/**
 * The merged listing of a migrate-mode bucket: ListObjectsV2, ListObjects, ListMultipartUploads
 * and ListObjectVersions answered as one bucket from the target and the source. This is the
 * `mergeList` plan's executor; the gateway gives it the raw query, the two {@link ListSide}s
 * and the listing secret, and writes the result (or the thrown S3Error) as it writes any other.
 *
 * A page is computed completely (both sides paged in parallel with one page of read-ahead,
 * merged and rolled up as a stream, at most 1,000 entries kept) before anything is answered,
 * so a side that fails gives a 503 and never a partial listing presented as complete; the
 * document is then streamed from those entries. See docs/listing.md.
 */
import type { Readable } from "node:stream";
import { S3Error } from "../../s3/errors.js";
import { compareKeys, foldCommonPrefix } from "../../s3/key-order.js";
import { lastKeyUnder, normalizeStart } from "../../s3/listing-bounds.js";
import { randomBytes } from "node:crypto";
import {
  LISTING_ID_BYTES,
  openContinuation,
  sealContinuationToken,
  type SidePosition,
  type SidePositions,
  type TokenBinding,
} from "./continuation-token.js";
import { parseListingQuery, type ListingQuery } from "./listing-query.js";
import { listingXmlStream, type ListingPage, type PageItem } from "./listing-xml.js";
import { mergeGroups, sideGroups, type MergedGroup, type TieRule } from "./merge-entries.js";
import { BackendListingFault, SideReader } from "./side-reader.js";
import type {
  BackendEntry,
  BackendListKind,
  BackendListRequest,
  ListSide,
  ListingMetrics,
  ListingOperation,
} from "./listing-types.js";

/** The input of {@link mergedListing}. */
export interface MergedListingInput {
  /** Which listing the client asked for. */
  readonly operation: ListingOperation;
  /** The bucket as the client named it (echoed in the answer; bound into tokens). */
  readonly bucket: string;
  /** The request's query string as received, undecoded, without `?`. */
  readonly rawQuery: string;
  /** The two buckets. */
  readonly sides: { readonly target: ListSide; readonly source: ListSide };
  /**
   * The HMAC key of continuation tokens. Every gateway behind one DNS name must use the same
   * key (docs/listing.md, "The token secret") or tokens fail over from one to another.
   */
  readonly tokenKey: Buffer;
  /** The client's request: aborting it stops the backend requests. */
  readonly signal: AbortSignal;
  /** Counters for the gateway's metrics. */
  readonly metrics?: ListingMetrics;
  /**
   * Backend pages carried from one page of an object listing to the next (page-cache.ts):
   * resumed before a page that continues a listing, parked after a truncated page.
   */
  readonly carry?: PageCarry;
}

/** Where a merged listing parks and resumes its sides' backend pages. */
export interface PageCarry {
  resume(continuation: string): void;
  park(continuation: string, lastName: string): void;
  /** The request is over (called once, whatever happened). */
  finish(): void;
}

/** A merged listing's answer: status, headers and the streamed XML body. */
export interface MergedListingResult {
  readonly status: 200;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readable;
}

const KIND: Record<ListingOperation, BackendListKind> = {
  ListObjectsV2: "objects",
  ListObjects: "objects",
  ListMultipartUploads: "uploads",
  ListObjectVersions: "versions",
};

const TIE: Record<BackendListKind, TieRule> = {
  objects: "target-wins",
  versions: "target-wins",
  uploads: "concatenate",
};

/**
 * Answers one page of a merged listing. Throws S3Error: InvalidArgument for bad parameters or
 * a continuation token this gateway fleet did not issue for this listing, ServiceUnavailable
 * (503) when either side fails or answers something a correct listing cannot be built from.
 */
export async function mergedListing(input: MergedListingInput): Promise<MergedListingResult> {
  const query = parseListingQuery(input.operation, input.rawQuery);
  const binding: TokenBinding = {
    bucket: input.bucket,
    operation: input.operation,
    prefix: query.prefix,
    ...(query.delimiter === undefined ? {} : { delimiter: query.delimiter }),
  };
  // ListObjectsV2 ignores start-after once a continuation token is given (S3 documents it).
  const continuation =
    query.continuationToken !== undefined
      ? openContinuation(input.tokenKey, binding, query.continuationToken)
      : undefined;
  const after = continuation !== undefined ? continuation.after : query.marker;
  // The listing's id, carried by its tokens from the first page to the last.
  const listing = continuation?.listing ?? randomBytes(LISTING_ID_BYTES).toString("hex");
  const carryKey = (position: string): string | undefined =>
    query.operation === "ListObjectsV2"
      ? `${listing}\n${position}`
      : query.operation === "ListObjects"
        ? `marker\n${position}`
        : undefined;
  let page: ListingPage;
  try {
    // A page that continues an object listing (by its token, or a v1 marker) may start from
    // the backend pages the previous page parked.
    const resumeKey =
      (continuation?.listing !== undefined || query.operation === "ListObjects") &&
      after !== undefined
        ? carryKey(after)
        : undefined;
    if (resumeKey !== undefined) input.carry?.resume(resumeKey);
    page = await computePage(input, query, binding, after, listing, continuation?.sides);
    const last = page.items[page.items.length - 1];
    const lastName =
      last === undefined ? undefined : last.kind === "prefix" ? last.name : nameOf(last.entry);
    const parkKey = lastName === undefined ? undefined : carryKey(lastName);
    if (page.isTruncated && parkKey !== undefined) input.carry?.park(parkKey, lastName as string);
  } catch (err) {
    if (input.signal.aborted) throw input.signal.reason ?? err;
    if (err instanceof S3Error && err.code === "InvalidArgument") throw err;
    throw new S3Error("ServiceUnavailable", {
      message:
        err instanceof BackendListingFault
          ? "A backend of this bucket answered a listing that cannot be merged; please retry."
          : "A backend of this bucket is unavailable; please retry.",
      cause: err,
    });
  } finally {
    input.carry?.finish();
  }
  input.metrics?.listing?.(input.operation);
  return {
    status: 200,
    headers: { "content-type": "application/xml" },
    body: listingXmlStream(page),
  };
}

function emptyPage(bucket: string, query: ListingQuery): ListingPage {
  return { bucket, query, items: [], isTruncated: false };
}

async function computePage(
  input: MergedListingInput,
  query: ListingQuery,
  binding: TokenBinding,
  after: string | undefined,
  listing: string,
  sides: SidePositions | undefined,
): Promise<ListingPage> {
  if (query.maxKeys === 0) return emptyPage(input.bucket, query);
  const start = normalizeStart(after, query.prefix);
  if (start.kind === "end") return emptyPage(input.bucket, query);
  const position = start.kind === "after" ? start.after : undefined;
  const kind = KIND[query.operation];
  const foldedStart =
    position === undefined ? undefined : foldCommonPrefix(position, query.prefix, query.delimiter);

  const items: PageItem[] = [];
  let isTruncated = false;
  // Resuming inside a key's chain of uploads or versions (key-marker + id marker).
  if (position !== undefined && foldedStart === undefined && query.idMarker !== undefined) {
    const chain = await chainAfter(input, query, kind, position, query.idMarker);
    for (const entry of chain) {
      if (items.length === query.maxKeys) {
        isTruncated = true;
        break;
      }
      items.push({ kind: "entry", entry });
    }
  }

  const resume: { sides?: SidePositions } = {};
  if (!isTruncated) {
    isTruncated = await fillFromMerge(
      input,
      query,
      kind,
      position,
      foldedStart,
      items,
      // Where each side can be read again: only for objects resumed from this very position.
      kind === "objects" && position !== undefined && position === after ? sides : undefined,
      resume,
    );
  }
  return finishPage(input, query, binding, items, isTruncated, listing, resume.sides);
}

/** Streams the merge into `items` until the page is full; returns whether more follow. */
async function fillFromMerge(
  input: MergedListingInput,
  query: ListingQuery,
  kind: BackendListKind,
  position: string | undefined,
  foldedStart: string | undefined,
  items: PageItem[],
  starts: SidePositions | undefined,
  resume: { sides?: SidePositions },
): Promise<boolean> {
  const passDelimiter = query.delimiter === "/";
  const ownFolding = query.delimiter !== undefined && !passDelimiter;
  // The backend position: a start inside a CommonPrefix skips the whole prefix (S3 does not
  // list it again), which the backend is asked directly when it can be.
  let backendStart = position;
  if (foldedStart !== undefined) {
    backendStart = passDelimiter ? foldedStart : (lastKeyUnder(foldedStart) ?? position);
  }
  const request: Omit<BackendListRequest, "startAfter" | "idMarker" | "maxEntries"> = {
    kind,
    prefix: query.prefix,
    fetchOwner: query.fetchOwner,
    ...(passDelimiter ? { delimiter: "/" as const } : {}),
  };
  // Backends are always paged by 1,000, even for a page of 5: the pinned MinIO loses keys of
  // nested "directories" after a start-after when max-keys is small (docs/listing.md, "Backend
  // faults"), and a full page costs a backend little more than a short one.
  const firstPageEntries = 1000;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(input.signal.reason);
  input.signal.addEventListener("abort", onAbort, { once: true });
  const readers = (["target", "source"] as const).map((name) => {
    // A side the token says where to read again from (at or before the position: the names up
    // to the position are dropped below) is read from there, by the backend's own token.
    const start: SidePosition | undefined = starts?.[name];
    const from =
      start === undefined
        ? backendStart === undefined
          ? {}
          : { startAfter: backendStart }
        : {
            ...(start.startAfter === undefined ? {} : { startAfter: start.startAfter }),
            ...(start.token === undefined ? {} : { startToken: start.token }),
          };
    return new SideReader({
      side: input.sides[name],
      request,
      ...from,
      firstPageEntries,
      // Long pages of object listings keep one backend page in flight (parked if unused).
      eagerReadAhead: kind === "objects" && query.maxKeys >= 500,
      signal: controller.signal,
      ...(input.metrics === undefined ? {} : { metrics: input.metrics }),
    });
  });
  const grouping = {
    prefix: query.prefix,
    ...(query.delimiter === undefined ? {} : { delimiter: query.delimiter }),
    ...(position === undefined ? {} : { after: position }),
    skipFoldedKeys: ownFolding,
  };
  const merged = mergeGroups(
    sideGroups(readers[0] as SideReader, grouping),
    sideGroups(readers[1] as SideReader, grouping),
    { tie: TIE[kind], ...(input.metrics === undefined ? {} : { metrics: input.metrics }) },
  );
  const truncated = (): true => {
    const last = items[items.length - 1];
    if (kind === "objects" && last !== undefined) {
      const lastName = last.kind === "prefix" ? last.name : nameOf(last.entry);
      const [t, s] = readers.map((r) => asSide(r.resumePosition(lastName)));
      resume.sides = {
        ...(t === undefined ? {} : { target: t }),
        ...(s === undefined ? {} : { source: s }),
      };
    }
    return true;
  };
  try {
    for await (const group of merged) {
      if (items.length === query.maxKeys) return truncated();
      if (group.kind === "prefix") {
        items.push({ kind: "prefix", name: group.name });
        continue;
      }
      for (const entry of group.entries) {
        if (items.length === query.maxKeys) return truncated();
        items.push({ kind: "entry", entry });
      }
    }
    return false;
  } finally {
    input.signal.removeEventListener("abort", onAbort);
    for (const r of readers) r.close();
    controller.abort();
  }
}

/**
 * The entries of `key`'s chain (uploads or versions, merged by the operation's tie rule) after
 * `idMarker`: after its position when the chain holds it, otherwise those whose id sorts after
 * it (the upload or version was completed or deleted between pages).
 */
async function chainAfter(
  input: MergedListingInput,
  query: ListingQuery,
  kind: BackendListKind,
  key: string,
  idMarker: string,
): Promise<BackendEntry[]> {
  const chains = await Promise.all(
    [input.sides.target, input.sides.source].map((side) =>
      readChain(input, query, kind, side, key),
    ),
  );
  const [target, source] = chains as [BackendEntry[], BackendEntry[]];
  if (target.length > 0 && source.length > 0) input.metrics?.duplicatesFolded?.(1);
  const chain =
    TIE[kind] === "concatenate" ? [...target, ...source] : target.length > 0 ? target : source;
  const idOf = (e: BackendEntry): string =>
    e.type === "upload" ? e.uploadId : e.type === "version" ? e.versionId : "";
  const at = chain.findIndex((e) => idOf(e) === idMarker);
  if (at >= 0) return chain.slice(at + 1);
  return chain.filter((e) => compareKeys(idOf(e), idMarker) > 0);
}

async function readChain(
  input: MergedListingInput,
  query: ListingQuery,
  kind: BackendListKind,
  side: ListSide,
  key: string,
): Promise<BackendEntry[]> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(input.signal.reason);
  input.signal.addEventListener("abort", onAbort, { once: true });
  const reader = new SideReader({
    side,
    request: { kind, prefix: key, fetchOwner: query.fetchOwner },
    firstPageEntries: 1000,
    signal: controller.signal,
    ...(input.metrics === undefined ? {} : { metrics: input.metrics }),
  });
  const groups = sideGroups(reader, { prefix: key, skipFoldedKeys: false });
  try {
    // `key` is the smallest name under the prefix `key`: its chain, if any, comes first.
    const first = await groups.next();
    const group = first.done === true ? undefined : (first.value as MergedGroup);
    return group !== undefined && group.kind === "key" && group.name === key
      ? [...group.entries]
      : [];
  } finally {
    await groups.return(undefined);
    input.signal.removeEventListener("abort", onAbort);
    reader.close();
    controller.abort();
  }
}

function finishPage(
  input: MergedListingInput,
  query: ListingQuery,
  binding: TokenBinding,
  items: PageItem[],
  isTruncated: boolean,
  listing: string,
  sides: SidePositions | undefined,
): ListingPage {
  const page: ListingPage = { bucket: input.bucket, query, items, isTruncated };
  const last = items[items.length - 1];
  if (!isTruncated || last === undefined) return page;
  const lastName = last.kind === "prefix" ? last.name : nameOf(last.entry);
  switch (query.operation) {
    case "ListObjectsV2":
      return {
        ...page,
        nextContinuationToken: sealContinuationToken(
          input.tokenKey,
          binding,
          lastName,
          listing,
          sides,
        ),
      };
    case "ListObjects":
      // S3 returns NextMarker only with a delimiter; without one, clients page by the last key.
      return query.delimiter === undefined ? page : { ...page, nextMarker: lastName };
    case "ListMultipartUploads":
    case "ListObjectVersions": {
      const id =
        last.kind === "entry" && last.entry.type === "upload"
          ? last.entry.uploadId
          : last.kind === "entry" && last.entry.type === "version"
            ? last.entry.versionId
            : undefined;
      return { ...page, nextMarker: lastName, ...(id === undefined ? {} : { nextIdMarker: id }) };
    }
  }
}

function asSide(
  position: { startAfter?: string; continuationToken?: string } | undefined,
): SidePosition | undefined {
  if (position === undefined) return undefined;
  return {
    ...(position.startAfter === undefined ? {} : { startAfter: position.startAfter }),
    ...(position.continuationToken === undefined ? {} : { token: position.continuationToken }),
  };
}

function nameOf(entry: BackendEntry): string {
  return entry.type === "prefix" ? entry.prefix : entry.key;
}
