/**
 * Reads one side of a merged listing entry by entry, paging its backend with a read-ahead of
 * one page: once half of a truncated page has been consumed, the request for the next one is
 * sent, so the two sides' round trips overlap with each other and with the merge, and a short
 * client page does not cost a second backend request. Memory: the current page and at most one
 * page in flight.
 *
 * It also refuses the backend fault that would make a listing endless: a truncated page that
 * does not move the position. (Order is checked after roll-up, in merge-entries.ts, because a
 * backend's CommonPrefixes are folded again first.)
 */
import { compareKeys } from "../../s3/key-order.js";
import type {
  BackendEntry,
  BackendListPage,
  BackendListRequest,
  ListSide,
  ListingMetrics,
} from "./listing-types.js";

/** A backend answered something a correct listing cannot be built from. */
export class BackendListingFault extends Error {
  constructor(
    /** The side at fault. */
    readonly side: string,
    message: string,
  ) {
    super(`${side}: ${message}`);
    this.name = "BackendListingFault";
  }
}

/** The name an entry sorts by: its key, or the CommonPrefix. */
export function entryName(entry: BackendEntry): string {
  return entry.type === "prefix" ? entry.prefix : entry.key;
}

/** What a {@link SideReader} pages through. */
export interface SideReaderOptions {
  /** The backend. */
  readonly side: ListSide;
  /** The request of every page, without its position and size. */
  readonly request: Omit<BackendListRequest, "startAfter" | "idMarker" | "maxEntries">;
  /** The exclusive start position (already normalised into the prefix's range). */
  readonly startAfter?: string;
  /** The backend's own token for `startAfter` (a position a continuation token carried). */
  readonly startToken?: string;
  /** Entries asked in the first page (1..1000); later pages ask 1,000. */
  readonly firstPageEntries: number;
  /**
   * Ask for the next page as soon as a page arrives, not once half of it is consumed: for long
   * client pages of object listings, whose read-ahead is parked for the next client page
   * (page-cache.ts), so the backend's next page overlaps this page's merge, answer and the
   * client's next request.
   */
  readonly eagerReadAhead?: boolean;
  /** Aborts the requests in flight (the listing is done or the client went away). */
  readonly signal: AbortSignal;
  /** Counters. */
  readonly metrics?: ListingMetrics;
}

/** Where a backend page starts. */
export interface Position {
  startAfter?: string;
  idMarker?: string;
  /** The backend's own token for `startAfter` (objects). */
  continuationToken?: string;
}

/** How many of the last pages' positions a reader remembers (see resumePosition). */
const HISTORY = 3;

/** One side's entries, in order, fetched page by page with one page of read-ahead. */
export class SideReader {
  private page: readonly BackendEntry[] = [];
  private index = 0;
  private pending: { position: Position; promise: Promise<BackendListPage> } | undefined;
  private floor: string | undefined;
  /** The position of the next page, until its request is sent. */
  private upcoming: Position | undefined;
  /** The positions of the last pages accepted, oldest first. */
  private readonly history: Position[] = [];
  private readonly controller = new AbortController();
  private readonly onAbort = (): void => this.controller.abort();

  constructor(private readonly options: SideReaderOptions) {
    if (options.signal.aborted) this.controller.abort();
    else options.signal.addEventListener("abort", this.onAbort, { once: true });
    const first: Position = {};
    if (options.startAfter !== undefined) first.startAfter = options.startAfter;
    if (options.startToken !== undefined) first.continuationToken = options.startToken;
    this.fetch(first, options.firstPageEntries);
  }

  /** The side's name, for errors and metrics. */
  get name(): string {
    return this.options.side.name;
  }

  /**
   * Tells the reader that nothing up to `bound` (inclusive) is needed any more: when the
   * current page runs out and the page in flight starts below `bound`, it is abandoned and the
   * backend asked from `bound` instead. This is how a roll-up by a delimiter the backend does
   * not fold jumps past a CommonPrefix holding many keys instead of reading them all.
   */
  skipThrough(bound: string): void {
    if (this.floor === undefined || compareKeys(bound, this.floor) > 0) this.floor = bound;
  }

