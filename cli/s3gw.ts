#!/usr/bin/env node
/**
 * `s3gw`: the gateway (`serve`) and its admin CLI (`bucket migrate …`). Argument parsing only;
 * the work is in gateway/. Every failure prints one line and exits non-zero.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { Command, Option } from "commander";
import { AdminClient, type UpdateRequest } from "../gateway/admin/client.js";
import type { PublicBucketState, StateStatus } from "../gateway/admin/protocol.js";
import { S3AttachValidator } from "../gateway/admin/attach-validator.js";
import { loadConfigFile } from "../gateway/config.js";
import { createLogger } from "../gateway/logger.js";
import { s3ListenerFactory } from "../gateway/front/listener.js";
import { startGateway, type S3ListenerFactory } from "../gateway/server.js";
import { MIGRATION_MODES, type MigrationMode } from "../gateway/state/transitions.js";
import { packageVersion } from "./version.js";

/** The S3 endpoint (gateway/front/listener.ts) that `serve` starts beside the admin API. */
const S3_LISTENER: S3ListenerFactory | undefined = s3ListenerFactory();

/** A failure reported as one line with this exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface AdminFlags {
  endpoint: string;
  accessKey?: string;
  secretKey?: string;
  region: string;
  adminCa?: string;
  json?: boolean;
}

const program = new Command("s3gw")
  .description(
    "The S3 migration gateway: a TLS S3 front end with per-bucket migration modes, and its admin CLI.",
  )
  .version(packageVersion())

  .configureOutput({ outputError: (text, write) => write(text) });

program
  .command("serve")
  .description("run the gateway from a YAML configuration (see docs/configuration.md)")
  .requiredOption("-c, --config <file>", "gateway configuration file")
  .addOption(
    new Option("--log-level <level>", "pino log level")
      .choices(["fatal", "error", "warn", "info", "debug", "trace"])
      .default("info"),
  )
  .action(async (opts: { config: string; logLevel: string }) => {
    // An invalid config is reported before anything listens.
    const config = await loadConfigFile(opts.config, { env: process.env }).catch((err: unknown) => {
      throw new CliError((err as Error).message, 2);
    });
    const logger = createLogger({ level: opts.logLevel });
    const gateway = await startGateway({
      config,
      logger,
      validator: new S3AttachValidator({ target: config.target }),
      ...(S3_LISTENER ? { s3Listener: S3_LISTENER } : {}),
    });
    await new Promise<void>((resolveStop) => {
      const stop = (signal: string): void => {
        logger.info({ signal }, "shutting down");
        gateway.close().then(resolveStop, (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exitCode = 1;
          resolveStop();
        });
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
  });

const bucket = program.command("bucket").description("bucket administration");
const migrate = bucket
  .command("migrate")
  .description(
    "attach buckets to their source cluster and move them through ready → forward → migrate",
  );

/** Adds the options every admin command shares. */
function adminCommand(name: string, description: string): Command {
  return migrate
    .command(name)
    .description(description)
    .addOption(
      new Option("--endpoint <url>", "admin API URL")
        .env("S3GW_ADMIN_URL")
        .default("http://127.0.0.1:9444"),
    )
    .addOption(new Option("--access-key <key>", "admin access key").env("S3GW_ACCESS_KEY"))
    .addOption(new Option("--secret-key <secret>", "admin secret key").env("S3GW_SECRET_KEY"))
    .addOption(
      new Option("--region <region>", "the gateway's region (signature scope)")
        .env("S3GW_REGION")
        .default("us-east-1"),
    )
    .addOption(
      new Option("--admin-ca <file>", "PEM CA for an admin API served over TLS").env(
        "S3GW_ADMIN_CA",
      ),
    )
    .option("--json", "print JSON for scripts");
}

async function client(flags: AdminFlags): Promise<AdminClient> {
  if (!flags.accessKey || !flags.secretKey) {
    throw new CliError(
      "admin credentials missing: set S3GW_ACCESS_KEY and S3GW_SECRET_KEY (or --access-key/--secret-key)",
    );
  }
  const ca = flags.adminCa ? await readText(flags.adminCa, "--admin-ca") : undefined;
  return new AdminClient({
    endpoint: flags.endpoint,
    credentials: { accessKeyId: flags.accessKey, secretAccessKey: flags.secretKey },
    region: flags.region,
    ...(ca ? { ca } : {}),
  });
}

