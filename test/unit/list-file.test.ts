import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ListFileError,
  chunkFileName,
  escapeKey,
  listFilesIn,
  readListFile,
  runLines,
  unescapeKey,
  writeListFile,
  writeListText,
} from "../../s3find/list-file.js";

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out;
}

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "list-file-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("escapeKey / unescapeKey", () => {
  const cases: Array<[string, string, string]> = [
    ["plain key", "a/b/c.txt", "a/b/c.txt"],
    ["backslash", "a\\b", "a\\\\b"],
    ["newline", "line1\nline2", "line1\\nline2"],
    ["carriage return", "x\ry", "x\\ry"],
    ["backslash then n is not a newline", "a\\n", "a\\\\n"],
    ["all three", "\\\n\r", "\\\\\\n\\r"],
    ["tab and spaces stay raw", "a\tb  c ", "a\tb  c "],
    ["unicode stays raw", "é/日本/😀", "é/日本/😀"],
    ["NFD stays NFD", "e\u0301", "e\u0301"],
  ];
  for (const [name, key, line] of cases) {
    it(`${name}: escapes and round-trips`, () => {
      expect(escapeKey(key)).toBe(line);
      expect(escapeKey(key)).not.toMatch(/[\n\r]/);
      expect(unescapeKey(line)).toBe(key);
    });
  }

  it("does not normalise Unicode: NFC and NFD stay distinct", () => {
    const nfc = "caf\u00e9";
    const nfd = "cafe\u0301";
    expect(unescapeKey(escapeKey(nfc))).toBe(nfc);
    expect(unescapeKey(escapeKey(nfd))).toBe(nfd);
    expect(escapeKey(nfc)).not.toBe(escapeKey(nfd));
  });

  for (const bad of ["a\\", "a\\t", "\\x41", "\\N", "\\ "]) {
    it(`rejects the invalid escape ${JSON.stringify(bad)}`, () => {
      expect(() => unescapeKey(bad)).toThrow(ListFileError);
    });
  }
});

describe("chunkFileName", () => {
  it("pads to six digits so text order is chunk order", () => {
    expect(chunkFileName(1)).toBe("keys-000001.txt");
    expect(chunkFileName(42)).toBe("keys-000042.txt");
    expect(chunkFileName(999_999)).toBe("keys-999999.txt");
    const names = [10, 9, 100, 2, 1].map(chunkFileName).sort();
    expect(names).toEqual([1, 2, 9, 10, 100].map(chunkFileName));
  });
  it("rejects numbers outside 1..999999", () => {
    for (const n of [0, -1, 1.5, 1_000_000, Number.NaN]) {
      expect(() => chunkFileName(n)).toThrow(RangeError);
    }
  });
});

