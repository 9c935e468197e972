/**
 * `s3migrate many <folder> [plan|run|retry|verify|status]`: one s3migrate child per YAML config
 * file in the folder (one bucket pair each), all in parallel. Each pair keeps its own logs and
 * resume point (its `dest-folder`) and its own metrics port (its `metrics-addr`); the outcome of
 * each pair is kept next to its config as `<name>.status.json` so `status` and `retry` know it.
 */
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import type { Writable } from "node:stream";
import { UsageError, loadConfigFile, resolveOptions, type MigrateOptions } from "./options.js";
import { runFiles } from "./run.js";

/** The sub-actions of `many`. */
export const MANY_ACTIONS = ["plan", "run", "retry", "verify", "status"] as const;

/** One sub-action of `many`. */
export type ManyAction = (typeof MANY_ACTIONS)[number];

/** Options of {@link runMany}. */
export interface ManyOptions {
  /** The folder of config files. */
  readonly folder: string;
  /** What to do. */
  readonly action: ManyAction;
  /** How to start this program again as a child: command and leading arguments. */
  readonly self: { readonly command: string; readonly args: readonly string[] };
  /** Environment for `${ENV}` expansion and for the children (secrets). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where the per-pair status lines go. */
  readonly out: Writable;
}

/** What is remembered of a pair's last run. */
export interface PairStatus {
  readonly action: ManyAction;
  readonly exitCode: number;
  readonly finishedAt: string;
  /** The last pass summary the child printed (JSON), if any. */
  readonly summary?: Record<string, unknown>;
  /** The child's last error line, if it failed without a summary. */
  readonly error?: string;
}

interface Pair {
  readonly name: string;
  readonly file: string;
  readonly opts: MigrateOptions;
}

function statusPath(folder: string, name: string): string {
  return join(folder, `${name}.status.json`);
}

async function readStatus(folder: string, name: string): Promise<PairStatus | undefined> {
  try {
    return JSON.parse(await readFile(statusPath(folder, name), "utf8")) as PairStatus;
  } catch {
    return undefined;
  }
}

async function loadPairs(folder: string, env: ManyOptions["env"]): Promise<Pair[]> {
  let names: string[];
  try {
    names = (await readdir(folder)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith(".")).sort();
  } catch {
    throw new UsageError(`many: cannot read folder ${folder}`);
  }
  if (names.length === 0) throw new UsageError(`many: no *.yaml config files in ${folder}`);
  const pairs: Pair[] = [];
  for (const n of names) {
    const file = resolve(folder, n);
    try {
      const opts = resolveOptions({
        cli: { config: file },
        file: await loadConfigFile(file, env),
        env,
      });
      pairs.push({ name: basename(n, extname(n)), file, opts });
    } catch (err) {
      throw new UsageError(`many: ${n}: ${(err as Error).message}`);
    }
  }
  // Pairs must not share logs or a metrics port.
  const logs = new Map<string, string>();
  const ports = new Map<string, string>();
  for (const p of pairs) {
    const log = resolve(runFiles(p.opts).migrateLog);
    const other = logs.get(log);
    if (other) throw new UsageError(`many: ${p.name} and ${other} write the same ${log}`);
    logs.set(log, p.name);
    if (p.opts.metricsAddr) {
      const o = ports.get(p.opts.metricsAddr);
      if (o)
        throw new UsageError(
          `many: ${p.name} and ${o} use the same metrics-addr ${p.opts.metricsAddr}`,
        );
      ports.set(p.opts.metricsAddr, p.name);
    }
  }
  return pairs;
}

