/**
 * Backend pages carried from one page of a merged listing to the next. A page of a merged
 * listing uses only part of each side's backend page (half of each when the keys are split
 * 50/50), and the side's read-ahead page is still in flight when the client's page is full.
 * Without this, the next client page asks both backends again from its position, and a full
 * listing costs the backends two to four times what a direct listing costs. With it, a page
 * that ends truncated *parks* each side's useful pages (the one holding its last name and the
 * read-ahead) under the listing's continuation; the request for the next page *resumes* them,
 * and every backend entry is fetched once per listing.
 *
 * What is served from parked pages (docs/listing.md, "Pages carried between pages"):
 * - only object listings (ListObjectsV2, ListObjects), only to the request that continues the
 *   same listing: ListObjectsV2 tokens carry a random listing id, so a parked page is only
 *   used by the listing that fetched it; a v1 listing continues by its marker, so two identical
 *   v1 listings running at the same time may take each other's pages. A listing's first page
 *   always asks both backends, so a listing started after a write sees it;
 * - never a page of a bucket fetched before a write to that bucket through this gateway (a
 *   per-bucket generation; migration writes do not count: a copied key lists the same);
 * - never a page older than `ttlMs`.
 * So a key written through another gateway of the fleet while a listing is in progress may be
 * missed by that listing's later pages for up to `ttlMs`; a key that exists unchanged through
 * the whole listing is listed exactly once either way.
 *
 * Memory: at most `maxEntries` backend entries parked (pages in flight count as full pages),
 * the least recently parked listings dropped first.
 */
import { compareKeys } from "../../s3/key-order.js";
import type {
  BackendEntry,
  BackendListPage,
  BackendListRequest,
  ListSide,
  SideName,
} from "./listing-types.js";

/** Sizing of a {@link ListingPageCache}. */
export interface ListingPageCacheOptions {
  /** The most backend entries parked (a page in flight counts as its requested size). 0: off. */
  readonly maxEntries: number;
  /** How long after its fetch a page may be served. */
  readonly ttlMs: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

/** One side of one migrate-mode bucket, as the cache tells them apart. */
export interface PageCacheScope {
  /** The client-facing bucket (writes to it invalidate its pages). */
  readonly bucket: string;
  readonly side: SideName;
  /** Where that side's bucket is (endpoint, bucket, credential). */
  readonly backend: string;
}

/** One request's view of one side: a {@link ListSide} that can resume and park pages. */
export interface CarriedSide extends ListSide {
  /** Takes the pages parked under `continuation` (once); later requests may be served from them. */
  resume(continuation: string): void;
  /** Parks the pages still useful after `lastName` under `continuation` for the next request. */
  park(continuation: string, lastName: string): void;
  /** The request is over: backend pages in flight that were not parked are aborted. */
  finish(): void;
}

interface CachedPage {
  /** Prefix, delimiter and owner flag of the request. */
  readonly shape: string;
  readonly startAfter: string | undefined;
  /** The backend's token it was fetched by, if any. */
  readonly token: string | undefined;
  readonly generation: number;
  readonly fetchedAt: number;
  readonly promise: Promise<BackendListPage>;
  readonly controller: AbortController;
  /** Set once the backend answered. */
  page: BackendListPage | undefined;
  failed: boolean;
  /** The entries it counts for while parked. */
  readonly requested: number;
}

interface Parked {
  readonly bucket: string;
  readonly pages: readonly CachedPage[];
  readonly weight: number;
}

/** How long a backend page fetched for later pages may take. */
const FETCH_TIMEOUT_MS = 120_000;

/** The backend pages a gateway process carries between the pages of merged listings. */
export class ListingPageCache {
  /** Parked pages by `side scope \n continuation`, least recently parked first. */
  private readonly parked = new Map<string, Parked>();
  private readonly generations = new Map<string, number>();
  private weight = 0;
  private readonly now: () => number;

