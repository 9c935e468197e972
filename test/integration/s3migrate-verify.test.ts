// s3migrate --verify and --metrics-addr against the rig's real servers.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, inject, it } from "vitest";
import { writeListFile } from "../../s3find/list-file.js";
import { freePort } from "../rig/servers.js";
import {
  baseArgs,
  put,
  runCli,
  secretEnv,
  startCli,
  summaries,
  tempDir,
  waitFor,
  bucketPair,
} from "./s3migrate-helpers.js";

const rig = inject("rig");

describe("s3migrate --verify", () => {
  it("passes after a copy and reports changed, missing and re-labelled objects in verify.log", async () => {
    const { src, dst, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
    const keys = ["k1", "k2", "k3", "k4"];
    for (const k of keys) {
      await put(src, {
        Bucket: srcBucket,
        Key: k,
        Body: Buffer.from(`body ${k}`),
        ContentType: "text/plain",
        Metadata: { m: k },
      });
    }
    const srcFolder = await tempDir();
    const destFolder = await tempDir();
    await writeListFile(join(srcFolder, "keys-000001.txt"), keys);
    const env = secretEnv(rig.minio2, rig.minio);
    const args = [
      ...baseArgs({
        src: rig.minio2,
        srcBucket,
        dest: rig.minio,
        destBucket,
        srcFolder,
        destFolder,
      }),
      "--json",
    ];
    expect((await runCli(args, env)).code).toBe(0);

    const clean = await runCli([...args, "--verify"], env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(summaries(clean.stdout)[0]?.counters).toMatchObject({ obj: 4, work: 4, fail: 0 });

    await put(dst, {
      Bucket: destBucket,
      Key: "k1",
      Body: Buffer.from("changed!"),
      ContentType: "text/plain",
      Metadata: { m: "k1" },
    });
    await dst.send(new DeleteObjectCommand({ Bucket: destBucket, Key: "k2" }));
    await put(dst, {
      Bucket: destBucket,
      Key: "k3",
      Body: Buffer.from("body k3"),
      ContentType: "text/html",
      Metadata: { m: "k3" },
    });
    const dirty = await runCli([...args, "--verify"], env);
    expect(dirty.code).toBe(1);
    const problems = (await readFile(join(destFolder, "verify.log"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; message: string })
      // Workers finish in any order; verify.log is in completion order.
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    expect(problems.map((p) => p.key)).toEqual(["k1", "k2", "k3"]);
    expect(problems[1]?.message).toBe("missing on the target");
    expect(problems[2]?.message).toBe("content-type differs");
  });
});

describe("s3migrate --metrics-addr", () => {
  it("serves the progress counters as Prometheus metrics while copying", async () => {
    const { src, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
    const keys = Array.from({ length: 60 }, (_, i) => `m/${String(i).padStart(3, "0")}`);
    await Promise.all(
      keys.map((k) => put(src, { Bucket: srcBucket, Key: k, Body: Buffer.alloc(2048, 1) })),
    );
    const srcFolder = await tempDir();
    const destFolder = await tempDir();
    await writeListFile(join(srcFolder, "keys-000001.txt"), keys);
    const port = await freePort();
    const run = startCli(
      [
        ...baseArgs({
          src: rig.minio2,
          srcBucket,
          dest: rig.minio,
          destBucket,
          srcFolder,
          destFolder,
        }),
        "--metrics-addr",
        `127.0.0.1:${port}`,
        "--max-bps",
        "32K",
        "--threads",
        "2",
      ],
      secretEnv(rig.minio2, rig.minio),
    );
    let text = "";
    await waitFor("uploads in the metrics", 60_000, async () => {
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => "",
      );
      const m = /^s3migrate_objects_total\{state="uploaded"\} (\d+)/m.exec(text);
      return m !== null && Number(m[1]) > 0;
    });
    expect(text).toMatch(/^s3migrate_bytes_total\{direction="upload"\} \d+/m);
    expect(text).toMatch(/^s3migrate_objects_per_second \S+/m);
    expect(text).toMatch(/^s3migrate_eta_seconds \S+/m);
    expect(text).toMatch(/^s3migrate_pass 1$/m);
    expect(text).not.toContain(rig.minio.secretAccessKey);
    expect(await run.done).toBe(0);
  });
});