async function withClient<T>(flags: AdminFlags, run: (c: AdminClient) => Promise<T>): Promise<T> {
  const c = await client(flags);
  try {
    return await run(c);
  } finally {
    await c.close();
  }
}

adminCommand("attach", "attach <bucket> to its source bucket at <url>; validates both sides first")
  .argument("<bucket>", "the bucket (same name on the target)")
  .argument("<url>", "the source S3 endpoint, http(s)://host[:port]")
  .argument(
    "<tls-cert>",
    "PEM certificate/CA to trust the source, or 'system' (ignored for http://)",
  )
  .option("--source <bucket>", "the source bucket's name when it differs")
  .addOption(new Option("--s3-key <key>", "source access key").env("S3GW_SOURCE_ACCESS_KEY"))
  .addOption(new Option("--s3-secret <secret>", "source secret key").env("S3GW_SOURCE_SECRET_KEY"))
  .option("--source-region <region>", "region to sign source requests for", "us-east-1")
  .option("--copy-on-read", "write objects read through the source fallback to the target")
  .option(
    "--copy-on-read-max-size <size>",
    "largest object copy-on-read writes back (bytes, or with KiB/MiB/GiB; default 256MiB)",
  )
  .action(
    async (
      name: string,
      url: string,
      tlsCert: string,
      opts: AdminFlags & {
        source?: string;
        s3Key?: string;
        s3Secret?: string;
        sourceRegion: string;
        copyOnRead?: boolean;
        copyOnReadMaxSize?: string;
      },
    ) => {
      if (!opts.s3Key || !opts.s3Secret) {
        throw new CliError(
          "attach: the source credential is needed: --s3-key and --s3-secret (or S3GW_SOURCE_ACCESS_KEY/S3GW_SOURCE_SECRET_KEY)",
        );
      }
      const sourceCa = await caArgument(tlsCert, url);
      const state = await withClient(opts, (c) =>
        c.attach(name, {
          sourceUrl: url,
          ...(opts.source ? { sourceBucket: opts.source } : {}),
          sourceAccessKey: opts.s3Key as string,
          sourceSecretKey: opts.s3Secret as string,
          sourceRegion: opts.sourceRegion,
          sourceCa,
          ...copyOnReadFlags("attach", opts),
        }),
      );
      print(opts, { bucket: state }, () => showText(state));
    },
  );

adminCommand(
  "update",
  "change the mode or source settings of one bucket, all buckets of a source URL, or all",
)
  .addOption(new Option("--mode <mode>", "new mode").choices(MIGRATION_MODES as string[]))
  .option("--bucket <bucket>", "select one bucket")
  .option("--url <url>", "select every bucket attached to this source URL")
  .option("--all", "select every attached bucket")
  .option("--yes", "confirm forward → migrate without asking (the point of no return)")
  .option("--force", "allow migrate → ready, the rollback of last resort")
  .option("--new-url <url>", "change the source URL")
  .option("--tls-cert <file>", "change the source CA (PEM file or 'system')")
  .option("--s3-key <key>", "change the source access key")
  .option("--s3-secret <secret>", "change the source secret key")
  .option("--copy-on-read", "turn copy-on-read on")
  .option("--no-copy-on-read", "turn copy-on-read off")
  .option(
    "--copy-on-read-max-size <size>",
    "change copy-on-read's size limit (bytes, or with KiB/MiB/GiB)",
  )
  .action(
    async (
      opts: AdminFlags & {
        mode?: MigrationMode;
        bucket?: string;
        url?: string;
        all?: boolean;
        yes?: boolean;
        force?: boolean;
        newUrl?: string;
        tlsCert?: string;
        s3Key?: string;
        s3Secret?: string;
        copyOnRead?: boolean;
        copyOnReadMaxSize?: string;
      },
    ) => {
      const selectors = [
        opts.bucket !== undefined,
        opts.url !== undefined,
        opts.all === true,
      ].filter(Boolean);
      if (selectors.length !== 1)
        throw new CliError("update: give exactly one of --bucket, --url or --all");
      const body: { -readonly [K in keyof UpdateRequest]: UpdateRequest[K] } = {};
      if (opts.bucket !== undefined) body.bucket = opts.bucket;
      if (opts.url !== undefined) body.url = opts.url;
      if (opts.all) body.all = true;
      if (opts.mode) body.mode = opts.mode;
      if (opts.force) body.force = true;
      if (opts.newUrl) body.sourceUrl = opts.newUrl;
      if (opts.tlsCert) body.sourceCa = await caArgument(opts.tlsCert, opts.newUrl ?? "https://");
      if (opts.s3Key) body.sourceAccessKey = opts.s3Key;
      if (opts.s3Secret) body.sourceSecretKey = opts.s3Secret;
      Object.assign(body, copyOnReadFlags("update", opts));
      const states = await withClient(opts, async (c) => {
        if (opts.mode === "migrate") {
          const affected = (await c.list()).filter((s) => s.mode === "forward" && selects(body, s));
          if (affected.length > 0)
            body.confirmIrreversible = await confirmMigrate(affected, opts.yes === true);
        }
        return c.update(body);
      });
      print(opts, { buckets: states }, () => tableText(states));
    },
  );

