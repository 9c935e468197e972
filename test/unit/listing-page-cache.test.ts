// Backend pages carried between the pages of a merged listing (gateway/listing/page-cache.ts):
// the listings stay exact (the seeded model over in-memory backends), each backend entry is
// fetched once per listing, and pages are never served to another listing, after a write
// through the gateway, past their time, or beyond the memory bound.
// Replay a run with LISTING_SEED=<seed> (printed at the start).
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import { ListingPageCache, carryAcross } from "../../gateway/listing/page-cache.js";
import type {
  BackendListPage,
  BackendListRequest,
  ListSide,
  ListingOperation,
} from "../../gateway/listing/listing-types.js";
import {
  MemoryListSide,
  Rng,
  byteOrder,
  checkCase,
  fitPages,
  generateCase,
  generateKeySet,
  listingSeed,
  type MemorySideFaults,
} from "../helpers/listing-model.js";

const seed = listingSeed();
console.log(`listing page cache unit: LISTING_SEED=${seed}`);
const tokenKey = randomBytes(32);

/** A backend that counts the entries it answered. */
class Counted implements ListSide {
  entries = 0;
  pages = 0;
  constructor(private readonly inner: ListSide) {}
  get name(): "target" | "source" {
    return this.inner.name;
  }
  async listPage(request: BackendListRequest, signal: AbortSignal): Promise<BackendListPage> {
    const page = await this.inner.listPage(request, signal);
    this.pages++;
    this.entries += page.entries.length;
    return page;
  }
}

interface Lab {
  cache: ListingPageCache;
  target: Counted;
  source: Counted;
  /** One client request: the engine over request sides of the cache, as merge-list.ts does. */
  list(operation: ListingOperation, rawQuery: string): Promise<string>;
}

function lab(
  target: ListSide,
  source: ListSide,
  options: { maxEntries?: number; ttlMs?: number; now?: () => number } = {},
): Lab {
  const cache = new ListingPageCache({
    maxEntries: options.maxEntries ?? 64_000,
    ttlMs: options.ttlMs ?? 10_000,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const t = new Counted(target);
  const s = new Counted(source);
  return {
    cache,
    target: t,
    source: s,
    async list(operation, rawQuery) {
      const sides = {
        target: cache.side({ bucket: "b", side: "target", backend: "t" }, t),
        source: cache.side({ bucket: "b", side: "source", backend: "s" }, s),
      };
      const r = await mergedListing({
        operation,
        bucket: "b",
        rawQuery,
        sides,
        tokenKey,
        signal: new AbortController().signal,
        carry: carryAcross([sides.target, sides.source]),
      });
      return await text(r.body);
    },
  };
}

function keys(n: number, name: (i: number) => string): Map<string, number> {
  return new Map(Array.from({ length: n }, (_, i) => [name(i), 1]));
}

const nextToken = (xml: string): string | undefined =>
  /<NextContinuationToken>([^<]*)</.exec(xml)?.[1];
const keysOf = (xml: string): string[] =>
  [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1] as string);

/** Pages a ListObjectsV2 listing to the end; the keys. */
async function listV2(l: Lab, query = "max-keys=1000"): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  for (;;) {
    const xml = await l.list(
      "ListObjectsV2",
      token === undefined ? query : `${query}&continuation-token=${encodeURIComponent(token)}`,
    );
    out.push(...keysOf(xml));
    token = nextToken(xml);
    if (token === undefined) return out;
  }
}

