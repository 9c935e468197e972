import { describe, it, expect, beforeEach, afterEach } from "vitest";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  utimes,
  writeFile,
  chown,
} from "node:fs/promises";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { listFilesIn, readListFile, writeListFile } from "../../s3find/list-file.js";
import { compareCodeUnits, compareKeysUtf8, sortKeysUtf8 } from "../../s3find/key-sort.js";
import { runS3find, S3findUsageError } from "../../s3find/run.js";
import { chooseDelegateDepth } from "../../s3find/walk-pool.js";
import { newWalkStats, walkKeys, walkRuns, type WalkIssue } from "../../s3find/walk.js";

const REPO = join(import.meta.dirname, "..", "..");
const CLI = join(REPO, "cli", "s3find.ts");

let base = "";
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "s3find-"));
});
afterEach(async () => {
  await chmod(base, 0o755).catch(() => undefined);
  await rm(base, { recursive: true, force: true });
});

async function touch(root: string, rel: string, mtimeMs?: number): Promise<void> {
  const path = join(root, rel);
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, "x");
  if (mtimeMs !== undefined) await utimes(path, mtimeMs / 1000, mtimeMs / 1000);
}

/** Reads every chunk back with the shared reader; checks each is sorted and has no duplicates. */
async function readChunks(outDir: string): Promise<{ keys: string[]; chunks: string[][] }> {
  const chunks: string[][] = [];
  for (const file of await listFilesIn(outDir)) {
    const keys: string[] = [];
    for await (const k of readListFile(file)) keys.push(k);
    chunks.push(keys);
  }
  for (const chunk of chunks) {
    for (let i = 1; i < chunk.length; i++) {
      const cmp = Buffer.compare(Buffer.from(chunk[i - 1] ?? ""), Buffer.from(chunk[i] ?? ""));
      expect(cmp, `chunk not strictly sorted at ${i}`).toBeLessThan(0);
    }
  }
  const keys = chunks.flat();
  expect(new Set(keys).size, "duplicate keys across chunks").toBe(keys.length);
  return { keys, chunks };
}

