import { describe, it, expect } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeListFile } from "../../s3find/list-file.js";
import { MinHeap } from "../../s3migrate/heap.js";
import {
  KeySourceError,
  classifyKeys,
  folderKeys,
  mergeSortedKeys,
  type ClassifiedKey,
} from "../../s3migrate/key-source.js";
import { keyHash, shardOf } from "../../s3migrate/shard.js";

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function* from(keys: readonly string[]): AsyncGenerator<string> {
  for (const k of keys) yield k;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("MinHeap", () => {
  it("pops in order whatever the push order", () => {
    const h = new MinHeap<number>((a, b) => a - b);
    const input = [5, 3, 9, 1, 1, 8, 2, 7, 0, 6, 4];
    for (const n of input) h.push(n);
    const out: number[] = [];
    while (h.size > 0) out.push(h.pop() as number);
    expect(out).toEqual([...input].sort((a, b) => a - b));
    expect(h.pop()).toBeUndefined();
  });
});

describe("mergeSortedKeys", () => {
  it("merges k sorted streams into one sorted stream without duplicates", async () => {
    const merged = await collect(
      mergeSortedKeys([from(["a", "c", "e"]), from(["b", "c", "d"]), from([]), from(["a", "z"])], {
        compare: byteOrder,
      }),
    );
    expect(merged).toEqual(["a", "b", "c", "d", "e", "z"]);
  });

  it("orders by UTF-8 bytes, not UTF-16 code units", async () => {
    // U+FF5E (ef bd 9e) sorts before U+1F600 (f0 9f 98 80) in UTF-8, after it in UTF-16.
    const merged = await collect(
      mergeSortedKeys([from(["\u{ff5e}"]), from(["\u{1f600}"])], { compare: byteOrder }),
    );
    expect(merged).toEqual(["\u{ff5e}", "\u{1f600}"]);
  });

  it("refuses a source that is not sorted, naming it", async () => {
    await expect(
      collect(
        mergeSortedKeys([from(["a", "b"]), from(["c", "a"])], {
          compare: byteOrder,
          names: ["one", "two"],
        }),
      ),
    ).rejects.toThrowError(/two is not sorted/);
  });

  it("merges a large random set correctly with bounded fan-in", async () => {
    const all: string[] = [];
    const lists: string[][] = Array.from({ length: 7 }, () => []);
    for (let i = 0; i < 5000; i++) {
      const k = `k${(i * 7919) % 10007}`;
      all.push(k);
      (lists[i % 7] as string[]).push(k);
    }
    const sources = lists.map((l) => from([...l].sort(byteOrder)));
    const merged = await collect(mergeSortedKeys(sources, { compare: byteOrder }));
    expect(merged).toEqual([...new Set(all)].sort(byteOrder));
  });

  it("reads list folders written in s3find's format, escaped keys included", async () => {
    const dir = await mkdtemp(join(tmpdir(), "s3m-keys-"));
    await writeListFile(join(dir, "keys-000001.txt"), ["a", "line\nbreak", "x"]);
    await writeListFile(join(dir, "keys-000002.txt"), ["b", "back\\slash", "x"]);
    await writeFile(join(dir, "migrate.log"), "zzz\n");
    const keys = await collect(await folderKeys(dir, { compare: byteOrder }));
    expect(keys).toEqual(["a", "b", "back\\slash", "line\nbreak", "x"]);
  });

  it("refuses an empty list folder", async () => {
    const dir = await mkdtemp(join(tmpdir(), "s3m-empty-"));
    await expect(folderKeys(dir, { compare: byteOrder })).rejects.toBeInstanceOf(KeySourceError);
  });
});

describe("shard hash", () => {
  it("is FNV-1a 64 of the UTF-8 bytes (published test values)", () => {
    expect(keyHash("").toString(16)).toBe("cbf29ce484222325");
    expect(keyHash("a").toString(16)).toBe("af63dc4c8601ec8c");
    expect(keyHash("foobar").toString(16)).toBe("85944171f73967e8");
  });

  it("never normalises: NFC and NFD keys are different bytes", () => {
    expect(keyHash("\u00e9")).not.toBe(keyHash("e\u0301"));
  });

  it("puts every key in exactly one of N shards, spread evenly", () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[shardOf(`photos/2024/img-${i}.jpg`, 3)]! += 1;
    expect(counts.reduce((a, b) => a + b)).toBe(3000);
    for (const c of counts) expect(c).toBeGreaterThan(800);
    expect(shardOf("anything", 1)).toBe(0);
  });
});

describe("classifyKeys", () => {
  const keys = ["a", "b", "c", "d", "e", "f", "g"];

  it("marks keys listed on the target as exist by merge-join", async () => {
    const out = await collect(
      classifyKeys(from(keys), {
        compare: byteOrder,
        hashCount: 1,
        hashValue: 0,
        destKeys: from(["0", "b", "c", "cc", "g", "h"]),
      }),
    );
    expect(out).toEqual<ClassifiedKey[]>([
      { key: "a", cls: "work" },
      { key: "b", cls: "exist" },
      { key: "c", cls: "exist" },
      { key: "d", cls: "work" },
      { key: "e", cls: "work" },
      { key: "f", cls: "work" },
      { key: "g", cls: "exist" },
    ]);
  });

  it("drops keys up to --start-after and stops after --first", async () => {
    let before = 0;
    const out = await collect(
      classifyKeys(from(keys), {
        compare: byteOrder,
        hashCount: 1,
        hashValue: 0,
        startAfter: "b",
        first: 3,
        onBefore: () => before++,
      }),
    );
    expect(out.map((k) => k.key)).toEqual(["c", "d", "e"]);
    expect(before).toBe(2);
  });

  it("gives each shard its own keys and the rest as ign", async () => {
    const many = Array.from({ length: 300 }, (_, i) => `key-${String(i).padStart(4, "0")}`);
    const seen = new Map<string, number>();
    for (let v = 0; v < 3; v++) {
      const out = await collect(
        classifyKeys(from(many), { compare: byteOrder, hashCount: 3, hashValue: v }),
      );
      expect(out).toHaveLength(300);
      for (const k of out) if (k.cls === "work") seen.set(k.key, (seen.get(k.key) ?? 0) + 1);
      expect(out.filter((k) => k.cls === "ign").length).toBe(
        300 - out.filter((k) => k.cls === "work").length,
      );
    }
    expect(seen.size).toBe(300);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });
});
