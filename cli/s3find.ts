#!/usr/bin/env node
import { Command } from "commander";
import { packageVersion } from "./version.js";

const program = new Command("s3find")
  .description("Walks a POSIX view of a bucket into sorted key lists of 100,000 keys.")
  .version(packageVersion())
  .action(() => {
    console.error("s3find: not implemented yet");
    process.exitCode = 2;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`s3find: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
});