/** One status line for a pair. */
export function formatPairLine(name: string, status: PairStatus | undefined): string {
  if (!status) return `${name}: never run`;
  const s = status.summary as
    { counters?: Record<string, number>; errors?: Record<string, number> } | undefined;
  const c = s?.counters;
  const verdict = status.exitCode === 0 ? "ok" : `FAILED (exit ${status.exitCode})`;
  const counts = c
    ? ` read=${c.obj ?? 0} copied=${c.upld ?? 0} exist=${c.exist ?? 0} ign=${c.ign ?? 0} skip(dn=${c.skipDn ?? 0} up=${c.skipUp ?? 0}) fail=${c.fail ?? 0}`
    : "";
  const err = status.error && status.exitCode !== 0 ? ` :: ${status.error}` : "";
  return `${name}: ${status.action} ${verdict}${counts}${err}`;
}

function runChild(options: ManyOptions, pair: Pair, extra: readonly string[]): Promise<PairStatus> {
  return new Promise((resolvePromise) => {
    const child = spawn(
      options.self.command,
      [...options.self.args, "-f", pair.file, "--json", ...extra],
      {
        env: options.env as NodeJS.ProcessEnv,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let summary: Record<string, unknown> | undefined;
    let errorLine: string | undefined;
    let outBuf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      outBuf += chunk;
      let nl = outBuf.indexOf("\n");
      while (nl >= 0) {
        const line = outBuf.slice(0, nl);
        outBuf = outBuf.slice(nl + 1);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.type === "summary") summary = j;
        } catch {
          // not a JSON line
        }
        nl = outBuf.indexOf("\n");
      }
    });
    let errBuf = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      errBuf = (errBuf + chunk).slice(-4096);
    });
    child.on("close", (code, signal) => {
      const lines = errBuf.split("\n").filter((l) => l.startsWith("s3migrate:"));
      errorLine = lines[lines.length - 1];
      resolvePromise({
        action: options.action,
        exitCode: code ?? (signal ? 128 : 1),
        finishedAt: new Date().toISOString(),
        ...(summary ? { summary } : {}),
        ...(errorLine ? { error: errorLine } : {}),
      });
    });
  });
}

/** Runs a `many` action; returns the exit code (0 when every pair is fine). */
export async function runMany(options: ManyOptions): Promise<number> {
  const pairs = await loadPairs(options.folder, options.env);
  const print = (line: string): void => void options.out.write(line + "\n");
  switch (options.action) {
    case "plan":
      for (const p of pairs) {
        const o = p.opts;
        const input = o.listSource ? "listing the source" : `lists ${o.srcFolder}`;
        print(
          `${p.name}: ${o.srcUrl}/${o.srcBucket} -> ${o.destUrl}/${o.destBucket} (${input}; logs in ${o.destFolder}` +
            `${o.hashCount > 1 ? `; shard ${o.hashValue}/${o.hashCount}` : ""}${o.metricsAddr ? `; metrics ${o.metricsAddr}` : ""})`,
        );
      }
      return 0;
    case "status": {
      let bad = 0;
      for (const p of pairs) {
        const st = await readStatus(options.folder, p.name);
        if (!st || st.exitCode !== 0) bad++;
        print(formatPairLine(p.name, st));
      }
      return bad > 0 ? 1 : 0;
    }
    default: {
      let chosen = pairs;
      let extra: string[] = [];
      if (options.action === "retry") {
        const statuses = await Promise.all(pairs.map((p) => readStatus(options.folder, p.name)));
        chosen = pairs.filter((_, i) => statuses[i] !== undefined && statuses[i]?.exitCode !== 0);
        if (chosen.length === 0) {
          print("nothing to retry: no pair failed");
          return 0;
        }
        extra = ["--resume"];
      } else if (options.action === "verify") {
        extra = ["--verify"];
      }
      const results = await Promise.all(
        chosen.map(async (p) => {
          const st = await runChild(options, p, extra);
          await writeFile(statusPath(options.folder, p.name), JSON.stringify(st, null, 2) + "\n");
          print(formatPairLine(p.name, st));
          return st.exitCode;
        }),
      );
      return results.some((c) => c !== 0) ? 1 : 0;
    }
  }
}
