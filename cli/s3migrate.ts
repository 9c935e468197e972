#!/usr/bin/env node
/**
 * The s3migrate command line: commander flags derived from the option table
 * (s3migrate/options.ts), signals, and exit codes. Everything else lives in s3migrate/.
 *
 * Exit codes: 0 all good; 1 some objects failed (or mismatched with --verify); 2 bad usage or
 * configuration; 3 an endpoint could not be reached; 130 stopped by SIGINT/SIGTERM (the logs are
 * flushed, `--resume` continues).
 */
import { setMaxListeners } from "node:events";
import { Command, Option } from "commander";
import { packageVersion } from "./version.js";
import {
  OPTION_TABLE,
  UsageError,
  loadConfigFile,
  resolveOptions,
  type RawOptions,
} from "../s3migrate/options.js";
import { runMigrate, exitCodeOf } from "../s3migrate/main.js";
import { runMany, MANY_ACTIONS, type ManyAction } from "../s3migrate/many.js";

const EXIT_USAGE = 2;

function fail(err: unknown): void {
  const code = exitCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  console.error(`s3migrate: ${msg.split("\n")[0]}`);
  process.exitCode = code;
}

const program = new Command("s3migrate")
  .description(
    "The bulk copier: conditional, resumable, shardable copy of a bucket from source to target.",
  )
  .version(packageVersion())
  .showHelpAfterError(false)
  .exitOverride();

for (const spec of OPTION_TABLE) {
  const flags = `${spec.short ? `-${spec.short}, ` : ""}--${spec.flag}${spec.type === "bool" ? "" : " <value>"}`;
  const help = `${spec.help}${spec.env ? ` [env ${spec.env}]` : ""}${spec.default !== undefined ? ` (default ${spec.default})` : ""}`;
  program.addOption(new Option(flags, help));
}

program.action(async () => {
  try {
    const cli: RawOptions = {};
    for (const spec of OPTION_TABLE) {
      if (program.getOptionValueSource(spec.name) === "cli")
        cli[spec.name] = program.getOptionValue(spec.name);
    }
    const env = process.env;
    const file = typeof cli.config === "string" ? await loadConfigFile(cli.config, env) : undefined;
    const opts = resolveOptions({ cli, file, env });

    // First SIGINT/SIGTERM: take no more keys, let in-flight objects finish; second: abandon them.
    const stop = new AbortController();
    const abort = new AbortController();
    // Every request in flight (threads × parts) listens on the run's abort signal; that is
    // not a leak, so lift Node's 10-listener warning for it.
    setMaxListeners(0, abort.signal, stop.signal);
    const onSignal = (): void => {
      if (!stop.signal.aborted) {
        process.stderr.write(
          "\ns3migrate: stopping: finishing objects in flight (again to abandon them)\n",
        );
        stop.abort();
      } else abort.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const result = await runMigrate(opts, {
      stop: stop.signal,
      abort: abort.signal,
      out: process.stderr,
      summaryOut: opts.json ? process.stdout : process.stderr,
      tty: Boolean(process.stderr.isTTY) && !opts.json,
    });
    process.exitCode = result.exitCode;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  } catch (err) {
    fail(err);
  }
});

program
  .command("many")
  .description("Run one s3migrate per YAML config file in <folder>, in parallel")
  .argument("<folder>", "folder of config files (*.yaml, *.yml), one per bucket pair")
  .argument("[action]", `one of ${MANY_ACTIONS.join(", ")}`, "run")
  .action(async (folder: string, action: string) => {
    try {
      if (!(MANY_ACTIONS as readonly string[]).includes(action)) {
        throw new UsageError(
          `many: unknown action "${action}" (expected ${MANY_ACTIONS.join(", ")})`,
        );
      }
      // Children are this same program: node, its loader flags (tsx in development), this script.
      const self = {
        command: process.execPath,
        args: [...process.execArgv, process.argv[1] ?? ""],
      };
      process.exitCode = await runMany({
        folder,
        action: action as ManyAction,
        self,
        env: process.env,
        out: process.stdout,
      });
    } catch (err) {
      fail(err);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; exitCode?: number };
  if (e.code === "commander.helpDisplayed" || e.code === "commander.version") {
    process.exitCode = 0;
    return;
  }
  if (typeof e.code === "string" && e.code.startsWith("commander.")) {
    // commander already printed its one-line message.
    process.exitCode = EXIT_USAGE;
    return;
  }
  fail(err);
});