adminCommand("detach", "detach <bucket> (from ready or migrate): it becomes a plain target bucket")
  .argument("<bucket>")
  .action(async (name: string, opts: AdminFlags) => {
    const state = await withClient(opts, (c) => c.detach(name));
    print(opts, { bucket: state }, () => `detached ${state.bucket} (was ${state.mode})`);
  });

adminCommand(
  "show",
  "show one bucket's migration state and history (no secrets), and the live gateways",
)
  .argument("<bucket>")
  .action(async (name: string, opts: AdminFlags) => {
    const answer = await withClient(opts, (c) => c.showWithStatus(name));
    print(opts, answer, () => `${showText(answer.bucket)}\n\n${gatewaysText(answer)}`);
  });

adminCommand(
  "list",
  "list attached buckets (no secrets) and the live gateways with the state version each applied",
).action(async (opts: AdminFlags) => {
  const answer = await withClient(opts, (c) => c.listWithStatus());
  print(opts, answer, () => {
    const buckets =
      answer.buckets.length === 0 ? "no bucket is attached" : tableText(answer.buckets);
    return `${buckets}\n\n${gatewaysText(answer)}`;
  });
});

// ---------------------------------------------------------------------------------------------

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new CliError(
      `${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/** `<tls-cert>`: `system`, a PEM file; ignored (sent as `system`) for an http:// source. */
async function caArgument(arg: string, url: string): Promise<string> {
  if (arg === "system") return "system";
  if (url.startsWith("http://")) return "system";
  const text = await readText(arg, "<tls-cert>");
  if (!text.includes("-----BEGIN CERTIFICATE-----"))
    throw new CliError(`<tls-cert>: ${arg} holds no PEM certificate`);
  return text;
}

/** Parses a size: bytes, or a number with KiB, MiB or GiB (also K/M/G, KB/MB/GB as binary units). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase()] ?? 1;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : Math.floor(bytes);
}

/** `--copy-on-read`, `--no-copy-on-read` and `--copy-on-read-max-size` as request fields. */
function copyOnReadFlags(
  command: string,
  opts: { copyOnRead?: boolean; copyOnReadMaxSize?: string },
): { copyOnRead?: boolean; copyOnReadMaxSize?: number } {
  const out: { copyOnRead?: boolean; copyOnReadMaxSize?: number } = {};
  if (opts.copyOnRead !== undefined) out.copyOnRead = opts.copyOnRead;
  if (opts.copyOnReadMaxSize !== undefined) {
    const size = parseSize(opts.copyOnReadMaxSize);
    if (size === undefined || size < 1) {
      throw new CliError(
        `${command}: --copy-on-read-max-size ${opts.copyOnReadMaxSize} is not a size (e.g. 268435456, 256MiB, 1GiB)`,
      );
    }
    out.copyOnReadMaxSize = size;
  }
  return out;
}

function selects(body: UpdateRequest, s: PublicBucketState): boolean {
  if (body.bucket !== undefined) return s.bucket === body.bucket;
  if (body.url !== undefined) return s.sourceUrl === body.url.replace(/\/$/, "");
  return true;
}

/** Asks before forward → migrate; without a terminal, only --yes confirms. */
async function confirmMigrate(
  affected: readonly PublicBucketState[],
  yes: boolean,
): Promise<boolean> {
  if (yes) return true;
  const names = affected.map((s) => s.bucket).join(", ");
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliError(
      `update: forward → migrate (${names}) is the point of no return; no terminal to ask on, re-run with --yes to confirm`,
    );
  }
  process.stderr.write(
    `forward → migrate for ${names}:\n` +
      "  new writes go to the target only; going back needs --force and copying data back by hand.\n",
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question("Type 'migrate' to continue: ");
    if (answer.trim() !== "migrate") throw new CliError("update: not confirmed; nothing changed");
    return true;
  } finally {
    rl.close();
  }
}

function print(opts: { json?: boolean }, json: unknown, text: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
}

function lastChange(s: PublicBucketState): string {
  const h = s.history.at(-1);
  return h ? `${h.at} ${h.from}→${h.to} by ${h.by}` : "-";
}

/** The live gateways as a table: which state version each applied, and when it was last seen. */
function gatewaysText(status: StateStatus): string {
  const rows = [
    ["GATEWAY", "APPLIED VERSION", "LAST SEEN", "SINCE"],
    ...status.gateways.map((g) => [
      g.id,
      g.appliedVersion === status.version
        ? String(g.appliedVersion)
        : `${g.appliedVersion} (behind ${status.version})`,
      g.lastSeen,
      g.startedAt,
    ]),
  ];
  const head = `state version ${status.version}; ${status.gateways.length} live gateway(s):`;
  return `${head}\n${columns(rows)}`;
}

function tableText(states: readonly PublicBucketState[]): string {
  const rows = [
    [
      "BUCKET",
      "MODE",
      "SOURCE URL",
      "SOURCE BUCKET",
      "SOURCE KEY",
      "CA",
      "COPY-ON-READ",
      "LAST CHANGE",
    ],
    ...states.map((s) => [
      s.bucket,
      s.mode,
      s.sourceUrl,
      s.sourceBucket,
      s.sourceAccessKey,
      s.sourceCa === "system" ? "system" : "pem",
      copyOnReadText(s),
      lastChange(s),
    ]),
  ];
  return columns(rows);
}

/** `off`, or `on (≤ 256 MiB)`. */
function copyOnReadText(s: PublicBucketState): string {
  if (!s.copyOnRead) return "off";
  const mib = s.copyOnReadMaxSize / 1024 ** 2;
  const size = Number.isInteger(mib) ? `${mib} MiB` : `${s.copyOnReadMaxSize} bytes`;
  return `on (≤ ${size})`;
}

/** Rows as left-aligned columns separated by two spaces. */
function columns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function showText(s: PublicBucketState): string {
  const lines = [
    `bucket:         ${s.bucket}`,
    `mode:           ${s.mode}`,
    `source url:     ${s.sourceUrl}`,
    `source bucket:  ${s.sourceBucket}`,
    `source key:     ${s.sourceAccessKey}`,
    `source region:  ${s.sourceRegion}`,
    `source ca:      ${s.sourceCa}`,
    `copy-on-read:   ${copyOnReadText(s)}`,
    ...(s.tombstones === undefined ? [] : [`tombstones:     ${s.tombstones}`]),
    "history:",
    ...s.history.map(
      (h) =>
        `  ${h.at}  ${h.from} → ${h.to}  by ${h.by}${h.changed ? `  (changed ${h.changed.join(", ")})` : ""}`,
    ),
  ];
  return lines.join("\n");
}

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  console.error(`s3gw: ${message.split("\n")[0]}`);
  process.exitCode = err instanceof CliError ? err.exitCode : 1;
});
