/**
 * s3migrate's options, declared once as data. The CLI derives its commander flags from
 * {@link OPTION_TABLE}, the `-f/--config` YAML file uses the same names, and docs/s3migrate.md
 * is generated from it ({@link renderOptionsMarkdown}), so the three never drift apart.
 *
 * This module never reads `process.argv` or `process.env` itself: the CLI passes them in
 * (STYLE.md rule 6), which keeps every rule here testable.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";

/** How an option's text value is parsed. */
export type OptionType = "string" | "path" | "url" | "int" | "bool" | "bytes" | "addr";

/** One row of the option table. */
export interface OptionSpec {
  /** Property name in {@link MigrateOptions} and in the YAML config (as the kebab-case flag). */
  readonly name: keyof MigrateOptions;
  /** The long flag without dashes, e.g. `src-url`; also the YAML key. */
  readonly flag: string;
  /** An optional one-letter short flag. */
  readonly short?: string;
  /** How the value is parsed and checked. */
  readonly type: OptionType;
  /** Environment variable read when neither the command line nor the config file sets it. */
  readonly env?: string;
  /** The default, as the option's text form (documented verbatim). */
  readonly default?: string;
  /** A one-line help text. */
  readonly help: string;
  /** The value is a secret: never printed, never logged. */
  readonly secret?: boolean;
}

/** The resolved, validated options of one s3migrate run. */
export interface MigrateOptions {
  config?: string;
  srcUrl: string;
  srcBucket: string;
  srcKey: string;
  srcSecret: string;
  srcFolder?: string;
  srcCa?: string;
  listSource: boolean;
  destUrl: string;
  destBucket: string;
  destKey: string;
  destSecret: string;
  destFolder: string;
  destCa?: string;
  region: string;
  threads: number;
  hashCount: number;
  hashValue: number;
  startAfter?: string;
  resume: boolean;
  failedToFolder?: string;
  dryRun: boolean;
  first?: number;
  maxBps?: number;
  multipartThreshold: number;
  partSize: number;
  retries: number;
  verify: boolean;
  untilClean: boolean;
  allowUnconditional: boolean;
  json: boolean;
  metricsAddr?: string;
  progressInterval: number;
  timeout: number;
}