function sorted(keys: string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

describe("key order", () => {
  it("compareKeysUtf8 agrees with Buffer.compare, including surrogates vs U+E000..U+FFFF", () => {
    const alphabet = ["a", "Z", "/", "é", "\uE000", "\uFFFD", "\uFF21", "😀", "𝄞", "\u0301", "-"];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const words: string[] = [];
    for (let i = 0; i < 400; i++) {
      let w = "";
      for (let j = 0, len = 1 + rnd(5); j < len; j++) w += alphabet[rnd(alphabet.length)];
      words.push(w);
    }
    for (let i = 0; i + 1 < words.length; i++) {
      const a = words[i] ?? "";
      const b = words[i + 1] ?? "";
      expect(Math.sign(compareKeysUtf8(a, b))).toBe(
        Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
    }
    expect(sortKeysUtf8([...words])).toEqual(sorted(words));
    // The case plain JS string order gets wrong: U+1F600 (surrogates) sorts after U+FFFD in UTF-8.
    expect(sortKeysUtf8(["😀", "\uFFFD"])).toEqual(["\uFFFD", "😀"]);
  });
});

describe("key order fast paths", () => {
  // Adversarial names: a directory sorts as "name/", so it must land after "a-b", "a.b" and
  // "a b" (bytes below "/") and before "a0"; U+E000..U+FFFF must sort before surrogate pairs.
  const names = ["a", "a-b", "a.b", "a b", "a0", "\uE000", "\uFFFD", "\uFF21", "😀", "𝄞", "é", "Z"];

  it("compareCodeUnits is byte order when no surrogate is involved, and sortKeysUtf8 always is", () => {
    const bmp = ["a", "/", "a/", "a-", "\u00e9", "\uE000", "\uFFFD", "\uFF21", "\u0301", "Z", ""];
    for (const a of bmp) {
      for (const b of bmp) {
        expect(Math.sign(compareCodeUnits(a, b))).toBe(
          Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
        );
      }
    }
    const mixed = names.flatMap((n) => [n, `${n}/x`, `x/${n}`, `${n}${n}`]);
    expect(sortKeysUtf8([...mixed].reverse())).toEqual(sorted(mixed));
    expect(sortKeysUtf8([...bmp].reverse())).toEqual(sorted(bmp));
  });

  async function adversarialTree(root: string): Promise<string[]> {
    const keys: string[] = [];
    // Every name as a file next to its siblings as directories, and the other way round in
    // the next top directory; 20 top directories so that jobs > 1 hands subtrees to workers.
    for (let t = 0; t < 20; t++) {
      const top = `top${String(t).padStart(2, "0")}`;
      for (const [i, n] of names.entries()) {
        if ((i + t) % 2 === 0) {
          keys.push(`${top}/${n}/${n}`, `${top}/${n}/${names[(i + 1) % names.length] ?? ""}`);
        } else {
          keys.push(`${top}/${n}`);
        }
      }
      keys.push(`${top}/d\\${t}/x\n${t}`, `${top}/d\\${t}\r/y`); // characters to escape
    }
    keys.push("a", "a-b", "a0", "😀", "\uFFFD-real");
    for (const key of new Set(keys)) await touch(root, key);
    return [...new Set(keys)];
  }

  it("the walk yields every key in UTF-8 byte order without sorting afterwards", async () => {
    const root = join(base, "tree");
    const expected = await adversarialTree(root);
    const stats = newWalkStats();
    const walked = [...walkKeys(root, stats)];
    expect(walked).toEqual(sorted(expected));
    expect(stats.files).toBe(expected.length);
  });

  it("jobs 1 and worker threads write byte-identical chunks, split across subtrees", async () => {
    const root = join(base, "tree");
    const expected = await adversarialTree(root);
    expect(chooseDelegateDepth(root, 2)).toBe(1);
    // Also with batches of 4 entries, so that restarts cross from workers to the main thread.
    for (const dirBatchSize of [undefined, 4]) {
      const outputs: string[][] = [];
      for (const jobs of [1, 2, 3]) {
        const out = join(base, `out-${jobs}-${dirBatchSize ?? "whole"}`);
        const summary = await runS3find({
          directory: root,
          outputDir: out,
          chunkSize: 7,
          jobs,
          dirBatchSize,
        });
        expect(summary.files).toBe(expected.length);
        expect(summary.errors).toBe(0);
        const { keys, chunks } = await readChunks(out); // each chunk strictly sorted
        expect(sorted(keys)).toEqual(sorted(expected));
        if (dirBatchSize === undefined) {
          // One global order, cut into full chunks (the last excepted).
          expect(keys).toEqual(sorted(expected));
          expect(chunks.slice(0, -1).every((c) => c.length === 7)).toBe(true);
        } else {
          expect(chunks.some((c) => c.length < 7)).toBe(true); // restarts cut chunks early
        }
        const texts: string[] = [];
        for (const file of await listFilesIn(out)) texts.push(await readFile(file, "utf8"));
        outputs.push(texts);
      }
      expect(outputs[1]).toEqual(outputs[0]);
      expect(outputs[2]).toEqual(outputs[0]);
    }
    // Six runs, four of them starting worker threads that load TypeScript through tsx.
  }, 120_000);

  it("a directory larger than one batch is read in sorted batches, each starting a chunk", async () => {
    const root = join(base, "tree");
    const expected: string[] = [];
    for (let i = 0; i < 11; i++) expected.push(`big/f${String(i).padStart(2, "0")}`);
    expected.push("big/sub/x", "big/sub/y", "big/zsub/only", "before", "zafter");
    for (const key of expected) await touch(root, key);

    const stats = newWalkStats();
    const runs = [...walkRuns(root, stats, { batchEntries: 4 })];
    const keys = runs.flatMap((r) =>
      "subtree" in r ? [] : r.names.slice(r.start, r.end).map((n) => r.prefix + n),
    );
    expect(sorted(keys)).toEqual(sorted(expected));
    expect(new Set(keys).size).toBe(keys.length);
    // big/ has 13 entries: batches of 4 → three restarts.
    expect(runs.filter((r) => "restart" in r && r.restart)).toHaveLength(3);

    const out = join(base, "out");
    const summary = await runS3find({
      directory: root,
      outputDir: out,
      chunkSize: 5,
      dirBatchSize: 4,
      jobs: 1,
    });
    expect(summary.files).toBe(expected.length);
    const { keys: written, chunks } = await readChunks(out); // each chunk strictly sorted
    expect(sorted(written)).toEqual(sorted(expected));
    expect(chunks.every((c) => c.length <= 5)).toBe(true);
  });
});

describe("runS3find on a generated tree", () => {
  it("emits exactly the regular files, chunked, each chunk sorted, awkward names intact", async () => {
    const root = join(base, "tree");
    const expected = [
      "top.txt",
      "a/b/c/deep.bin",
      "a/b/sibling",
      "with space/file name.txt",
      "unicode/caf\u00e9", // NFC
      "unicode/cafe\u0301", // NFD, side by side: two different keys
      "unicode/日本語/😀.png",
      "weird/new\nline",
      "weird/back\\slash",
      "weird/carriage\rreturn",
      "weird/\\n-looks-escaped",
      "a-b",
      "a.b",
      "a0",
    ];
    for (const key of expected) await touch(root, key);
    await mkdir(join(root, "empty", "nested-empty"), { recursive: true });
    // A symlink loop and links to files and directories: never followed, never emitted.
    await symlink("..", join(root, "a", "loop"));
    await symlink(root, join(root, "a", "b", "root-loop"));
    await symlink("../top.txt", join(root, "a", "link-to-file"));
    execFileSync("mkfifo", [join(root, "a", "fifo")]);

    const out = join(base, "out");
    const issues: WalkIssue[] = [];
    const summary = await runS3find({
      directory: root,
      outputDir: out,
      chunkSize: 4,
      jobs: 2,
      onIssue: (i) => issues.push(i),
    });
    expect(issues).toEqual([]);
    expect(summary).toMatchObject({
      files: expected.length,
      errors: 0,
      symlinks: 3,
      others: 1,
      chunks: Math.ceil(expected.length / 4),
    });
    // root, a, a/b, a/b/c, with space, unicode, unicode/日本語, weird, empty, empty/nested-empty
    expect(summary.directories).toBe(10);

    const names = await readdir(out);
    expect(names.sort()).toEqual([
      "keys-000001.txt",
      "keys-000002.txt",
      "keys-000003.txt",
      "keys-000004.txt",
    ]);
    const { keys, chunks } = await readChunks(out);
    expect(sorted(keys)).toEqual(sorted(expected));
    expect(chunks.map((c) => c.length)).toEqual([4, 4, 4, 2]);
  });

  it("an empty tree writes no chunk", async () => {
    const root = join(base, "tree");
    await mkdir(join(root, "only", "dirs"), { recursive: true });
    const out = join(base, "out");
    const summary = await runS3find({ directory: root, outputDir: out });
    expect(summary.files).toBe(0);
    expect(summary.chunks).toBe(0);
    expect(await readdir(out)).toEqual([]);
  });

  it("--later-than keeps only files modified within N days", async () => {
    const root = join(base, "tree");
    const now = Date.UTC(2025, 0, 31, 12);
    const day = 86_400_000;
    await touch(root, "new/today", now - 1000);
    await touch(root, "new/six-days", now - 6 * day);
    await touch(root, "old/eight-days", now - 8 * day);
    await touch(root, "old/a-year", now - 365 * day);
    await touch(root, "edge/seven-days-minus-a-minute", now - 7 * day + 60_000);
    await touch(root, "edge/seven-days-plus-a-minute", now - 7 * day - 60_000);
    const out = join(base, "out");
    const summary = await runS3find({
      directory: root,
      outputDir: out,
      laterThanDays: 7,
      nowMs: now,
    });
    expect(summary.olderThanCutoff).toBe(3);
    const { keys } = await readChunks(out);
    expect(sorted(keys)).toEqual(
      sorted(["new/today", "new/six-days", "edge/seven-days-minus-a-minute"]),
    );
  });

  it("refuses a non-empty output dir; --force removes only the old run's chunks", async () => {
    const root = join(base, "tree");
    await touch(root, "one");
    const out = join(base, "out");
    await mkdir(out);
    await writeListFile(join(out, "keys-000007.txt"), ["stale/key"]);
    await writeFile(join(out, ".keys-000008.txt.tmp-1-dead"), "half\n");
    await writeFile(join(out, "migrate.log"), "kept\n");
    await expect(runS3find({ directory: root, outputDir: out })).rejects.toThrow(S3findUsageError);
    const summary = await runS3find({ directory: root, outputDir: out, force: true });
    expect(summary.removedOldChunks).toBe(1);
    expect((await readdir(out)).sort()).toEqual(["keys-000001.txt", "migrate.log"]);
    const { keys } = await readChunks(out);
    expect(keys).toEqual(["one"]);
  });

  it("does not list its own output when output_dir is inside the tree", async () => {
    const root = join(base, "tree");
    await touch(root, "data/x");
    const summary = await runS3find({
      directory: root,
      outputDir: join(root, "lists"),
      chunkSize: 1,
    });
    expect(summary.files).toBe(1);
    const { keys } = await readChunks(join(root, "lists"));
    expect(keys).toEqual(["data/x"]);
  });

  it("skips the --skip-dir directories (a server's bookkeeping) and only those", async () => {
    const root = join(base, "tree");
    await touch(root, ".sgwtmp/multipart/abc/1");
    await touch(root, "keep/.sgwtmp/x"); // the same name deeper down is an ordinary prefix
    await touch(root, "a/b/skipme/y");
    await touch(root, "a/b/z");
    const summary = await runS3find({
      directory: root,
      outputDir: join(base, "out"),
      skipDirs: [".sgwtmp", "./a/b/skipme/"],
    });
    expect(summary.files).toBe(2);
    const { keys } = await readChunks(join(base, "out"));
    expect(keys).toEqual(["a/b/z", "keep/.sgwtmp/x"]);
    await expect(
      runS3find({ directory: root, outputDir: join(base, "o2"), skipDirs: ["../up"] }),
    ).rejects.toThrow(S3findUsageError);
  });

  it("reports and skips names that are not valid UTF-8, keeps a genuine U+FFFD name", async () => {
    const root = join(base, "tree");
    await mkdir(root);
    const rootBuf = Buffer.from(root + "/");
    await writeFile(Buffer.concat([rootBuf, Buffer.from([0x62, 0x61, 0x64, 0xff])]), "x");
    await mkdir(Buffer.concat([rootBuf, Buffer.from([0xc3, 0x28])]));
    await writeFile(
      Buffer.concat([rootBuf, Buffer.from([0xc3, 0x28]), Buffer.from("/inside")]),
      "x",
    );
    await touch(root, "real-\uFFFD-char");
    await touch(root, "fine");
    const issues: WalkIssue[] = [];
    const out = join(base, "out");
    const summary = await runS3find({
      directory: root,
      outputDir: out,
      onIssue: (i) => issues.push(i),
    });
    expect(issues.map((i) => i.kind)).toEqual(["invalid-utf8", "invalid-utf8"]);
    expect(summary.errors).toBe(2);
    const { keys } = await readChunks(out);
    expect(sorted(keys)).toEqual(sorted(["fine", "real-\uFFFD-char"]));
  });
});

describe("walkKeys when the tree changes mid-walk", () => {
  it("a directory that vanishes or is replaced by a file is reported, not fatal", async () => {
    const root = join(base, "tree");
    for (const d of ["x", "y", "z"]) await touch(root, `${d}/f`);
    const stats = newWalkStats();
    const issues: WalkIssue[] = [];
    const keys: string[] = [];
    for (const key of walkKeys(root, stats, { onIssue: (i) => issues.push(i) })) {
      if (keys.length === 0) {
        // The first key comes from one of x, y, z; the other two are still queued.
        const others = ["x", "y", "z"].filter((d) => !key.startsWith(`${d}/`));
        await rm(join(root, others[0] ?? ""), { recursive: true });
        await rm(join(root, others[1] ?? ""), { recursive: true });
        await writeFile(join(root, others[1] ?? ""), "now a file");
      }
      keys.push(key);
    }
    expect(keys).toHaveLength(1);
    expect(issues.map((i) => [i.kind, i.reason]).sort()).toEqual([
      ["vanished", "ENOENT"],
      ["vanished", "ENOTDIR"],
    ]);
    expect(stats.errors).toBe(2);
  });

  it("files that vanish before their lstat (-later-than) are reported, not fatal", async () => {
    const root = join(base, "tree");
    for (const f of ["a", "b", "c", "d"]) await touch(root, `dir/${f}`);
    const stats = newWalkStats();
    const issues: WalkIssue[] = [];
    const keys: string[] = [];
    for (const key of walkKeys(root, stats, {
      modifiedSinceMs: 0,
      onIssue: (i) => issues.push(i),
    })) {
      // The directory's entries were read in one batch; delete the rest of them now.
      if (keys.length === 0) {
        for (const f of ["a", "b", "c", "d"]) await rm(join(root, "dir", f), { force: true });
      }
      keys.push(key);
    }
    expect(keys).toHaveLength(1);
    expect(issues).toHaveLength(3);
    expect(issues.every((i) => i.kind === "vanished")).toBe(true);
  });
});

function runCli(args: string[]) {
  const node = [process.execPath, "--import", "tsx", CLI, ...args];
  return spawnSync(node[0] ?? "", node.slice(1), { cwd: REPO, encoding: "utf8", timeout: 60_000 });
}

const NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/**
 * Runs the s3find CLI as nobody. That user may not be able to enter the checkout (root's home
 * is mode 700) nor reach the Node binary when it sits there too (.tools/node), so the CLI and its
 * walk worker are bundled into `dir`, with a copy of Node when nobody cannot run ours.
 */
async function runCliAsNobody(dir: string, args: string[]) {
  await mkdir(dir, { mode: 0o755 });
  await writeFile(join(dir, "package.json"), '{ "type": "module" }\n');
  // walk-pool.ts starts ./walk-worker.js next to the running module when not run from source.
  await build({
    entryPoints: [
      { in: CLI, out: "s3find" },
      { in: join(REPO, "s3find", "walk-worker.ts"), out: "walk-worker" },
    ],
    outdir: dir,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "error",
    // A CommonJS dependency bundled into ESM still calls require() for Node's modules.
    banner: {
      js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);',
    },
  });
  let node = process.execPath;
  const probe = spawnSync(NOBODY[0] ?? "", [...NOBODY.slice(1), node, "-e", ""], {
    timeout: 30_000,
  });
  if (probe.status !== 0) {
    node = join(dir, "node");
    await copyFile(process.execPath, node);
    await chmod(node, 0o755);
  }
  const cmd = [...NOBODY, node, join(dir, "s3find.js"), ...args];
  return spawnSync(cmd[0] ?? "", cmd.slice(1), { cwd: dir, encoding: "utf8", timeout: 60_000 });
}

describe("s3find CLI", () => {
  it("bad arguments: one clear line on stderr, exit 2", async () => {
    const missing = runCli([]);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toMatch(/^s3find: missing required argument/);

    const badChunk = runCli([base, join(base, "o"), "--chunk-size", "0"]);
    expect(badChunk.status).toBe(2);
    expect(badChunk.stderr.trim().split("\n")).toHaveLength(1);

    const notDir = runCli([join(base, "nope"), join(base, "o")]);
    expect(notDir.status).toBe(2);
    expect(notDir.stderr.trim()).toMatch(/^s3find: cannot read directory .*ENOENT$/);

    await mkdir(join(base, "full"));
    await writeFile(join(base, "full", "keys-000001.txt"), "k\n");
    const notEmpty = runCli([base, join(base, "full")]);
    expect(notEmpty.status).toBe(2);
    expect(notEmpty.stderr).toMatch(/not empty.*--force/);

    const help = runCli(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/later-than/);
  });

  it("accepts -later-than with one dash and prints a JSON summary", async () => {
    const root = join(base, "tree");
    await touch(root, "recent");
    await touch(root, "ancient", Date.now() - 30 * 86_400_000);
    const out = join(base, "out");
    await touch(root, ".sgwtmp/part");
    const res = runCli([
      root,
      out,
      "-later-than",
      "2",
      "--json",
      "--jobs",
      "1",
      "--skip-dir",
      ".sgwtmp",
    ]);
    expect(res.stderr).toMatch(/s3find: done: files=1 /);
    expect(res.status).toBe(0);
    const summary = JSON.parse(res.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ files: 1, olderThanCutoff: 1, chunks: 1, laterThanDays: 2 });
    const { keys } = await readChunks(out);
    expect(keys).toEqual(["recent"]);
  });

  it("an unreadable directory (run as nobody via setpriv) is reported, the rest listed, exit 1", async () => {
    // We run as root, which reads any directory; dropping to nobody makes mode 000 bite.
    await chmod(base, 0o755);
    const root = join(base, "tree");
    await touch(root, "ok/visible");
    await touch(root, "secret/hidden");
    await chmod(join(root, "secret"), 0o000);
    const out = join(base, "out");
    await mkdir(out);
    await chown(out, 65534, 65534);
    const res = await runCliAsNobody(join(base, "cli"), [root, out]);
    expect(res.stderr).toMatch(/s3find: unreadable: "secret": EACCES/);
    expect(res.status).toBe(1);
    const { keys } = await readChunks(out);
    expect(keys).toEqual(["ok/visible"]);
  });
});
