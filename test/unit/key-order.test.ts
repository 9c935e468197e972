import { describe, it, expect } from "vitest";
import {
  compareKeys,
  foldCommonPrefix,
  isPastPrefix,
  maxKey,
  mergeSortedKeys,
  minKey,
  prefixUpperBound,
  sortKeys,
} from "../../s3/key-order.js";

const bytesOrder = (a: string, b: string): number =>
  Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

const sign = (n: number): number => Math.sign(n);

const NFC = "caf\u00e9"; // é precomposed: 63 61 66 C3 A9
const NFD = "cafe\u0301"; // e + combining acute: 63 61 66 65 CC 81

describe("compareKeys", () => {
  const table: Array<[name: string, a: string, b: string, expected: -1 | 0 | 1]> = [
    ["empty strings are equal", "", "", 0],
    ["empty sorts before anything", "", "a", -1],
    ["a prefix sorts first", "a", "ab", -1],
    ["ASCII order", "a", "b", -1],
    ["upper case before lower case", "Z", "a", -1],
    ["0x7F sorts before U+0080", "\x7f", "\u0080", -1],
    ["U+0080 (2 bytes) before U+0800 (3 bytes)", "\u0080", "\u0800", -1],
    // JS order says U+FFFD > U+1F600's high surrogate D83D; UTF-8 says F0 > EF.
    ["astral (surrogate pair) after U+FFFD", "\u{1F600}", "\uFFFD", 1],
    ["astral after U+E000 (private use)", "\u{10000}", "\uE000", 1],
    ["astral after U+FF5E in a longer key", "x/\u{1F600}/1", "x/\uFF5E/2", 1],
    ["two astral characters by code point", "\u{1F600}", "\u{1F601}", -1],
    ["astral vs D7FF (below the surrogate range)", "\uD7FF", "\u{10000}", -1],
    ["NFC and NFD are distinct: é (C3) sorts after e (65)", NFC, NFD, 1],
    ["lone surrogate encodes as U+FFFD: equal bytes", "\uD800", "\uFFFD", 0],
    ["lone surrogate vs astral character", "\uD800", "\u{1F600}", -1],
    ["equal astral keys", "\u{1F600}a", "\u{1F600}a", 0],
  ];
  for (const [name, a, b, expected] of table) {
    it(name, () => {
      expect(sign(compareKeys(a, b))).toBe(expected);
      expect(sign(compareKeys(b, a))).toBe(-expected || 0);
      expect(sign(bytesOrder(a, b))).toBe(expected);
    });
  }

  it("agrees with Buffer.compare on a mixed corpus", () => {
    const atoms = [
      "",
      "a",
      "/",
      "\x7f",
      "\u0080",
      "\u00e9",
      "e\u0301",
      "\uD7FF",
      "\uE000",
      "\uFFFD",
      "\u{1F600}",
      "\u{10FFFF}",
      "\uD800",
    ];
    const corpus: string[] = [];
    for (const x of atoms) for (const y of atoms) corpus.push(x + y);
    const mismatches: string[][] = [];
    for (const a of corpus) {
      for (const b of corpus) {
        if (sign(compareKeys(a, b)) !== sign(bytesOrder(a, b))) mismatches.push([a, b]);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("sortKeys sorts by bytes, not by UTF-16 units", () => {
    const keys = ["\uFFFD", "\u{1F600}", "b", "\uE000", "a"];
    expect([...keys].sort()).toEqual(["a", "b", "\u{1F600}", "\uE000", "\uFFFD"]);
    expect(sortKeys(keys)).toEqual(["a", "b", "\uE000", "\uFFFD", "\u{1F600}"]);
  });

  it("minKey and maxKey follow byte order", () => {
    expect(minKey("\u{1F600}", "\uFFFD")).toBe("\uFFFD");
    expect(maxKey("\u{1F600}", "\uFFFD")).toBe("\u{1F600}");
  });
});

describe("foldCommonPrefix", () => {
  const table: Array<
    [name: string, key: string, prefix: string, delim: string | undefined, out: string | undefined]
  > = [
    ["no delimiter: never folded", "a/b", "", undefined, undefined],
    ["empty delimiter: never folded", "a/b", "", "", undefined],
    ["first delimiter after the prefix", "a/b/c", "", "/", "a/"],
    ["delimiter inside the prefix does not count", "a/b/c", "a/", "/", "a/b/"],
    ["no delimiter after the prefix: listed as itself", "a/b", "a/", "/", undefined],
    ["key outside the prefix", "b/c", "a/", "/", undefined],
    ["multi-character delimiter", "x--y--z", "", "--", "x--"],
    ["key ending in the delimiter folds into itself", "dir/", "", "/", "dir/"],
    ["double slash: the empty segment is a prefix", "a//b", "a/", "/", "a//"],
    ["prefix not ending in the delimiter", "photos/2024/x", "pho", "/", "photos/"],
    ["unicode delimiter", "a\u00e9b\u00e9c", "", "\u00e9", "a\u00e9"],
  ];
  for (const [name, key, prefix, delim, out] of table) {
    it(name, () => expect(foldCommonPrefix(key, prefix, delim)).toBe(out));
  }
});

describe("prefixUpperBound", () => {
  it("increments the last character", () => {
    expect(prefixUpperBound("a/")).toBe("a0");
  });
  it("is above every key under the prefix and at or below every key after the range", () => {
    for (const prefix of ["a/", "photos/2024/", "\u00e9/", "x\uD7FF", "\u{1F600}", "a\uFFFF"]) {
      const bound = prefixUpperBound(prefix) as string;
      expect(bound).toBeDefined();
      for (const suffix of ["", "\0", "zzz", "\u{10FFFF}\u{10FFFF}", "\uFFFF"]) {
        expect(compareKeys(prefix + suffix, bound), prefix + suffix).toBeLessThan(0);
      }
      expect(bound.startsWith(prefix)).toBe(false);
      expect(compareKeys(bound, prefix)).toBeGreaterThan(0);
    }
  });
  it("skips the surrogate range (UTF-8 has no such code points)", () => {
    expect(prefixUpperBound("x\uD7FF")).toBe("x\uE000");
  });
  it("carries over U+10FFFF and has no bound for the empty prefix", () => {
    expect(prefixUpperBound("a\u{10FFFF}")).toBe("b");
    expect(prefixUpperBound("\u{10FFFF}")).toBeUndefined();
    expect(prefixUpperBound("")).toBeUndefined();
  });
  it("isPastPrefix: keys under the CommonPrefix are not past it", () => {
    expect(isPastPrefix("a/zzz", "a/")).toBe(false);
    expect(isPastPrefix("a/", "a/")).toBe(false);
    expect(isPastPrefix("a0", "a/")).toBe(true);
    expect(isPastPrefix("a", "a/")).toBe(false);
  });
});

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

describe("mergeSortedKeys", () => {
  it("merges in byte order, the lowest source wins a tie and the others are shadowed", async () => {
    const target = from([
      { k: "a", v: "t" },
      { k: "\uFFFD", v: "t" },
    ]);
    const source = from([
      { k: "a", v: "s" },
      { k: "b", v: "s" },
      { k: "\u{1F600}", v: "s" },
    ]);
    const out = [];
    for await (const m of mergeSortedKeys([target, source], (x) => x.k)) out.push(m);
    expect(out.map((m) => [m.key, m.item.v, m.source, m.shadowed.length])).toEqual([
      ["a", "t", 0, 1],
      ["b", "s", 1, 0],
      ["\uFFFD", "t", 0, 0],
      ["\u{1F600}", "s", 1, 0],
    ]);
  });

  it("handles empty sources", async () => {
    const out = [];
    for await (const m of mergeSortedKeys(
      [from<string>([]), from(["x"]), from<string>([])],
      (x) => x,
    )) {
      out.push(m.key);
    }
    expect(out).toEqual(["x"]);
  });

  it("refuses a source that is not ascending in byte order", async () => {
    const run = async (): Promise<void> => {
      for await (const _ of mergeSortedKeys([from(["\u{1F600}", "\uFFFD"])], (x) => x)) void _;
    };
    await expect(run()).rejects.toThrow(/not strictly ascending/);
  });

  it("closes every source when the consumer stops early", async () => {
    let closed = 0;
    const tracked = async function* (keys: string[]): AsyncGenerator<string> {
      try {
        for (const k of keys) yield k;
      } finally {
        closed++;
      }
    };
    for await (const m of mergeSortedKeys([tracked(["a", "c"]), tracked(["b", "d"])], (x) => x)) {
      if (m.key === "b") break;
    }
    expect(closed).toBe(2);
  });
});