/** The option table: the single source of flags, YAML keys, env variables and docs. */
export const OPTION_TABLE: readonly OptionSpec[] = [
  {
    name: "config",
    flag: "config",
    short: "f",
    type: "path",
    help: "YAML file holding any of these options by their long name; ${ENV} is expanded, flags override it",
  },
  {
    name: "srcUrl",
    flag: "src-url",
    type: "url",
    env: "S3MIGRATE_SRC_URL",
    help: "Source S3 endpoint (http or https)",
  },
  { name: "srcBucket", flag: "src-bucket", type: "string", help: "Source bucket" },
  {
    name: "srcKey",
    flag: "src-key",
    type: "string",
    env: "S3MIGRATE_SRC_KEY",
    help: "Source access key id",
  },
  {
    name: "srcSecret",
    flag: "src-secret",
    type: "string",
    env: "S3MIGRATE_SRC_SECRET",
    secret: true,
    help: "Source secret key (prefer the environment variable or ${ENV} in the config file)",
  },
  {
    name: "srcFolder",
    flag: "src-folder",
    type: "path",
    help: "Folder of sorted source key lists (s3find output)",
  },
  { name: "srcCa", flag: "src-ca", type: "path", help: "PEM CA bundle trusted for the source" },
  {
    name: "listSource",
    flag: "list-source",
    type: "bool",
    default: "false",
    help: "List the source bucket with ListObjectsV2 instead of reading --src-folder",
  },
  {
    name: "destUrl",
    flag: "dest-url",
    type: "url",
    env: "S3MIGRATE_DEST_URL",
    help: "Target S3 endpoint (usually the gateway)",
  },
  { name: "destBucket", flag: "dest-bucket", type: "string", help: "Target bucket" },
  {
    name: "destKey",
    flag: "dest-key",
    type: "string",
    env: "S3MIGRATE_DEST_KEY",
    help: "Target access key id",
  },
  {
    name: "destSecret",
    flag: "dest-secret",
    type: "string",
    env: "S3MIGRATE_DEST_SECRET",
    secret: true,
    help: "Target secret key (prefer the environment variable or ${ENV} in the config file)",
  },
  {
    name: "destFolder",
    flag: "dest-folder",
    type: "path",
    help: "Folder of sorted target key lists (counted as exist); migrate.log, failed.log and summaries go here",
  },
  { name: "destCa", flag: "dest-ca", type: "path", help: "PEM CA bundle trusted for the target" },
  {
    name: "region",
    flag: "region",
    type: "string",
    env: "S3MIGRATE_REGION",
    default: "us-east-1",
    help: "SigV4 region of both endpoints",
  },
  {
    name: "threads",
    flag: "threads",
    type: "int",
    default: "16",
    help: "Objects copied in parallel (1..1024)",
  },
  {
    name: "hashCount",
    flag: "hash-count",
    type: "int",
    default: "1",
    help: "Number of shards (hosts) sharing the key space",
  },
  {
    name: "hashValue",
    flag: "hash-value",
    type: "int",
    default: "0",
    help: "This host's shard, 0..hash-count-1",
  },
  {
    name: "startAfter",
    flag: "start-after",
    type: "string",
    help: "Skip keys up to and including this key",
  },
  {
    name: "resume",
    flag: "resume",
    type: "bool",
    default: "false",
    help: "Continue after the last line of migrate.log",
  },
  {
    name: "failedToFolder",
    flag: "failed-to-folder",
    type: "path",
    help: "Turn failed.log of --dest-folder into a list folder DIR for a second run, then exit",
  },
  {
    name: "dryRun",
    flag: "dry-run",
    type: "bool",
    default: "false",
    help: "Read and count what would be copied; write nothing",
  },
  {
    name: "first",
    flag: "first",
    type: "int",
    help: "Stop after the first N keys read (after --start-after)",
  },
  {
    name: "maxBps",
    flag: "max-bps",
    type: "bytes",
    help: "Bandwidth cap for uploads, bytes/s (suffixes K, M, G; e.g. 50M)",
  },
  {
    name: "multipartThreshold",
    flag: "multipart-threshold",
    type: "bytes",
    default: "64M",
    help: "Objects larger than this (or multipart on the source) are copied by multipart upload",
  },
  {
    name: "partSize",
    flag: "part-size",
    type: "bytes",
    default: "16M",
    help: "Part size for sources that were not multipart (5M..5G)",
  },
  {
    name: "retries",
    flag: "retries",
    type: "int",
    default: "5",
    help: "Attempts per object before it goes to failed.log",
  },
  {
    name: "verify",
    flag: "verify",
    type: "bool",
    default: "false",
    help: "Compare every key on source and target; mismatches to verify.log",
  },
  {
    name: "untilClean",
    flag: "until-clean",
    type: "bool",
    default: "false",
    help: "Repeat differential passes until one copies nothing",
  },
  {
    name: "allowUnconditional",
    flag: "allow-unconditional",
    type: "bool",
    default: "false",
    help: "Run even if the target ignores If-None-Match (it could overwrite newer objects)",
  },
  {
    name: "json",
    flag: "json",
    type: "bool",
    default: "false",
    help: "Progress and summary as JSON lines",
  },
  {
    name: "metricsAddr",
    flag: "metrics-addr",
    type: "addr",
    help: "Serve Prometheus metrics on HOST:PORT",
  },
  {
    name: "progressInterval",
    flag: "progress-interval",
    type: "int",
    default: "5",
    help: "Seconds between progress lines when not on a terminal",
  },
  {
    name: "timeout",
    flag: "timeout",
    type: "int",
    default: "60",
    help: "Seconds without progress before a request is abandoned",
  },
];

