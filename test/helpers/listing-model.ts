/**
 * The listing model: random key sets for two buckets, random listing queries, the listing S3
 * defines for the union of the two buckets, and a checker that pages a listing to its end and
 * compares every page with the model. The checker only needs "answer this raw query with an
 * XML document", so the same cases run against the engine directly (test/integration/
 * listing-model.test.ts), and later against the gateway.
 *
 * The model is written independently of the engine: plain arrays, Buffer.compare for order.
 */
import { uriEncode } from "../../s3/uri-encode.js";
import {
  parseListBucketResultV1,
  parseListBucketResultV2,
  parseListMultipartUploadsResult,
  s3UrlDecode,
  s3UrlEncode,
} from "../../s3/xml.js";
import { parseListVersionsResult } from "../../s3/xml-list-versions.js";

/** A small seeded PRNG (mulberry32): every case is reproducible from the seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One element. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/** The seed of a run: `LISTING_SEED` to replay one, else a fresh one (print it). */
export function listingSeed(): number {
  const env = process.env["LISTING_SEED"];
  if (env !== undefined && env !== "") return Number(env) >>> 0;
  return (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
}

/** UTF-8 byte order, computed independently of s3/key-order.ts. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// Characters that stress the listing: around "/" in byte order ("!", "+", "-", ".", "0"),
// the ones encoding-type=url treats specially ("+", "%", " "), NFC and NFD of "é", a
// BMP character above the surrogates (U+FF21) and an astral one (UTF-16 and UTF-8 orders differ).
const SEGMENT_CHARS = [
  "a",
  "b",
  "k",
  "z",
  "0",
  "!",
  "+",
  "%",
  " ",
  "-",
  "~",
  "\u00e9",
  "e\u0301",
  "\uff21",
  "\u{1f600}",
  "\u4e2d",
];

/** A 1,024-byte key: 250-byte segments (a POSIX name holds at most 255 bytes). */
export const LONG_KEY = ("\u00e9".repeat(100) + "x".repeat(49) + "/").repeat(4) + "y".repeat(24);

function segment(rng: Rng): string {
  let s = rng.pick(["a", "b", "k", "z", "0", "\u00e9", "\uff21"]);
  const n = rng.int(4);
  for (let i = 0; i < n; i++) s += rng.pick(SEGMENT_CHARS);
  // POSIX-backed servers trim nothing, but keep names from ending in a space or starting with
  // a dot (hidden files, versitygw's temp dirs).
  return s.endsWith(" ") ? s + "a" : s;
}

/** The keys of a two-bucket listing test, split by where they live. */
export interface KeySplit {
  /** On both sides (the target's copy wins). */
  readonly both: string[];
  readonly targetOnly: string[];
  readonly sourceOnly: string[];
}

/**
 * A random key set of about `size` keys (plus `bulk` keys under one prefix), valid on MinIO and
 * on a POSIX-backed versitygw: no key is also a "directory" of another key (`a` and `a/b`), no
 * empty segments. Deep and shallow keys, keys around "/" and "!", NFC/NFD pairs, a 1,024-byte key.
 */
export function generateKeySet(rng: Rng, options: { size: number; bulk: number }): KeySplit {
  const keys = new Set<string>();
  const add = (k: string): void => {
    keys.add(k);
  };
  add(LONG_KEY);
  add("caf\u00e9");
  add("cafe\u0301");
  add("sp ace");
  add("plus+sign");
  add("pct%20");
  add("pct%");
  add("x!y");
  add("x.y");
  add("x-y");
  add("x0");
  add("x/y");
  add("\u{1f600}");
  add("\uff21");
  for (let i = 0; i < options.bulk; i++) add(`bulk/k${String(i).padStart(5, "0")}`);
  while (keys.size < options.size + options.bulk) {
    const depth = 1 + rng.int(rng.chance(0.3) ? 4 : 2);
    const parts: string[] = [];
    for (let d = 0; d < depth; d++) parts.push(segment(rng));
    add(parts.join("/"));
  }
  // Drop keys that are a directory of another key (POSIX backends cannot hold both).
  const all = [...keys];
  const dirs = new Set<string>();
  for (const k of all) {
    const parts = k.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  const valid = all.filter((k) => !dirs.has(k)).sort(byteOrder);
  const split: KeySplit = { both: [], targetOnly: [], sourceOnly: [] };
  for (const k of valid) {
    const r = rng.next();
    if (r < 0.3) split.both.push(k);
    else if (r < 0.65) split.targetOnly.push(k);
    else split.sourceOnly.push(k);
  }
  return split;
}

/** One listing query of the model. */
export interface ListingCase {
  readonly operation:
    "ListObjectsV2" | "ListObjects" | "ListObjectVersions" | "ListMultipartUploads";
  readonly prefix?: string;
  readonly delimiter?: string;
  readonly maxKeys?: number;
  /** start-after, marker or key-marker. */
  readonly marker?: string;
  readonly encodeUrl: boolean;
  readonly fetchOwner?: boolean;
}

const DELIMITERS = ["/", "/", "/", "!", "+", "k", "\u00e9", "%", " ", "ab", "/b"];

/** The first `n` code points of `s` (never half of a surrogate pair). */
function cut(s: string, n: number): string {
  return Array.from(s).slice(0, n).join("");
}

function randomPosition(rng: Rng, keys: readonly string[]): string {
  const k = rng.pick(keys);
  switch (rng.int(5)) {
    case 0:
      return k;
    case 1:
      return cut(k, 1 + rng.int(k.length));
    case 2:
      return k + rng.pick(["!", "/", "0", "\u00ff", " "]);
    case 3: {
      const at = k.indexOf("/");
      return at < 0 ? k : k.slice(0, at + 1);
    }
    default:
      return rng.pick(["", "a", "zzz", "\u{10ffff}", "!", "bulk/", "bulk/k00100"]);
  }
}

/** A random query over `keys`, for `operation`. */
export function generateCase(
  rng: Rng,
  operation: ListingCase["operation"],
  keys: readonly string[],
): ListingCase {
  const c: { -readonly [K in keyof ListingCase]: ListingCase[K] } = {
    operation,
    encodeUrl: rng.chance(0.3),
  };
  if (rng.chance(0.6)) {
    const k = rng.pick(keys);
    c.prefix = rng.chance(0.85)
      ? cut(k, rng.int(Math.min(k.length, 12) + 1))
      : rng.pick(["zz", "q", "bulk/k001", "x"]);
  }
  if (rng.chance(0.6)) c.delimiter = rng.pick(DELIMITERS);
  const m = rng.next();
  c.maxKeys =
    m < 0.05
      ? 0
      : m < 0.45
        ? 1 + rng.int(7)
        : m < 0.75
          ? 8 + rng.int(60)
          : m < 0.9
            ? 100 + rng.int(900)
            : 1000 + rng.int(501);
  if (rng.chance(0.1)) delete c.maxKeys;
  if (rng.chance(0.4)) c.marker = randomPosition(rng, keys);
  if (operation === "ListObjectsV2") c.fetchOwner = rng.chance(0.2);
  return c;
}

/** One name of a listing: a key (with its chain length for uploads) or a CommonPrefix. */
export interface ModelName {
  readonly name: string;
  readonly isPrefix: boolean;
}

/**
 * The names S3 lists for `c` over `keys` (any order): keys under the prefix, rolled up by the
 * delimiter into CommonPrefixes, those whose name (key or CommonPrefix) sorts after the marker.
 */
export function modelNames(
  keys: readonly string[],
  c: Pick<ListingCase, "prefix" | "delimiter" | "marker">,
): ModelName[] {
  const prefix = c.prefix ?? "";
  const sorted = [...keys].sort(byteOrder);
  const out: ModelName[] = [];
  for (const key of sorted) {
    if (!key.startsWith(prefix)) continue;
    let name = key;
    let isPrefix = false;
    if (c.delimiter !== undefined && c.delimiter !== "") {
      const at = key.indexOf(c.delimiter, prefix.length);
      if (at >= 0) {
        name = key.slice(0, at + c.delimiter.length);
        isPrefix = true;
      }
    }
    if (c.marker !== undefined && c.marker !== "" && byteOrder(name, c.marker) <= 0) continue;
    if (out.length > 0 && (out[out.length - 1] as ModelName).name === name) continue;
    out.push({ name, isPrefix });
  }
  return out;
}

/** Keeps the number of pages of a case reasonable: a small max-keys over a large listing is raised. */
export function fitPages(
  c: ListingCase,
  keys: readonly string[],
  chainOf?: (k: string) => number,
  maxPages = 25,
): ListingCase {
  if (c.maxKeys === 0) return c;
  const names = modelNames(keys, c);
  const items =
    chainOf === undefined
      ? names.length
      : names.reduce((n, x) => n + (x.isPrefix ? 1 : chainOf(x.name)), 0);
  const max = Math.min(c.maxKeys ?? 1000, 1000);
  if (items / max <= maxPages) return c;
  return { ...c, maxKeys: Math.ceil(items / maxPages) };
}

/** The raw query string of a case, with the position of a later page. */
export function caseQuery(
  c: ListingCase,
  page: { token?: string; marker?: string; idMarker?: string } = {},
): string {
  const params: Array<[string, string]> = [];
  switch (c.operation) {
    case "ListObjectsV2":
      params.push(["list-type", "2"]);
      break;
    case "ListObjectVersions":
      params.push(["versions", ""]);
      break;
    case "ListMultipartUploads":
      params.push(["uploads", ""]);
      break;
    case "ListObjects":
      break;
  }
  if (c.prefix !== undefined) params.push(["prefix", c.prefix]);
  if (c.delimiter !== undefined) params.push(["delimiter", c.delimiter]);
  if (c.maxKeys !== undefined) {
    params.push([
      c.operation === "ListMultipartUploads" ? "max-uploads" : "max-keys",
      String(c.maxKeys),
    ]);
  }
  if (c.encodeUrl) params.push(["encoding-type", "url"]);
  if (c.fetchOwner === true) params.push(["fetch-owner", "true"]);
  const marker = page.marker ?? c.marker;
  switch (c.operation) {
    case "ListObjectsV2":
      if (c.marker !== undefined) params.push(["start-after", c.marker]);
      if (page.token !== undefined) params.push(["continuation-token", page.token]);
      break;
    case "ListObjects":
      if (marker !== undefined) params.push(["marker", marker]);
      break;
    case "ListObjectVersions":
      if (marker !== undefined) params.push(["key-marker", marker]);
      if (page.idMarker !== undefined) params.push(["version-id-marker", page.idMarker]);
      break;
    case "ListMultipartUploads":
      if (marker !== undefined) params.push(["key-marker", marker]);
      if (page.idMarker !== undefined) params.push(["upload-id-marker", page.idMarker]);
      break;
  }
  return params.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join("&");
}

/** What the model expects for a key's entries: sizes tell which side's copy was listed. */
export interface ModelEntryFacts {
  /** Object size (or the expected sizes of a chain's entries), by key. */
  readonly sizeOf?: (key: string) => number | undefined;
  /** The expected chain of upload ids of a key (uploads listings). */
  readonly uploadIdsOf?: (key: string) => readonly string[];
  /** The expected ETag (quoted, as listed) of a key's entry, checked where a page gives one. */
  readonly etagOf?: (key: string) => string | undefined;
}

/**
 * One page, in a form common to the four operations and to any client (raw XML, an SDK):
 * what {@link checkPages} checks.
 */
export interface ModelPage {
  /** Entries and prefixes in listing order (by name; an upload chain in document order), decoded. */
  items: Array<{ name: string; isPrefix: boolean; id?: string; size?: number; etag?: string }>;
  isTruncated: boolean;
  keyCount?: number;
  maxKeys: number;
  nextMarker?: string;
  nextIdMarker?: string;
  nextToken?: string;
  /** Raw (still encoded) keys and prefixes, to check the encoding itself. */
  raw: string[];
}

function decodeIf(encoded: boolean, s: string): string {
  return encoded ? s3UrlDecode(s) : s;
}

function parsePage(c: ListingCase, xml: string): ModelPage {
  const enc = c.encodeUrl;
  const order = (items: ModelPage["items"]): ModelPage["items"] =>
    items.sort((a, b) => byteOrder(a.name, b.name) || 0);
  switch (c.operation) {
    case "ListObjectsV2":
    case "ListObjects": {
      const r =
        c.operation === "ListObjectsV2"
          ? parseListBucketResultV2(xml)
          : parseListBucketResultV1(xml);
      if (enc !== (r.encodingType === "url")) throw new Error(`EncodingType is ${r.encodingType}`);
      const items = order([
        ...r.contents.map((e) => ({ name: decodeIf(enc, e.key), isPrefix: false, size: e.size })),
        ...r.commonPrefixes.map((p) => ({ name: decodeIf(enc, p), isPrefix: true })),
      ]);
      const page: ModelPage = {
        items,
        isTruncated: r.isTruncated,
        maxKeys: r.maxKeys,
        raw: [...r.contents.map((e) => e.key), ...r.commonPrefixes],
      };
      if ("keyCount" in r) {
        page.keyCount = r.keyCount;
        if (r.nextContinuationToken !== undefined) page.nextToken = r.nextContinuationToken;
      }
      if ("nextMarker" in r && r.nextMarker !== undefined)
        page.nextMarker = decodeIf(enc, r.nextMarker);
      return page;
    }
    case "ListObjectVersions": {
      const r = parseListVersionsResult(xml);
      const items = order([
        ...r.versions.map((v) => ({
          name: decodeIf(enc, v.key),
          isPrefix: false,
          id: v.versionId,
          ...(v.size === undefined ? {} : { size: v.size }),
        })),
        ...r.commonPrefixes.map((p) => ({ name: decodeIf(enc, p), isPrefix: true })),
      ]);
      const page: ModelPage = {
        items,
        isTruncated: r.isTruncated,
        maxKeys: r.maxKeys,
        raw: [...r.versions.map((v) => v.key), ...r.commonPrefixes],
      };
      if (r.nextKeyMarker !== undefined) page.nextMarker = decodeIf(enc, r.nextKeyMarker);
      if (r.nextVersionIdMarker !== undefined) page.nextIdMarker = r.nextVersionIdMarker;
      return page;
    }
    case "ListMultipartUploads": {
      const r = parseListMultipartUploadsResult(xml);
      // Uploads of one key keep their document order (the chain order): sort stably by name.
      const items: ModelPage["items"] = [
        ...r.uploads.map((u) => ({ name: decodeIf(enc, u.key), isPrefix: false, id: u.uploadId })),
        ...r.commonPrefixes.map((p) => ({ name: decodeIf(enc, p), isPrefix: true })),
      ];
      items.sort((a, b) => byteOrder(a.name, b.name));
      const page: ModelPage = {
        items,
        isTruncated: r.isTruncated,
        maxKeys: r.maxUploads,
        raw: [...r.uploads.map((u) => u.key), ...r.commonPrefixes],
      };
      if (r.nextKeyMarker !== undefined) page.nextMarker = decodeIf(enc, r.nextKeyMarker);
      if (r.nextUploadIdMarker !== undefined) page.nextIdMarker = r.nextUploadIdMarker;
      return page;
    }
  }
}

/** The expected sequence of items (names expanded into upload chains for uploads). */
function expectedItems(
  c: ListingCase,
  keys: readonly string[],
  facts: ModelEntryFacts,
): Array<{ name: string; isPrefix: boolean; id?: string }> {
  const names = modelNames(keys, c);
  if (c.operation !== "ListMultipartUploads") return names;
  const out: Array<{ name: string; isPrefix: boolean; id?: string }> = [];
  for (const n of names) {
    if (n.isPrefix) out.push(n);
    else
      for (const id of facts.uploadIdsOf?.(n.name) ?? [])
        out.push({ name: n.name, isPrefix: false, id });
  }
  return out;
}

/** How a case went: pages fetched and items listed. */
export interface CaseOutcome {
  readonly pages: number;
  readonly items: number;
}

/** Where a later page of a listing starts: what a client sends back (decoded). */
export interface PagePosition {
  /** continuation-token (ListObjectsV2). */
  token?: string;
  /** marker or key-marker. */
  marker?: string;
  /** version-id-marker or upload-id-marker. */
  idMarker?: string;
}

/**
 * Pages `c` to its end through `list` (raw query → XML document) and checks every page against
 * the model of `keys` (the union of both buckets): page sizes, IsTruncated, KeyCount, MaxKeys,
 * NextMarker rules, the encoding of every key, the side whose copy is listed, and that the
 * concatenation equals the model's listing. Throws an Error describing the first difference.
 */
export async function checkCase(
  c: ListingCase,
  keys: readonly string[],
  facts: ModelEntryFacts,
  list: (rawQuery: string) => Promise<string>,
  options: { maxPages?: number } = {},
): Promise<CaseOutcome> {
  return await checkPages(
    c,
    keys,
    facts,
    async (position) => parsePage(c, await list(caseQuery(c, position))),
    options,
  );
}

/**
 * The checks of {@link checkCase} over any client: `fetchPage` fetches the page of `c` that starts
 * at `position` (`{}` for the first) and gives it as a {@link ModelPage}.
 */
export async function checkPages(
  c: ListingCase,
  keys: readonly string[],
  facts: ModelEntryFacts,
  fetchPage: (position: PagePosition) => Promise<ModelPage>,
  options: { maxPages?: number } = {},
): Promise<CaseOutcome> {
  const expected = expectedItems(c, keys, facts);
  const max = Math.min(c.maxKeys ?? 1000, 1000);
  const got: ModelPage["items"] = [];
  let position: PagePosition = {};
  let pages = 0;
  const fail = (why: string): never => {
    throw new Error(
      `${why} (case ${JSON.stringify(c)}, page ${pages}, listed ${got.length} of ${expected.length})`,
    );
  };
  for (;;) {
    pages++;
    if (pages > (options.maxPages ?? 5000)) fail("too many pages");
    const page = await fetchPage(position);
    const remaining = expected.length - got.length;
    const want = max === 0 ? 0 : Math.min(max, remaining);
    if (page.maxKeys !== max) fail(`MaxKeys ${page.maxKeys}, expected ${max}`);
    if (page.items.length !== want) fail(`page has ${page.items.length} items, expected ${want}`);
    const truncated = max !== 0 && remaining > max;
    if (page.isTruncated !== truncated)
      fail(`IsTruncated ${page.isTruncated}, expected ${truncated}`);
    if (page.keyCount !== undefined && page.keyCount !== page.items.length)
      fail(`KeyCount ${page.keyCount} for ${page.items.length} items`);
    if (c.encodeUrl) {
      for (const raw of page.raw)
        if (raw !== s3UrlEncode(s3UrlDecode(raw))) fail(`not encoded as S3 does: ${raw}`);
    }
    for (const item of page.items) {
      const e = expected[got.length];
      if (
        e === undefined ||
        e.name !== item.name ||
        e.isPrefix !== item.isPrefix ||
        (e.id !== undefined && e.id !== item.id)
      ) {
        fail(`item ${JSON.stringify(item)} where the model has ${JSON.stringify(e)}`);
      }
      if (
        !item.isPrefix &&
        item.size !== undefined &&
        facts.sizeOf !== undefined &&
        facts.sizeOf(item.name) !== item.size
      ) {
        fail(`${JSON.stringify(item.name)} has size ${item.size}: not the target's copy`);
      }
      if (
        !item.isPrefix &&
        item.etag !== undefined &&
        facts.etagOf !== undefined &&
        facts.etagOf(item.name) !== item.etag
      ) {
        fail(`${JSON.stringify(item.name)} has ETag ${item.etag}: not the target's copy`);
      }
      got.push(item);
    }
    if (!page.isTruncated) break;
    const last = page.items[page.items.length - 1] as ModelPage["items"][number];
    switch (c.operation) {
      case "ListObjectsV2":
        if (page.nextToken === undefined) fail("truncated without NextContinuationToken");
        position = { token: page.nextToken as string };
        break;
      case "ListObjects":
        if (c.delimiter !== undefined) {
          if (page.nextMarker !== last.name)
            fail(`NextMarker ${page.nextMarker}, expected ${last.name}`);
        } else if (page.nextMarker !== undefined) {
          fail("NextMarker without a delimiter");
        }
        // What SDKs do: NextMarker, else the last key.
        position = { marker: page.nextMarker ?? last.name };
        break;
      case "ListObjectVersions":
      case "ListMultipartUploads":
        if (page.nextMarker !== last.name)
          fail(`NextKeyMarker ${page.nextMarker}, expected ${last.name}`);
        position = {
          marker: page.nextMarker as string,
          ...(page.nextIdMarker === undefined ? {} : { idMarker: page.nextIdMarker }),
        };
        break;
    }
  }
  if (max !== 0 && got.length !== expected.length) fail("listing ended early");
  return { pages, items: got.length };
}

/** Faults a {@link MemoryListSide} can show, as the rig's servers do. */
export interface MemorySideFaults {
  /** Reject every request (a backend that is down). */
  readonly down?: boolean;
  /** Answer the same page again and again (a backend whose paging does not advance). */
  readonly repeatFirstPage?: boolean;
  /** Reject the n-th request (1-based). */
  readonly failRequest?: number;
  /** Answer keys out of order. */
  readonly unordered?: boolean;
  /** Answer an empty page that claims to be truncated. */
  readonly emptyTruncated?: boolean;
}

/**
 * An in-memory backend answering {@link BackendListRequest}s as S3 defines them, for the unit
 * tests of the engine (pure logic; the integration tests use real servers). Objects have the
 * given sizes; uploads are given as key → upload ids in chain order.
 */
export class MemoryListSide {
  /** Requests answered, for assertions on paging. */
  readonly requests: Array<import("../../gateway/listing/listing-types.js").BackendListRequest> =
    [];
  private readonly sorted: string[];

  constructor(
    readonly name: "target" | "source",
    private readonly objects: ReadonlyMap<string, number>,
    private readonly faults: MemorySideFaults = {},
    private readonly uploads: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {
    this.sorted = [...(objects.size > 0 ? objects.keys() : uploads.keys())].sort(byteOrder);
  }

  /** One page. */
  async listPage(
    request: import("../../gateway/listing/listing-types.js").BackendListRequest,
    signal: AbortSignal,
  ): Promise<import("../../gateway/listing/listing-types.js").BackendListPage> {
    this.requests.push(request);
    await Promise.resolve();
    if (signal.aborted) throw new Error("aborted");
    if (this.faults.down === true || this.faults.failRequest === this.requests.length) {
      throw new Error(`${this.name} is down`);
    }
    const start = this.faults.repeatFirstPage === true ? undefined : request.startAfter;
    type Entry = import("../../gateway/listing/listing-types.js").BackendEntry;
    const entries: Entry[] = [];
    let truncated = false;
    let lastName: string | undefined;
    // Binary search to the first key at or after the prefix and the start position.
    const from = [request.prefix, start ?? ""].reduce((a, b) => (byteOrder(a, b) >= 0 ? a : b));
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byteOrder(this.sorted[mid] as string, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.sorted.length; i++) {
      const key = this.sorted[i] as string;
      if (!key.startsWith(request.prefix)) {
        if (byteOrder(key, request.prefix) > 0) break;
        continue;
      }
      let name = key;
      let isPrefix = false;
      if (request.delimiter !== undefined) {
        const at = key.indexOf(request.delimiter, request.prefix.length);
        if (at >= 0) {
          name = key.slice(0, at + 1);
          isPrefix = true;
        }
      }
      const chain = request.kind === "uploads" ? (this.uploads.get(key) ?? []) : [""];
      let ids = chain;
      if (start !== undefined) {
        const order = byteOrder(name, start);
        if (order < 0 || (order === 0 && (isPrefix || request.idMarker === undefined))) continue;
        if (order === 0 && request.idMarker !== undefined)
          ids = chain.slice(chain.indexOf(request.idMarker) + 1);
      }
      if (isPrefix) {
        if (lastName === name) continue;
        if (entries.length === request.maxEntries) {
          truncated = true;
          break;
        }
        entries.push({ type: "prefix", prefix: name });
        lastName = name;
        continue;
      }
      for (const id of ids) {
        if (entries.length === request.maxEntries) {
          truncated = true;
          break;
        }
        entries.push(
          request.kind === "uploads"
            ? { type: "upload", key, uploadId: id, initiated: "2026-01-01T00:00:00.000Z" }
            : request.kind === "versions"
              ? {
                  type: "version",
                  key,
                  versionId: "null",
                  isLatest: true,
                  isDeleteMarker: false,
                  lastModified: "2026-01-01T00:00:00.000Z",
                  etag: '"e"',
                  size: this.objects.get(key) ?? 0,
                }
              : {
                  type: "object",
                  key,
                  lastModified: "2026-01-01T00:00:00.000Z",
                  etag: '"e"',
                  size: this.objects.get(key) ?? 0,
                },
        );
      }
      if (truncated) break;
      lastName = name;
    }
    if (this.faults.unordered === true && entries.length > 1) entries.reverse();
    if (this.faults.emptyTruncated === true) return { entries: [], isTruncated: true };
    return { entries, isTruncated: truncated };
  }
}
