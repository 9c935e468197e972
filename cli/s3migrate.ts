#!/usr/bin/env node
import { Command } from "commander";
import { packageVersion } from "./version.js";

const program = new Command("s3migrate")
  .description(
    "The bulk copier: conditional, resumable, shardable copy of a bucket from source to target.",
  )
  .version(packageVersion())
  .action(() => {
    console.error("s3migrate: not implemented yet");
    process.exitCode = 2;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`s3migrate: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
});