/** A configuration or usage error: the CLI prints its one-line message and exits 2. */
export class UsageError extends Error {
  /** Creates a usage error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const BY_FLAG = new Map(OPTION_TABLE.map((spec) => [spec.flag, spec]));

/** Raw option values by property name, before parsing: text from argv/env, anything from YAML. */
export type RawOptions = Partial<Record<keyof MigrateOptions, unknown>>;

/**
 * Expands `${NAME}` in a config file's text from `env`. A missing variable is an error that
 * names it, so a secret never silently becomes an empty string. `$${` escapes a literal `${`.
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(
    /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (_m, escaped: string, name: string) => {
      if (escaped) return "${" + name + "}";
      const value = env[name];
      if (value === undefined)
        throw new UsageError(`config: environment variable ${name} is not set`);
      return value;
    },
  );
}

/** Parses a YAML config file's text (after `${ENV}` expansion) into raw options by property name. */
export function parseConfigText(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  source = "config",
): RawOptions {
  let doc: unknown;
  try {
    doc = parseYaml(expandEnv(text, env));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UsageError(`${source}: not valid YAML: ${msg}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(`${source}: expected a mapping of option names to values`);
  }
  const raw: RawOptions = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const spec = BY_FLAG.get(key);
    if (!spec || spec.name === "config") throw new UsageError(`${source}: unknown option "${key}"`);
    raw[spec.name] = value;
  }
  return raw;
}

/** Reads and parses a YAML config file. */
export async function loadConfigFile(
  path: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<RawOptions> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new UsageError(`config: cannot read ${path} (${code})`);
  }
  return parseConfigText(text, env, path);
}

const BYTE_SUFFIX: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** Parses a byte size such as `5242880`, `64M`, `1.5G` or `16MiB` (binary multiples). */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const mult = BYTE_SUFFIX[(m[2] ?? "").toUpperCase()];
  if (mult === undefined) return undefined;
  return Math.floor(Number(m[1]) * mult);
}

function parseValue(spec: OptionSpec, value: unknown, origin: string): unknown {
  const where = `--${spec.flag}${origin ? ` (${origin})` : ""}`;
  switch (spec.type) {
    case "bool": {
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "1" || value === "yes") return true;
      if (value === "false" || value === "0" || value === "no" || value === "") return false;
      throw new UsageError(`${where}: expected true or false, got "${String(value)}"`);
    }
    case "int": {
      const n = typeof value === "number" ? value : Number(String(value).trim());
      if (!Number.isSafeInteger(n) || String(value).trim() === "") {
        throw new UsageError(`${where}: expected an integer, got "${String(value)}"`);
      }
      return n;
    }
    case "bytes": {
      const n = typeof value === "number" ? value : parseBytes(String(value));
      if (n === undefined || !Number.isFinite(n) || n < 0) {
        throw new UsageError(`${where}: expected a byte size like 64M, got "${String(value)}"`);
      }
      return Math.floor(n);
    }
    case "url": {
      const text = String(value);
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new UsageError(`${where}: not a URL: "${text}"`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new UsageError(`${where}: expected an http:// or https:// URL`);
      }
      return text.replace(/\/+$/, "");
    }
    case "addr": {
      const text = String(value);
      const m = /^(.*):(\d{1,5})$/.exec(text);
      if (!m || Number(m[2]) > 65535)
        throw new UsageError(`${where}: expected HOST:PORT, got "${text}"`);
      return text;
    }
    default:
      if (typeof value === "object" && value !== null) {
        throw new UsageError(`${where}: expected a string`);
      }
      return String(value);
  }
}

