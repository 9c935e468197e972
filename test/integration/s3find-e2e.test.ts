// End to end as the runbook does it: objects PUT to a Versity Gateway posix bucket, `s3find` on
// the bucket's directory (the POSIX view), then `s3migrate --src-folder` copies them all to MinIO.
// Both CLIs run as child processes from source; both servers are the rig's real ones.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, inject, it } from "vitest";
import { repoRoot } from "../rig/servers.js";
import {
  baseArgs,
  bucketName,
  createBucket,
  listAll,
  put,
  runCli,
  sdk,
  secretEnv,
  tempDir,
} from "./s3migrate-helpers.js";

/** Runs `s3find` from source and resolves with its exit code and output. */
function runS3find(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "cli/s3find.ts"), ...args],
      { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 128, stderr }));
  });
}

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

describe("s3find → s3migrate, versitygw posix → MinIO", () => {
  it("copies every object found on the POSIX view, byte for byte", async () => {
    const { versitygw, minio } = inject("rig");
    const src = sdk(versitygw);
    const dest = sdk(minio);
    const bucket = bucketName("e2e");
    await createBucket(src, bucket);
    await createBucket(dest, bucket);

    // Nested keys, spaces, a plus, NFC and NFD spellings side by side (two distinct keys), a
    // 0-byte object, and enough keys that --chunk-size 7 makes several sorted chunks to merge.
    const keys = [
      "top.txt",
      "a/b/c/deep.bin",
      "a/b/sibling.txt",
      "with space/file name.txt",
      "plus+sign.txt",
      "caf\u00e9.txt",
      "cafe\u0301.txt",
      "empty.dat",
      ...Array.from({ length: 20 }, (_, i) => `many/${String(i).padStart(3, "0")}.txt`),
    ];
    const bodies = new Map<string, Buffer>();
    for (const [i, key] of keys.entries()) {
      const body = key === "empty.dat" ? Buffer.alloc(0) : Buffer.from(`${key}\n${"x".repeat(i)}`);
      bodies.set(key, body);
      await put(src, { Bucket: bucket, Key: key, Body: body, ContentType: "text/plain" });
    }

    const lists = await tempDir("e2e-lists-");
    const found = await runS3find([
      join(versitygw.dataDir, bucket),
      lists,
      "--chunk-size",
      "7",
      "--force",
    ]);
    expect(found.stderr).not.toMatch(/Error:|at .*\.ts:/);
    expect(found.code).toBe(0);

    // A dest folder that does not exist yet is made, as `mkdir -p` would.
    const destFolder = join(await tempDir("e2e-dest-"), "not", "yet");
    const copied = await runCli(
      [
        ...baseArgs({
          src: versitygw,
          srcBucket: bucket,
          dest: minio,
          destBucket: bucket,
          srcFolder: lists,
          destFolder,
        }),
        "--json",
      ],
      secretEnv(versitygw, minio),
    );
    expect(copied.stderr).not.toContain(versitygw.secretAccessKey);
    expect(copied.code).toBe(0);

    const onTarget = await listAll(dest, bucket);
    expect([...onTarget].sort()).toEqual([...keys].sort());
    for (const key of keys) {
      const got = await dest.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = await got.Body!.transformToByteArray();
      expect(sha256(bytes), key).toBe(sha256(bodies.get(key)!));
    }

    // migrate.log holds every key, in the global sorted order s3find's chunks were merged into.
    const log = (await readFile(join(destFolder, "migrate.log"), "utf8"))
      .split("\n")
      .filter(Boolean);
    expect(log).toHaveLength(keys.length);
    const sortedBytes = [...log].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(log).toEqual(sortedBytes);
  });
});
