/**
 * s3find benchmark: generates trees of N empty files under /tmp and compares, in the same run,
 * `s3find <tree> <out>` (built JS) with `find <tree> -type f | LC_ALL=C sort > file`: wall time
 * ratio (goal ≤ 1.2×) and peak RSS via /usr/bin/time -v (goal: flat in tree size, ≤ 512 MiB).
 *
 * Usage: npm run bench:s3find -- [--sizes 1000000,3000000] [--rounds 2] [--keep]
 * Trees are deleted afterwards unless --keep (an existing tree of the right size is reused).
 * Warm page cache for both tools: each size is walked once by `find` before measuring, then
 * the tools alternate. Also measured: Node start-up alone (`node -e 0`, and the CLI's
 * `--version`, which loads its modules), s3find with --jobs 1, and the load average, since
 * the figures mean little on a machine busy with other work.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  existsSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, loadavg } from "node:os";
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
  const marker = `${root}.complete`; // beside the tree, so neither tool lists it
  if (existsSync(marker) && readFileSync(marker, "utf8") === String(files)) return;
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
  writeFileSync(marker, String(files));
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
  const load = (): string =>
    loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
  console.log(`cores=${availableParallelism()} node=${process.version} rounds=${rounds}`);
  console.log(`load average at start: ${load()}`);
  const bare = Math.min(...[0, 1, 2].map(() => timed("node -e 0").seconds));
  const cliStart = Math.min(...[0, 1, 2].map(() => timed(`node '${cli}' --version`).seconds));
  console.log(
    `node start-up: node -e 0 ${bare.toFixed(2)}s, s3find --version ${cliStart.toFixed(2)}s`,
  );
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
    const tools: Array<[string, string]> = [
      ["find|sort", findCmd],
      ["s3find", s3findCmd],
      ["s3find -j1", `${s3findCmd} --jobs 1`],
    ];
    timed(findCmd); // warm the page cache and dentry cache for both tools
    const runs = new Map(tools.map(([name]) => [name, [] as Measure[]]));
    for (let r = 0; r < rounds; r++) {
      for (const [name, cmd] of tools) {
        const m = timed(cmd);
        console.log(
          `${String(n).padEnd(10)} ${name.padEnd(12)}  ${m.seconds.toFixed(2).padStart(6)}  ${m.maxRssMiB.toFixed(0).padStart(6)}`,
        );
        runs.get(name)?.push(m);
      }
    }
    // Best and median: on a shared machine the best shows what the tool can do, the median
    // what a run usually gets.
    const summary = (name: string): { best: number; median: number; rss: number } => {
      const ms = runs.get(name) ?? [];
      const secs = ms.map((m) => m.seconds).sort((a, b) => a - b);
      const median = secs[Math.floor((secs.length - 1) / 2)] ?? NaN;
      return {
        best: secs[0] ?? NaN,
        median,
        rss: Math.max(...ms.map((m) => m.maxRssMiB)),
      };
    };
    const base = summary("find|sort");
    for (const [name] of tools.slice(1)) {
      const b = summary(name);
      rows.push(
        `${n} files: ${name}/find|sort wall ratio best ${(b.best / base.best).toFixed(2)}x ` +
          `(${b.best.toFixed(2)}s vs ${base.best.toFixed(2)}s), median ` +
          `${(b.median / base.median).toFixed(2)}x (${b.median.toFixed(2)}s vs ` +
          `${base.median.toFixed(2)}s), peak RSS ${name} ${b.rss.toFixed(0)} MiB, ` +
          `find|sort ${base.rss.toFixed(0)} MiB`,
      );
    }
    rmSync(chunksOut, { recursive: true, force: true });
    rmSync(listOut, { force: true });
    if (!values.keep) rmSync(tree, { recursive: true, force: true });
    if (!values.keep) rmSync(`${tree}.complete`, { force: true });
  }
  console.log(`load average at end: ${load()}`);
  console.log(rows.join("\n"));
  if (!values.keep) rmSync(WORK, { recursive: true, force: true });
}

main();