  constructor(private readonly options: ListingPageCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The entries parked now (pages in flight counted at their requested size). */
  get entries(): number {
    return this.weight;
  }

  /** Forgets every page of `bucket` fetched so far: a write to it changed what it lists. */
  invalidate(bucket: string): void {
    // Only buckets with merged listings have a generation (the map does not grow with every
    // bucket written through the gateway).
    const generation = this.generations.get(bucket);
    if (generation === undefined) return;
    this.generations.set(bucket, generation + 1);
    for (const [id, parked] of this.parked) {
      if (parked.bucket === bucket) this.unpark(id, parked);
    }
  }

  /** `inner` for one request, serving and parking object listing pages through this cache. */
  side(scope: PageCacheScope, inner: ListSide): CarriedSide {
    return new RequestSide(this, scope, inner);
  }

  /** @internal */
  generation(bucket: string): number {
    const generation = this.generations.get(bucket);
    if (generation !== undefined) return generation;
    this.generations.set(bucket, 0);
    return 0;
  }

  /** @internal Whether `page` may still be served. */
  fresh(bucket: string, page: CachedPage): boolean {
    return (
      !page.failed &&
      page.generation === this.generation(bucket) &&
      this.now() - page.fetchedAt <= this.options.ttlMs
    );
  }

  /** @internal */
  clock(): number {
    return this.now();
  }

  /** @internal */
  take(id: string): readonly CachedPage[] {
    const parked = this.parked.get(id);
    if (parked === undefined) return [];
    this.unpark(id, parked);
    return parked.pages;
  }

  /** @internal */
  put(id: string, bucket: string, pages: readonly CachedPage[]): void {
    if (this.options.maxEntries === 0 || pages.length === 0) return;
    const previous = this.parked.get(id);
    if (previous !== undefined) this.unpark(id, previous);
    const weight = pages.reduce((sum, p) => sum + (p.page?.entries.length ?? p.requested), 0);
    if (weight > this.options.maxEntries) return;
    this.parked.set(id, { bucket, pages, weight });
    this.weight += weight;
    for (const [oldest, parked] of this.parked) {
      if (this.weight <= this.options.maxEntries) break;
      this.unpark(oldest, parked);
      for (const p of parked.pages) if (p.page === undefined) p.controller.abort();
    }
  }

  private unpark(id: string, parked: Parked): void {
    if (this.parked.get(id) !== parked) return;
    this.parked.delete(id);
    this.weight -= parked.weight;
  }
}

class RequestSide implements CarriedSide {
  readonly name: SideName;
  /** Pages taken by resume, and pages fetched by this request. */
  private readonly carried: CachedPage[] = [];
  private readonly fetched: CachedPage[] = [];
  private readonly parkedPages = new Set<CachedPage>();

  constructor(
    private readonly cache: ListingPageCache,
    private readonly scope: PageCacheScope,
    private readonly inner: ListSide,
  ) {
    this.name = inner.name;
  }

  private id(continuation: string): string {
    const { bucket, side, backend } = this.scope;
    return `${bucket}\n${side}\n${backend}\n${continuation}`;
  }

  resume(continuation: string): void {
    for (const page of this.cache.take(this.id(continuation))) {
      if (this.cache.fresh(this.scope.bucket, page)) this.carried.push(page);
      else if (page.page === undefined) page.controller.abort();
    }
  }

  park(continuation: string, lastName: string): void {
    const useful = [...this.carried, ...this.fetched].filter((p) => {
      if (!this.cache.fresh(this.scope.bucket, p)) return false;
      if (p.page === undefined) return true;
      // A complete page is useful while it holds names after the position, or ends the listing.
      const last = p.page.entries[p.page.entries.length - 1];
      return !p.page.isTruncated || (last !== undefined && compareKeys(nameOf(last), lastName) > 0);
    });
    for (const p of useful) this.parkedPages.add(p);
    this.cache.put(this.id(continuation), this.scope.bucket, useful);
  }

  finish(): void {
    for (const p of [...this.carried, ...this.fetched]) {
      if (p.page === undefined && !this.parkedPages.has(p)) p.controller.abort();
    }
  }