  /** The next entry, or undefined at the end of the side's listing. */
  async next(): Promise<BackendEntry | undefined> {
    for (;;) {
      const entry = this.page[this.index];
      if (entry !== undefined) {
        this.index++;
        // Read-ahead: once half of the page is consumed, the next one is asked for. A short
        // client page (max-keys 5 of a 1,000-entry backend page) then costs no second request.
        if (
          this.upcoming !== undefined &&
          (this.options.eagerReadAhead === true || this.index * 2 >= this.page.length)
        ) {
          this.sendUpcoming();
        }
        return entry;
      }
      if (this.upcoming !== undefined) this.sendUpcoming();
      if (this.pending === undefined) return undefined;
      let { position, promise } = this.pending;
      if (
        this.floor !== undefined &&
        (position.startAfter === undefined || compareKeys(position.startAfter, this.floor) < 0)
      ) {
        // The page in flight would only hold entries the merge is going to skip.
        promise.catch(() => undefined);
        position = { startAfter: this.floor };
        this.fetch(position, 1000);
        promise = (this.pending as { promise: Promise<BackendListPage> }).promise;
      }
      this.pending = undefined;
      const page = await promise;
      this.accept(page, position);
    }
  }

  /**
   * A position from which this side can be read again to reach every entry after `after` (the
   * last name of a client page): the newest page it read that starts at or before `after`,
   * when that page was asked for by the backend's own token or from the start (a position the
   * backend answers exactly; docs/listing.md, "Backend faults"); otherwise undefined, and the
   * next page asks from `after` itself. A continuation token carries it to any gateway.
   */
  resumePosition(after: string): Position | undefined {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const p = this.history[i] as Position;
      if (p.startAfter !== undefined && compareKeys(p.startAfter, after) > 0) continue;
      if (p.idMarker !== undefined) return undefined;
      return p.continuationToken !== undefined || p.startAfter === undefined ? p : undefined;
    }
    return undefined;
  }

  /** Aborts the page in flight; the reader must not be used afterwards. */
  close(): void {
    this.options.signal.removeEventListener("abort", this.onAbort);
    this.pending?.promise.catch(() => undefined);
    this.pending = undefined;
    this.controller.abort();
  }

  private sendUpcoming(): void {
    let position = this.upcoming as Position;
    this.upcoming = undefined;
    if (
      this.floor !== undefined &&
      (position.startAfter === undefined || compareKeys(position.startAfter, this.floor) < 0)
    ) {
      position = { startAfter: this.floor };
    }
    this.fetch(position, 1000);
  }

  private fetch(position: Position, maxEntries: number): void {
    const request: BackendListRequest = { ...this.options.request, ...position, maxEntries };
    const promise = this.options.side.listPage(request, this.controller.signal);
    // Read-ahead may be abandoned (the page is complete): its failure is then nobody's concern.
    promise.catch(() => undefined);
    this.pending = { position, promise };
  }

  private accept(page: BackendListPage, position: Position): void {
    const side = this.options.side.name;
    if (page.reused === true) {
      this.options.metrics?.pageReused?.(side);
    } else {
      this.options.metrics?.pageFetched?.(side);
      this.options.metrics?.entriesRead?.(side, page.entries.length);
    }
    this.page = page.entries;
    this.index = 0;
    this.history.push(position);
    if (this.history.length > HISTORY) this.history.shift();
    if (!page.isTruncated) return;
    const next = nextPosition(page);
    if (
      next === undefined ||
      (next.startAfter === position.startAfter && next.idMarker === position.idMarker) ||
      (position.startAfter !== undefined &&
        compareKeys(next.startAfter as string, position.startAfter) < 0)
    ) {
      throw new BackendListingFault(side, "the backend's listing page did not advance");
    }
    this.upcoming = next;
  }
}

function nextPosition(page: BackendListPage): Position | undefined {
  const last = page.entries[page.entries.length - 1];
  if (page.next !== undefined && page.next.key !== "") {
    const p: Position = { startAfter: page.next.key };
    // A backend's own id marker is only meaningful when it resumes inside the chain of the last
    // key; after a CommonPrefix it is dropped.
    if (page.next.id !== undefined && page.next.id !== "" && last?.type !== "prefix") {
      p.idMarker = page.next.id;
    }
    return p;
  }
  if (last === undefined) return undefined;
  switch (last.type) {
    case "object":
    case "prefix":
      // Resumed by the backend's own token where it gave one (listing-types.ts).
      return page.nextToken === undefined
        ? { startAfter: entryName(last) }
        : { startAfter: entryName(last), continuationToken: page.nextToken };
    case "upload":
      return { startAfter: last.key, idMarker: last.uploadId };
    case "version":
      return { startAfter: last.key, idMarker: last.versionId };
  }
}
