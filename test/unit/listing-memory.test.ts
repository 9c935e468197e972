// Memory of the merged listing does not grow with the bucket or with the keys folded into one
// CommonPrefix: synthetic backends generate keys on demand (nothing is held but the page being
// answered), the engine lists them, and the heap is measured after forced collections.
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import type {
  BackendEntry,
  BackendListPage,
  BackendListRequest,
  ListSide,
  ListingOperation,
} from "../../gateway/listing/listing-types.js";
import { compareKeys } from "../../s3/key-order.js";
import { sideGroups } from "../../gateway/listing/merge-entries.js";
import { SideReader } from "../../gateway/listing/side-reader.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/**
 * `count` keys `big/k0000000-x`, `big/k0000001-x`, ... (fixed width, so sorted by index) made
 * on demand, answering any start position at once (binary search over the index).
 */
class SyntheticSide implements ListSide {
  /** Heap after forced collections, every 100th page: what the listing holds mid-stream. */
  readonly liveMiB: number[] = [];
  requests = 0;
  constructor(
    readonly name: "target" | "source",
    private readonly count: number,
    private readonly options: { parity: 0 | 1 | "all"; jumps: true },
  ) {}

  private key(i: number): string {
    return `big/k${String(i).padStart(7, "0")}-x`;
  }

  private firstAfter(after: string | undefined): number {
    if (after === undefined) return 0;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(this.key(mid), after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async listPage(request: BackendListRequest): Promise<BackendListPage> {
    await Promise.resolve();
    this.requests++;
    let i = this.firstAfter(request.startAfter);
    const entries: BackendEntry[] = [];
    if (request.delimiter === "/" && request.prefix === "") {
      // Everything folds into one CommonPrefix.
      return request.startAfter !== undefined && compareKeys(request.startAfter, "big/") >= 0
        ? { entries: [], isTruncated: false }
        : { entries: [{ type: "prefix", prefix: "big/" }], isTruncated: false };
    }
    for (; i < this.count && entries.length < request.maxEntries; i++) {
      if (this.options.parity !== "all" && i % 2 !== this.options.parity) continue;
      entries.push({
        type: "object",
        key: this.key(i),
        lastModified: "2026-01-01T00:00:00.000Z",
        etag: '"e"',
        size: 1,
      });
    }
    if (this.requests % 100 === 0) this.liveMiB.push(heapMiB());
    return { entries, isTruncated: i < this.count };
  }
}

const tokenKey = randomBytes(32);

async function page(
  operation: ListingOperation,
  sides: { target: ListSide; source: ListSide },
  rawQuery: string,
): Promise<string> {
  const r = await mergedListing({
    operation,
    bucket: "b",
    rawQuery,
    sides,
    tokenKey,
    signal: new AbortController().signal,
  });
  return await text(r.body);
}

describe("merged listing memory", () => {
  it("jumps past a CommonPrefix of 1,000,000 keys (delimiter the backend cannot fold) after one page", async () => {
    const count = 1_000_000;
    const sides = {
      target: new SyntheticSide("target", count, { parity: 0, jumps: true }),
      source: new SyntheticSide("source", count, { parity: 1, jumps: true }),
    };
    const xml = await page("ListObjectsV2", sides, "list-type=2&prefix=big%2F&delimiter=k");
    expect(xml).toContain("<CommonPrefixes><Prefix>big/k</Prefix></CommonPrefixes>");
    expect(xml).toContain("<KeyCount>1</KeyCount>");
    expect(xml).toContain("<IsTruncated>false</IsTruncated>");
    // One page of 1,000 per side, then one request from past the prefix.
    expect(sides.target.requests).toBeLessThanOrEqual(3);
  }, 120_000);

  it("the roll-up streams 1,000,000 keys into one CommonPrefix in flat memory", async () => {
    const count = 1_000_000;
    const side = new SyntheticSide("target", count, { parity: "all", jumps: true });
    const reader = new SideReader({
      side,
      request: { kind: "objects", prefix: "big/", fetchOwner: false },
      firstPageEntries: 1000,
      signal: new AbortController().signal,
    });
    const before = heapMiB();
    const groups: string[] = [];
    // skipFoldedKeys false: the roll-up reads every key, as it must when a backend cannot seek.
    for await (const g of sideGroups(reader, {
      prefix: "big/",
      delimiter: "k",
      skipFoldedKeys: false,
    })) {
      groups.push(`${g.kind}:${g.name}`);
    }
    reader.close();
    const after = heapMiB();
    console.log(
      `1,000,000 keys rolled into one prefix: heap ${before.toFixed(1)} MiB before, ${after.toFixed(1)} after, ` +
        `live mid-stream every 100 pages ${side.liveMiB.map((m) => m.toFixed(1)).join(", ")}; ${side.requests} backend pages`,
    );
    expect(groups).toEqual(["prefix:big/k"]);
    expect(side.requests).toBe(1000);
    expect(after - before).toBeLessThan(8);
    // Holding the folded keys would take well over 100 MiB (1M strings and entries).
    expect(Math.max(...side.liveMiB) - before).toBeLessThan(8);
  }, 120_000);

  it("a full listing of 200,000 keys split over both sides, paged by tokens, keeps the heap flat", async () => {
    const count = 200_000;
    const sides = {
      target: new SyntheticSide("target", count, { parity: 0, jumps: true }),
      source: new SyntheticSide("source", count, { parity: 1, jumps: true }),
    };
    const samples: number[] = [];
    let token: string | undefined;
    let keys = 0;
    for (let pages = 0; ; pages++) {
      const q = `list-type=2${token === undefined ? "" : `&continuation-token=${encodeURIComponent(token)}`}`;
      const xml = await page("ListObjectsV2", sides, q);
      keys += (xml.match(/<Key>/g) ?? []).length;
      if (pages % 40 === 0) samples.push(heapMiB());
      const m = /<NextContinuationToken>([^<]+)</.exec(xml);
      if (m === null) break;
      token = m[1];
    }
    console.log(
      `full listing of 200,000 keys: heap at every 40th page ${samples.map((s) => s.toFixed(1)).join(", ")} MiB`,
    );
    expect(keys).toBe(count);
    expect(Math.max(...samples) - (samples[0] as number)).toBeLessThan(8);
  }, 120_000);

  it("a delimiter listing of 200,000 CommonPrefixes (one per key) keeps the heap flat", async () => {
    const count = 200_000;
    const sides = {
      target: new SyntheticSide("target", count, { parity: "all", jumps: true }),
      source: new SyntheticSide("source", count, { parity: 1, jumps: true }),
    };
    const samples: number[] = [];
    let marker: string | undefined;
    let prefixes = 0;
    for (let pages = 0; ; pages++) {
      const q = `prefix=big%2F&delimiter=-${marker === undefined ? "" : `&marker=${encodeURIComponent(marker)}`}`;
      const xml = await page("ListObjects", sides, q);
      prefixes += (xml.match(/<CommonPrefixes>/g) ?? []).length;
      if (pages % 40 === 0) samples.push(heapMiB());
      const m = /<NextMarker>([^<]+)</.exec(xml);
      if (m === null) break;
      marker = m[1];
    }
    console.log(
      `200,000 CommonPrefixes: heap at every 40th page ${samples.map((s) => s.toFixed(1)).join(", ")} MiB`,
    );
    expect(prefixes).toBe(count);
    expect(Math.max(...samples) - (samples[0] as number)).toBeLessThan(8);
  }, 120_000);
});