  listPage(request: BackendListRequest, signal: AbortSignal): Promise<BackendListPage> {
    // Only full pages of plain object listings: their position is the last entry's name.
    if (
      request.kind !== "objects" ||
      request.idMarker !== undefined ||
      request.maxEntries !== 1000
    ) {
      return this.inner.listPage(request, signal);
    }
    const shape = `${request.prefix}\n${request.delimiter ?? ""}\n${request.fetchOwner}`;
    const hit = this.lookup(shape, request.startAfter, request.continuationToken);
    if (hit !== undefined) {
      // A carried page that fails is fetched again: the previous request's read-ahead must not
      // fail this one.
      return withSignal(
        hit.catch(() => this.fetch(shape, request).promise),
        signal,
      );
    }
    return withSignal(this.fetch(shape, request).promise, signal);
  }

  /** A page of this shape starting at `startAfter`, or a complete one that covers it, trimmed. */
  private lookup(
    shape: string,
    startAfter: string | undefined,
    token: string | undefined,
  ): Promise<BackendListPage> | undefined {
    const candidates = [...this.carried, ...this.fetched].filter(
      (p) => p.shape === shape && this.cache.fresh(this.scope.bucket, p),
    );
    // A page after the same position; one fetched by the backend's token serves a request by
    // position too (it is the better answer: the token resumes exactly).
    const exact =
      candidates.find((p) => p.startAfter === startAfter && p.token !== undefined) ??
      candidates.find((p) => p.startAfter === startAfter && p.token === token);
    if (exact !== undefined) {
      // This request's own fetch (the floor of a roll-up asked again) is not a reuse.
      return this.fetched.includes(exact)
        ? exact.promise
        : exact.promise.then((page) => ({ ...page, reused: true }));
    }
    // A request by the backend's token is for that backend page only.
    if (startAfter === undefined || token !== undefined) return undefined;
    for (const p of candidates) {
      if (p.page === undefined) continue;
      if (p.startAfter !== undefined && compareKeys(p.startAfter, startAfter) >= 0) continue;
      const entries = p.page.entries;
      const last = entries[entries.length - 1];
      if (
        p.page.isTruncated &&
        (last === undefined || compareKeys(nameOf(last), startAfter) <= 0)
      ) {
        continue;
      }
      return Promise.resolve({ ...trimmed(p.page, startAfter), reused: true });
    }
    return undefined;
  }

  private fetch(shape: string, request: BackendListRequest): CachedPage {
    const controller = new AbortController();
    // The page may outlive this request (the next client page may use it): it is aborted when
    // nobody parked it, or bounded in time (the backend has its own timeouts too).
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]);
    const promise = this.inner.listPage(request, signal);
    const cached: CachedPage = {
      shape,
      startAfter: request.startAfter,
      token: request.continuationToken,
      generation: this.cache.generation(this.scope.bucket),
      fetchedAt: this.cache.clock(),
      promise,
      controller,
      page: undefined,
      failed: false,
      requested: request.maxEntries,
    };
    promise.then(
      (page) => {
        cached.page = page;
      },
      () => {
        cached.failed = true;
      },
    );
    this.fetched.push(cached);
    return cached;
  }
}

function nameOf(entry: BackendEntry): string {
  return entry.type === "prefix" ? entry.prefix : entry.key;
}

/** The page as the backend would answer it from `startAfter`: the entries after it. */
function trimmed(page: BackendListPage, startAfter: string): BackendListPage {
  const entries = page.entries;
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(nameOf(entries[mid] as BackendEntry), startAfter) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return { ...page, entries: entries.slice(lo) };
}

/** `promise`, or a rejection as soon as `signal` aborts (a shared fetch goes on). */
function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

/** The carry of a merged listing over its request sides (merged-listing.ts `carry`). */
export function carryAcross(sides: readonly CarriedSide[]): {
  resume(continuation: string): void;
  park(continuation: string, lastName: string): void;
  finish(): void;
} {
  return {
    resume: (continuation) => {
      for (const s of sides) s.resume(continuation);
    },
    park: (continuation, lastName) => {
      for (const s of sides) s.park(continuation, lastName);
    },
    finish: () => {
      for (const s of sides) s.finish();
    },
  };
}