describe("writeListFile / readListFile", () => {
  it("round-trips awkward keys exactly, one line each", async () => {
    const keys = [
      "a",
      "dir/with space/file name.txt",
      "new\nline",
      "cr\rhere",
      "back\\slash",
      "\\n literal",
      "caf\u00e9",
      "cafe\u0301",
      "😀/emoji",
      "trailing/",
      "a//b",
      "x".repeat(1024),
    ];
    const path = join(dir, "keys-000001.txt");
    await writeListFile(path, keys);
    const raw = await readFile(path);
    expect(raw.toString("utf8").split("\n")).toHaveLength(keys.length + 1);
    expect(raw.includes(0x0d)).toBe(false);
    expect(await collect(readListFile(path))).toEqual(keys);
  });

  it("runLines builds the same lines as escapeKey per key, with and without the scan", async () => {
    const names = ["plain", "new\nline", "back\\slash", "cr\rhere", "é😀"];
    const prefix = "dir\\x/";
    const escaped = runLines({ prefix, names, start: 1, end: 5, needsEscape: true });
    expect(escaped).toBe(
      names
        .slice(1)
        .map((n) => `${escapeKey(prefix + n)}\n`)
        .join(""),
    );
    const plain = runLines({
      prefix: "a/",
      names: ["x", "y", "z"],
      start: 0,
      end: 3,
      needsEscape: false,
    });
    expect(plain).toBe("a/x\na/y\na/z\n");
    expect(runLines({ prefix: "", names: ["x", "y"], start: 1, end: 1, needsEscape: false })).toBe(
      "",
    );

    const path = join(dir, "keys-000001.txt");
    await writeListText(path, escaped);
    expect(await collect(readListFile(path))).toEqual(names.slice(1).map((n) => prefix + n));
    expect(await readdir(dir)).toEqual(["keys-000001.txt"]);
  });

  it("accepts an async iterable and leaves no temp file behind", async () => {
    async function* gen() {
      for (let i = 0; i < 5000; i++) yield `k/${i}`;
    }
    const path = join(dir, "out.txt");
    await writeListFile(path, gen());
    expect(await readdir(dir)).toEqual(["out.txt"]);
    const back = await collect(readListFile(path));
    expect(back).toHaveLength(5000);
    expect(back[4999]).toBe("k/4999");
  });

  it("is atomic: a failing key source leaves neither the file nor a temp file", async () => {
    const path = join(dir, "keys-000001.txt");
    async function* failing() {
      yield "one";
      throw new Error("source broke");
    }
    await expect(writeListFile(path, failing())).rejects.toThrow("source broke");
    expect(await readdir(dir)).toEqual([]);
  });

  it("keeps the previous complete file when a rewrite fails", async () => {
    const path = join(dir, "keys-000001.txt");
    await writeListFile(path, ["old"]);
    await expect(writeListFile(path, ["new", ""])).rejects.toThrow(ListFileError);
    expect(await collect(readListFile(path))).toEqual(["old"]);
    expect(await readdir(dir)).toEqual(["keys-000001.txt"]);
  });

  it("refuses keys it could not read back: empty, lone surrogate", async () => {
    await expect(writeListFile(join(dir, "a.txt"), [""])).rejects.toThrow(ListFileError);
    await expect(writeListFile(join(dir, "b.txt"), ["bad\ud800"])).rejects.toThrow(ListFileError);
    expect(await readdir(dir)).toEqual([]);
  });

  it("reads a final line without newline, skips empty lines, tolerates CRLF", async () => {
    const path = join(dir, "hand.txt");
    await writeFile(path, "a\n\nb\r\n\r\nc\\nd\nlast");
    expect(await collect(readListFile(path))).toEqual(["a", "b", "c\nd", "last"]);
  });

  it("reads an empty file as no keys", async () => {
    const path = join(dir, "empty.txt");
    await writeFile(path, "");
    expect(await collect(readListFile(path))).toEqual([]);
  });

  it("reports invalid UTF-8 and invalid escapes with file and line", async () => {
    const bad = join(dir, "bad.txt");
    await writeFile(bad, Buffer.concat([Buffer.from("ok\n"), Buffer.from([0x66, 0xff, 0x0a])]));
    await expect(collect(readListFile(bad))).rejects.toThrow(/bad\.txt:2: .*UTF-8/);
    const esc = join(dir, "esc.txt");
    await writeFile(esc, "ok\nalso ok\nbad\\q\n");
    const err = await collect(readListFile(esc)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListFileError);
    expect((err as ListFileError).line).toBe(3);
  });

  it("splits lines correctly across read-buffer boundaries (multi-byte chars too)", async () => {
    // Many lines of varying length with 4-byte characters, so some line and some character
    // straddles each 256 KiB read boundary.
    const keys: string[] = [];
    let bytes = 0;
    for (let i = 0; bytes < 1_200_000; i++) {
      const k = `${i}/${"😀".repeat(i % 37)}é\n${"z".repeat(i % 101)}`;
      keys.push(k);
      bytes += Buffer.byteLength(k) + 2;
    }
    const path = join(dir, "big.txt");
    await writeListFile(path, keys);
    const back = await collect(readListFile(path));
    expect(back.length).toBe(keys.length);
    expect(back).toEqual(keys);
  });

  it("stops on a line longer than the limit instead of buffering it", async () => {
    const path = join(dir, "huge.txt");
    await writeFile(path, "a".repeat(2 * 1024 * 1024));
    await expect(collect(readListFile(path))).rejects.toThrow(/longer than/);
  });
});

describe("listFilesIn", () => {
  it("lists regular, non-hidden, non-.log/.json files in name order, as full paths", async () => {
    for (const name of [
      "keys-000002.txt",
      "keys-000010.txt",
      "keys-000001.txt",
      "migrate.log",
      "failed.log",
      "summary.json",
      ".keys-000003.txt.tmp-1-abc",
      "other-list",
    ]) {
      await writeFile(join(dir, name), "k\n");
    }
    await mkdir(join(dir, "subdir"));
    await symlink(join(dir, "keys-000001.txt"), join(dir, "link.txt"));
    expect(await listFilesIn(dir)).toEqual(
      ["keys-000001.txt", "keys-000002.txt", "keys-000010.txt", "other-list"].map((n) =>
        join(dir, n),
      ),
    );
  });

  it("returns nothing for an empty folder", async () => {
    expect(await listFilesIn(dir)).toEqual([]);
  });
});
