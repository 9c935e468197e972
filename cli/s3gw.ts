#!/usr/bin/env node
import { Command } from "commander";
import { packageVersion } from "./version.js";

const program = new Command("s3gw")
  .description(
    "The S3 migration gateway: a TLS S3 front end with per-bucket migration modes, and its admin CLI.",
  )
  .version(packageVersion())
  .action(() => {
    console.error("s3gw: not implemented yet");
    process.exitCode = 2;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`s3gw: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
});