describe("backend pages carried between the pages of a merged listing", () => {
  it("random key sets and queries paged through the cache equal the model of the union", async () => {
    const rng = new Rng(seed);
    for (let round = 0; round < 3; round++) {
      // Large enough that backends page (1,000 entries a page) many times.
      const split = generateKeySet(rng, { size: 2500, bulk: 1500 + rng.int(1500) });
      const t = new Map<string, number>();
      const s = new Map<string, number>();
      for (const k of split.both) {
        t.set(k, 2);
        s.set(k, 5);
      }
      for (const k of split.targetOnly) t.set(k, 2);
      for (const k of split.sourceOnly) s.set(k, 5);
      const union = [...t.keys(), ...split.sourceOnly].sort(byteOrder);
      const l = lab(new MemoryListSide("target", t), new MemoryListSide("source", s));
      const sizeOf = (k: string): number => (t.has(k) ? 2 : 5);
      for (const operation of ["ListObjectsV2", "ListObjects"] as const) {
        for (let i = 0; i < 30; i++) {
          const c = fitPages(generateCase(rng, operation, union), union, undefined, 40);
          await checkCase(c, union, { sizeOf }, (q) => l.list(operation, q));
        }
      }
      expect(l.cache.entries).toBeLessThanOrEqual(64_000);
    }
  });

  for (const [name, onTarget] of [
    ["50/50", (i: number) => i % 2 === 0],
    ["99/1", (i: number) => i % 100 !== 0],
  ] as const) {
    it(`a full listing split ${name} fetches each backend entry once (plus one read-ahead page)`, async () => {
      const n = 20_000;
      const name = (i: number): string => `d${i % 7}/k${String(i).padStart(6, "0")}`;
      const all = keys(n, name);
      const t = new Map([...all].filter((_, i) => onTarget(i)));
      const s = new Map([...all].filter((_, i) => !onTarget(i)));
      const l = lab(new MemoryListSide("target", t), new MemoryListSide("source", s));
      const listed = await listV2(l);
      expect(listed).toEqual([...all.keys()].sort(byteOrder));
      // Without the cache, a 50/50 listing reads about four backend entries per key listed.
      expect(l.target.entries).toBeLessThanOrEqual(t.size + 1000);
      expect(l.source.entries).toBeLessThanOrEqual(s.size + 1000);
    });
  }

  it("a second listing gets none of the first listing's pages", async () => {
    const all = keys(6000, (i) => `k${String(i).padStart(5, "0")}`);
    const t = new Map([...all].filter((_, i) => i % 2 === 0));
    const s = new Map([...all].filter((_, i) => i % 2 === 1));
    const l = lab(new MemoryListSide("target", t), new MemoryListSide("source", s));
    await listV2(l);
    const first = l.target.entries + l.source.entries;
    await listV2(l);
    // The same backend work again: nothing of the first listing was reused.
    expect(l.target.entries + l.source.entries).toBeGreaterThanOrEqual(2 * first - 2000);
    expect(first).toBeLessThanOrEqual(6000 + 2000);
  });

  it("a write through the gateway between pages is seen by the next page", async () => {
    const before = keys(3000, (i) => `k${String(i * 2).padStart(5, "0")}`);
    const cache = new ListingPageCache({ maxEntries: 64_000, ttlMs: 10_000 });
    const pageOf = async (
      target: Map<string, number>,
      query: string,
    ): Promise<{ xml: string; fetched: number }> => {
      const t = new Counted(new MemoryListSide("target", target));
      const s = new Counted(new MemoryListSide("source", new Map()));
      const sides = {
        target: cache.side({ bucket: "b", side: "target", backend: "t" }, t),
        source: cache.side({ bucket: "b", side: "source", backend: "s" }, s),
      };
      const r = await mergedListing({
        operation: "ListObjectsV2",
        bucket: "b",
        rawQuery: query,
        sides,
        tokenKey,
        signal: new AbortController().signal,
        carry: carryAcross([sides.target, sides.source]),
      });
      return { xml: await text(r.body), fetched: t.pages };
    };
    const page1 = await pageOf(before, "max-keys=100");
    const token = encodeURIComponent(nextToken(page1.xml) as string);
    const last = keysOf(page1.xml).at(-1) as string;
    // A key right after the page's end, written after the page was answered.
    const written = `${last}x`;
    const after = new Map([...before, [written, 1]]);
    // Without a write, the next page comes from the pages parked (the new key unseen).
    const again = await pageOf(after, `max-keys=100&continuation-token=${token}`);
    expect(again.fetched).toBe(0);
    expect(keysOf(again.xml)).not.toContain(written);
    // The page is parked again under the same continuation; a write to the bucket voids it.
    cache.invalidate("b");
    const page2 = await pageOf(after, `max-keys=100&continuation-token=${token}`);
    expect(page2.fetched).toBeGreaterThan(0);
    expect(keysOf(page2.xml)[0]).toBe(written);
    // Another bucket's write does not void this one's pages.
    const page3Token = encodeURIComponent(nextToken(page2.xml) as string);
    cache.invalidate("other");
    const page3 = await pageOf(after, `max-keys=100&continuation-token=${page3Token}`);
    expect(page3.fetched).toBe(0);
  });

  it("a page older than the time limit is fetched again", async () => {
    let now = 1_000_000;
    const all = keys(3000, (i) => `k${String(i).padStart(5, "0")}`);
    const l = lab(new MemoryListSide("target", all), new MemoryListSide("source", new Map()), {
      ttlMs: 5_000,
      now: () => now,
    });
    const first = await l.list("ListObjectsV2", "max-keys=10");
    const token = encodeURIComponent(nextToken(first) as string);
    const pages = l.target.pages;
    now += 4_000;
    const second = await l.list("ListObjectsV2", `max-keys=10&continuation-token=${token}`);
    expect(l.target.pages).toBe(pages);
    now += 1_001;
    const token2 = encodeURIComponent(nextToken(second) as string);
    await l.list("ListObjectsV2", `max-keys=10&continuation-token=${token2}`);
    expect(l.target.pages).toBe(pages + 1);
  });

  it("v1 listings continue by their marker", async () => {
    const all = keys(5000, (i) => `k${String(i).padStart(5, "0")}`);
    const t = new Map([...all].filter((_, i) => i % 2 === 0));
    const s = new Map([...all].filter((_, i) => i % 2 === 1));
    const l = lab(new MemoryListSide("target", t), new MemoryListSide("source", s));
    const out: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const xml = await l.list(
        "ListObjects",
        marker === undefined
          ? "max-keys=1000"
          : `max-keys=1000&marker=${encodeURIComponent(marker)}`,
      );
      const page = keysOf(xml);
      out.push(...page);
      if (!xml.includes("<IsTruncated>true</IsTruncated>")) break;
      marker = page.at(-1);
    }
    expect(out).toEqual([...all.keys()].sort(byteOrder));
    expect(l.target.entries).toBeLessThanOrEqual(t.size + 1000);
    expect(l.source.entries).toBeLessThanOrEqual(s.size + 1000);
  });

  it("memory stays within maxEntries however many listings are parked", async () => {
    const all = keys(4000, (i) => `k${String(i).padStart(5, "0")}`);
    const l = lab(new MemoryListSide("target", all), new MemoryListSide("source", all), {
      maxEntries: 10_000,
    });
    const tokens: string[] = [];
    for (let i = 0; i < 40; i++) {
      tokens.push(nextToken(await l.list("ListObjectsV2", "max-keys=500")) as string);
      expect(l.cache.entries).toBeLessThanOrEqual(10_000);
    }
    // The oldest listings' pages were dropped; they continue exactly, from the backends.
    const pages = l.target.pages;
    const xml = await l.list(
      "ListObjectsV2",
      `max-keys=500&continuation-token=${encodeURIComponent(tokens[0] as string)}`,
    );
    expect(keysOf(xml)[0]).toBe("k00500");
    expect(l.target.pages).toBeGreaterThan(pages);
  });

  it("a parked read-ahead that fails is fetched again: the next page still answers", async () => {
    const all = keys(5000, (i) => `k${String(i).padStart(5, "0")}`);
    const faults: MemorySideFaults = { failRequest: 2 };
    const l = lab(
      new MemoryListSide("target", all, faults),
      new MemoryListSide("source", new Map()),
    );
    // Page 1 (600 keys) sends the read-ahead (the target's second request), which fails.
    const first = await l.list("ListObjectsV2", "max-keys=600");
    const token = encodeURIComponent(nextToken(first) as string);
    const second = await l.list("ListObjectsV2", `max-keys=600&continuation-token=${token}`);
    expect(keysOf(second)).toHaveLength(600);
    expect(keysOf(second)[0]).toBe("k00600");
  });
});