/** Where each value came from, in decreasing precedence. */
export interface OptionSources {
  /** Values given on the command line (by property name). */
  readonly cli: RawOptions;
  /** Values from the `-f/--config` file. */
  readonly file?: RawOptions;
  /** The process environment, for the options that name an `env` variable. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Merges command line, config file, environment and defaults (in that precedence), parses
 * every value by its type and validates the combination. Throws {@link UsageError} with one line.
 */
export function resolveOptions(sources: OptionSources): MigrateOptions {
  const out: Record<string, unknown> = {};
  for (const spec of OPTION_TABLE) {
    let value: unknown;
    let origin = "";
    if (sources.cli[spec.name] !== undefined) {
      value = sources.cli[spec.name];
    } else if (sources.file?.[spec.name] !== undefined && sources.file[spec.name] !== null) {
      value = sources.file[spec.name];
      origin = "config";
    } else if (spec.env && sources.env[spec.env] !== undefined && sources.env[spec.env] !== "") {
      value = sources.env[spec.env];
      origin = spec.env;
    } else if (spec.default !== undefined) {
      value = spec.default;
    }
    if (value !== undefined) out[spec.name] = parseValue(spec, value, origin);
  }
  const opts = out as unknown as MigrateOptions;
  validate(opts);
  return opts;
}

function need(opts: MigrateOptions, names: (keyof MigrateOptions)[]): void {
  const missing = names.filter((n) => opts[n] === undefined || opts[n] === "");
  if (missing.length === 0) return;
  const flags = missing.map((n) => {
    const spec = OPTION_TABLE.find((s) => s.name === n);
    return spec ? `--${spec.flag}${spec.env ? ` (or ${spec.env})` : ""}` : n;
  });
  throw new UsageError(
    `missing required option${flags.length > 1 ? "s" : ""}: ${flags.join(", ")}`,
  );
}

function validate(opts: MigrateOptions): void {
  if (opts.failedToFolder !== undefined) {
    // Conversion mode only needs to know where failed.log lives.
    need(opts, ["destFolder"]);
    return;
  }
  need(opts, [
    "srcUrl",
    "srcBucket",
    "srcKey",
    "srcSecret",
    "destUrl",
    "destBucket",
    "destKey",
    "destSecret",
    "destFolder",
  ]);
  if (!opts.listSource && !opts.srcFolder) {
    throw new UsageError(
      "missing required option: --src-folder (or --list-source to list the source bucket)",
    );
  }
  if (opts.threads < 1 || opts.threads > 1024)
    throw new UsageError("--threads: must be between 1 and 1024");
  if (opts.hashCount < 1) throw new UsageError("--hash-count: must be at least 1");
  if (opts.hashValue < 0 || opts.hashValue >= opts.hashCount) {
    throw new UsageError(
      `--hash-value: must be between 0 and ${opts.hashCount - 1} (--hash-count ${opts.hashCount})`,
    );
  }
  if (opts.first !== undefined && opts.first < 1)
    throw new UsageError("--first: must be at least 1");
  if (opts.retries < 1 || opts.retries > 100)
    throw new UsageError("--retries: must be between 1 and 100");
  if (opts.partSize < 5 * 1024 ** 2 || opts.partSize > 5 * 1024 ** 3) {
    throw new UsageError("--part-size: must be between 5M and 5G (S3 part size limits)");
  }
  if (opts.multipartThreshold < 5 * 1024 ** 2)
    throw new UsageError("--multipart-threshold: must be at least 5M");
  if (opts.maxBps !== undefined && opts.maxBps < 1024)
    throw new UsageError("--max-bps: must be at least 1K");
  if (opts.progressInterval < 1)
    throw new UsageError("--progress-interval: must be at least 1 second");
  if (opts.timeout < 1) throw new UsageError("--timeout: must be at least 1 second");
  if (opts.resume && opts.startAfter !== undefined) {
    throw new UsageError(
      "--resume and --start-after are exclusive (--resume takes its start from migrate.log)",
    );
  }
  if (opts.verify && opts.dryRun) throw new UsageError("--verify and --dry-run are exclusive");
}

/** Renders the option table as a Markdown table for docs/s3migrate.md. */
export function renderOptionsMarkdown(): string {
  const rows = OPTION_TABLE.map((s) => {
    const flag = `${s.short ? `\`-${s.short}\`, ` : ""}\`--${s.flag}\``;
    const value = s.type === "bool" ? "" : ` ${s.type.toUpperCase()}`;
    return `| ${flag}${value} | ${s.env ? `\`${s.env}\`` : ""} | ${s.default ?? ""} | ${s.help.replace(/\|/g, "\\|")} |`;
  });
  return ["| option | env | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

/** A copy of the options safe to print or log: secrets replaced by `***`. */
export function redactOptions(opts: MigrateOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...opts };
  for (const spec of OPTION_TABLE)
    if (spec.secret && out[spec.name] !== undefined) out[spec.name] = "***";
  return out;
}
