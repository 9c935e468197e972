/**
 * s3find benchmark: generates trees of N empty files under /tmp and compares, in the same run,
 * `s3find <tree> <out>` (built JS) with `find <tree> -type f | LC_ALL=C sort > file`: wall time
 * ratio (goal ≤ 1.2×) and peak RSS via /usr/bin/time -v (goal: flat in tree size, ≤ 512 MiB).
 *
 * Usage: npm run bench:s3find -- [--sizes 1000000,3000000] [--rounds 2] [--keep]
 * Trees are deleted afterwards unless --keep. Warm page cache for both tools: each size is
 * walked once by `find` before measuring, then the tools alternate.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, mkdirSync, openSync, rmSync, existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const REPO = join(import.meta.dirname, "..", "..");
const WORK = "/tmp/s3find-bench";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000000" },
    rounds: { type: "string", default: "2" },
    keep: { type: "boolean", default: false },
  },
});
const sizes = (values.sizes ?? "1000000").split(",").map(Number);
const rounds = Number(values.rounds);

interface Measure {
  seconds: number;
  maxRssMiB: number;
}

/** Runs a shell command under /usr/bin/time -v; returns wall seconds and the peak RSS. */
function timed(command: string): Measure {
  const res = spawnSync("/usr/bin/time", ["-v", "sh", "-c", command], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`failed (${res.status}): ${command}\n${res.stderr}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    res.stderr,
  );
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(res.stderr);
  if (!wall || !rss) throw new Error(`no /usr/bin/time figures:\n${res.stderr}`);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return { seconds, maxRssMiB: Number(rss[1]) / 1024 };
}

/** A tree of `files` empty files: 100 files a directory, two levels of directories. */
function generate(root: string, files: number): void {
  rmSync(root, { recursive: true, force: true });
  const perDir = 100;
  const dirs = Math.ceil(files / perDir);
  const fanout = Math.ceil(Math.sqrt(dirs));
  let made = 0;
  for (let d = 0; d < dirs && made < files; d++) {
    const dir = join(root, `dir-${Math.floor(d / fanout)}`, `sub ${d % fanout}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      closeSync(openSync(join(dir, `object-${f}-${(made * 2654435761) % 1e9}.dat`), "w"));
    }
  }
}

function build(): string {
  // Compile into the bench folder so a half-built dist/ of other work does not matter; tsc
  // still emits when unrelated files have type errors.
  const out = join(WORK, "build");
  rmSync(out, { recursive: true, force: true });
  spawnSync("npx", ["tsc", "-p", "tsconfig.build.json", "--outDir", out], { cwd: REPO });
  const cli = join(out, "cli", "s3find.js");
  if (!existsSync(cli)) throw new Error("build of cli/s3find.ts failed");
  copyFileSync(join(REPO, "package.json"), join(out, "package.json"));
  execFileSync("ln", ["-sfn", join(REPO, "node_modules"), join(out, "node_modules")]);
  return cli;
}

function main(): void {
  mkdirSync(WORK, { recursive: true });
  const cli = build();
  console.log(`cores=${availableParallelism()} node=${process.version} rounds=${rounds}`);
  console.log("files      tool          wall_s  peak_rss_MiB");
  const rows: string[] = [];
  for (const n of sizes) {
    const tree = join(WORK, `tree-${n}`);
    const t0 = performance.now();
    generate(tree, n);
    console.log(`(generated ${n} files in ${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    const listOut = join(WORK, "find-sort.txt");
    const chunksOut = join(WORK, "chunks");
    const findCmd = `find '${tree}' -type f | LC_ALL=C sort > '${listOut}'`;
    const s3findCmd = `node '${cli}' '${tree}' '${chunksOut}' --force --progress-interval 0`;
    timed(findCmd); // warm the page cache and dentry cache for both tools
    let best = { find: Infinity, s3find: Infinity, findRss: 0, s3findRss: 0 };
    for (let r = 0; r < rounds; r++) {
      const a = timed(findCmd);
      const b = timed(s3findCmd);
      console.log(
        `${String(n).padEnd(10)} find|sort     ${a.seconds.toFixed(2).padStart(6)}  ${a.maxRssMiB.toFixed(0).padStart(6)}\n` +
          `${String(n).padEnd(10)} s3find        ${b.seconds.toFixed(2).padStart(6)}  ${b.maxRssMiB.toFixed(0).padStart(6)}`,
      );
      best = {
        find: Math.min(best.find, a.seconds),
        s3find: Math.min(best.s3find, b.seconds),
        findRss: Math.max(best.findRss, a.maxRssMiB),
        s3findRss: Math.max(best.s3findRss, b.maxRssMiB),
      };
    }
    rows.push(
      `${n} files: s3find/find|sort wall ratio ${(best.s3find / best.find).toFixed(2)}x ` +
        `(best ${best.s3find.toFixed(2)}s vs ${best.find.toFixed(2)}s), ` +
        `peak RSS s3find ${best.s3findRss.toFixed(0)} MiB, find|sort ${best.findRss.toFixed(0)} MiB`,
    );
    rmSync(chunksOut, { recursive: true, force: true });
    rmSync(listOut, { force: true });
    if (!values.keep) rmSync(tree, { recursive: true, force: true });
  }
  console.log(rows.join("\n"));
  if (!values.keep) rmSync(WORK, { recursive: true, force: true });
}

main();
