/**
 * S3 key order: S3 lists keys in ascending order of their UTF-8 bytes
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html, "List results are
 * always returned in UTF-8 binary order"). JavaScript compares strings by UTF-16 code units,
 * which differs as soon as a key holds a character above U+FFFF next to one in U+E000..U+FFFF.
 * Everything here follows the byte order, and the helpers a listing merge needs build on it.
 */

function isSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdfff;
}

/**
 * Compares two keys in UTF-8 byte order, with `Buffer.compare` semantics: negative when `a`
 * sorts first, 0 when their UTF-8 encodings are equal, positive otherwise.
 *
 * Fast path: up to the first differing UTF-16 unit both strings are identical, and when neither
 * unit at that point is a surrogate, both are BMP code points whose order is the order of their
 * UTF-8 encodings. Only a difference at a surrogate falls back to encoding (lone surrogates
 * encode as U+FFFD, which only bytes get right).
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) {
    // One is a prefix of the other; a lone trailing surrogate still encodes to bytes, so
    // the longer string sorts after.
    return a.length - b.length;
  }
  const ca = a.charCodeAt(i);
  const cb = b.charCodeAt(i);
  if (!isSurrogate(ca) && !isSurrogate(cb)) return ca - cb;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Whether `a` sorts strictly before `b` in UTF-8 byte order. */
export function keyBefore(a: string, b: string): boolean {
  return compareKeys(a, b) < 0;
}

/** The larger of two keys in UTF-8 byte order (`a` when equal). */
export function maxKey(a: string, b: string): string {
  return compareKeys(a, b) >= 0 ? a : b;
}

/** The smaller of two keys in UTF-8 byte order (`a` when equal). */
export function minKey(a: string, b: string): string {
  return compareKeys(a, b) <= 0 ? a : b;
}

/** Sorts keys in place in UTF-8 byte order and returns the array. */
export function sortKeys(keys: string[]): string[] {
  return keys.sort(compareKeys);
}

/**
 * The CommonPrefix `key` falls into for a listing with `prefix` and `delimiter`: the key up to
 * and including the first `delimiter` after `prefix`. Undefined when there is no delimiter, the
 * key is outside `prefix`, or no delimiter follows the prefix (the key is listed as itself).
 */
export function foldCommonPrefix(
  key: string,
  prefix: string,
  delimiter: string | undefined,
): string | undefined {
  if (delimiter === undefined || delimiter === "") return undefined;
  if (!key.startsWith(prefix)) return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  if (at < 0) return undefined;
  return key.slice(0, at + delimiter.length);
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest string that sorts after every string starting with `prefix` (an exclusive upper
 * bound in UTF-8 byte order), or undefined when none exists (a prefix of only U+10FFFF, or "").
 *
 * It is `prefix` with its last code point incremented (skipping the surrogate range, which UTF-8
 * cannot encode), carrying over trailing U+10FFFF. Because code point order equals UTF-8 byte
 * order, every key under `prefix` is below it and every key above the prefix range is at or above
 * it. A listing merge uses it to resume *past* a CommonPrefix: skip keys `< prefixUpperBound(p)`.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (ch) => ch.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last === MAX_CODE_POINT) continue;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    // A lone surrogate in the prefix encodes as U+FFFD; incrementing it is not meaningful
    // in bytes, so fall back to the bound of U+FFFD.
    const bumped = isSurrogate(last) ? 0xfffe : next;
    return String.fromCodePoint(...points, bumped);
  }
  return undefined;
}

/**
 * Whether `key` lies past every key under `commonPrefix`: the test a merge applies after emitting
 * a CommonPrefix so that no key folded into it is emitted again.
 */
export function isPastPrefix(key: string, commonPrefix: string): boolean {
  if (key.startsWith(commonPrefix)) return false;
  return compareKeys(key, commonPrefix) > 0;
}

/** One item of a {@link mergeSortedKeys} output: the smallest key among the sources. */
export interface MergedKey<T> {
  /** The key, in UTF-8 byte order across the whole merge. */
  key: string;
  /** The item from the lowest-numbered source that holds this key (the tie-break winner). */
  item: T;
  /** Index of that source in the input array. */
  source: number;
  /** Items with the same key from higher-numbered sources, in source order. */
  shadowed: Array<{ source: number; item: T }>;
}

/**
 * A k-way merge of async iterables that are each sorted by `keyOf` in UTF-8 byte order. Equal
 * keys are merged into one output: the lowest source index wins (put the target first so that
 * "target wins on the same key"), the others are reported as `shadowed`.
 *
 * Memory holds one pending item per source. A source that goes backwards throws, because a
 * silently mis-sorted merge would lose or repeat keys.
 */
export async function* mergeSortedKeys<T>(
  sources: ReadonlyArray<AsyncIterable<T>>,
  keyOf: (item: T) => string,
): AsyncGenerator<MergedKey<T>> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const heads: Array<{ key: string; item: T } | undefined> = [];
  const pull = async (i: number): Promise<void> => {
    const it = iterators[i] as AsyncIterator<T>;
    const prev = heads[i];
    const r = await it.next();
    if (r.done === true) {
      heads[i] = undefined;
      return;
    }
    const key = keyOf(r.value);
    if (prev !== undefined && compareKeys(prev.key, key) >= 0) {
      throw new Error(`mergeSortedKeys: source ${i} is not strictly ascending`);
    }
    heads[i] = { key, item: r.value };
  };
  try {
    await Promise.all(iterators.map((_, i) => pull(i)));
    for (;;) {
      // k is small (two buckets, or a handful of list files): a linear scan beats a heap.
      let min: string | undefined;
      for (const h of heads)
        if (h !== undefined && (min === undefined || keyBefore(h.key, min))) min = h.key;
      if (min === undefined) return;
      let winner: MergedKey<T> | undefined;
      const advance: number[] = [];
      heads.forEach((h, i) => {
        if (h === undefined || compareKeys(h.key, min) !== 0) return;
        advance.push(i);
        if (winner === undefined) winner = { key: h.key, item: h.item, source: i, shadowed: [] };
        else winner.shadowed.push({ source: i, item: h.item });
      });
      yield winner as MergedKey<T>;
      await Promise.all(advance.map((i) => pull(i)));
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}
