// s3migrate runs on the rig's real servers: SIGINT/SIGKILL then --resume; injected failures,
// failed.log and --failed-to-folder; three shards; --dry-run and --first; the start-up probe;
// `many` with three pairs.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { writeListFile } from "../../s3find/list-file.js";
import { compareKeys } from "../../s3/key-order.js";
import {
  baseArgs,
  faultProxy,
  listAll,
  put,
  runCli,
  sdk,
  secretEnv,
  startCli,
  summaries,
  tempDir,
  waitFor,
  bucketPair,
} from "./s3migrate-helpers.js";

const rig = inject("rig");

async function seeded(
  n: number,
  size = 2048,
): Promise<{ srcBucket: string; destBucket: string; keys: string[]; srcFolder: string }> {
  const { src, srcBucket, destBucket } = await bucketPair(rig.minio2, rig.minio);
  const keys = Array.from({ length: n }, (_, i) => `obj/${String(i).padStart(5, "0")}`);
  const data = Buffer.alloc(size, 7);
  for (let i = 0; i < keys.length; i += 16) {
    await Promise.all(
      keys.slice(i, i + 16).map((k) => put(src, { Bucket: srcBucket, Key: k, Body: data })),
    );
  }
  const srcFolder = await tempDir();
  await writeListFile(join(srcFolder, "keys-000001.txt"), keys);
  return { srcBucket, destBucket, keys, srcFolder };
}

async function logLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, "utf8")).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("s3migrate interrupted and resumed", () => {
  for (const signal of ["SIGINT", "SIGKILL"] as const) {
    it(`${signal} mid-run, then --resume: every key copied once, migrate.log sorted and complete`, async () => {
      const { srcBucket, destBucket, keys, srcFolder } = await seeded(240);
      const destFolder = await tempDir();
      const args = [
        ...baseArgs({
          src: rig.minio2,
          srcBucket,
          dest: rig.minio,
          destBucket,
          srcFolder,
          destFolder,
        }),
        "--threads",
        "4",
        "--json",
      ];
      const env = secretEnv(rig.minio2, rig.minio);
      // A bandwidth cap keeps the run long enough to interrupt it in the middle.
      const run = startCli([...args, "--max-bps", "64K"], env);
      const logPath = join(destFolder, "migrate.log");
      await waitFor(
        "a few keys in migrate.log",
        60_000,
        async () => (await logLines(logPath)).length >= 20,
      );
      run.child.kill(signal);
      const code = await run.done;
      expect(code).toBe(signal === "SIGINT" ? 130 : 137);
      const before = await logLines(logPath);
      expect(before.length).toBeLessThan(keys.length);
      expect(before).toEqual(keys.slice(0, before.length));

      const second = await runCli([...args, "--resume"], env);
      expect(second.code, second.stderr).toBe(0);
      const [summary] = summaries(second.stdout);
      // Nothing up to the resume point is read again; what was copied but not yet logged when
      // the first run stopped is refused by If-None-Match (skip(up)), never re-copied.
      expect(summary?.counters.obj).toBe(keys.length - before.length);
      expect(summary?.counters.before).toBe(before.length);
      expect((summary?.counters.upld ?? 0) + (summary?.counters.skipUp ?? 0)).toBe(
        keys.length - before.length,
      );
      // SIGINT lets in-flight keys finish and flushes the log: nothing is left to refuse. After
      // SIGKILL, at most the keys of the last unflushed second (64 KiB/s of 2 KiB objects) are.
      if (signal === "SIGINT") expect(summary?.counters.skipUp).toBe(0);
      else expect(summary?.counters.skipUp).toBeLessThanOrEqual(40);
      expect(await logLines(logPath)).toEqual(keys);
      expect(await listAll(sdk(rig.minio), destBucket)).toEqual(keys);
    });
  }
});

describe("s3migrate failures", () => {
  it("puts refused keys in failed.log; --failed-to-folder and a second run copy exactly those", async () => {
    const { srcBucket, destBucket, keys, srcFolder } = await seeded(30, 100);
    const destFolder = await tempDir();
    const refusedKeys = new Set(["obj/00003", "obj/00017", "obj/00029"]);
    const proxy = await faultProxy(rig.minio.endpoint, (method, path) => {
      const key = decodeURIComponent(path.split("?")[0]?.split("/").slice(2).join("/") ?? "");
      return method === "PUT" && refusedKeys.has(key);
    });
    try {
      const env = secretEnv(rig.minio2, rig.minio);
      const dest = { ...rig.minio, endpoint: proxy.endpoint };
      const first = await runCli(
        [
          ...baseArgs({ src: rig.minio2, srcBucket, dest, destBucket, srcFolder, destFolder }),
          "--json",
          "--retries",
          "2",
        ],
        env,
      );
      expect(first.code).toBe(1);
      expect(summaries(first.stdout)[0]?.errors).toEqual({ InternalError: 3 });
      const failed = (await readFile(join(destFolder, "failed.log"), "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { key: string; code: string; attempts: number });
      expect(failed.map((f) => f.key).sort()).toEqual([...refusedKeys].sort());
      expect(failed.every((f) => f.code === "InternalError" && f.attempts === 2)).toBe(true);

      const retryFolder = join(await tempDir(), "retry");
      const conv = await runCli(
        ["--dest-folder", destFolder, "--failed-to-folder", retryFolder],
        env,
      );
      expect(conv.code, conv.stderr).toBe(0);
      const second = await runCli(
        [
          ...baseArgs({
            src: rig.minio2,
            srcBucket,
            dest: rig.minio,
            destBucket,
            srcFolder: retryFolder,
            destFolder,
          }),
          "--json",
        ],
        env,
      );
      expect(second.code, second.stderr).toBe(0);
      expect(summaries(second.stdout)[0]?.counters).toMatchObject({
        obj: 3,
        upld: 3,
        skipUp: 0,
        fail: 0,
      });
      expect(await listAll(sdk(rig.minio), destBucket)).toEqual(keys);
    } finally {
      proxy.server.close();
    }
  });

  it("exits 3 when an endpoint cannot be reached", async () => {
    const destFolder = await tempDir();
    const srcFolder = await tempDir();
    await writeListFile(join(srcFolder, "keys-000001.txt"), ["a"]);
    const dead = { endpoint: "http://127.0.0.1:1", accessKeyId: "x", secretAccessKey: "y" };
    const res = await runCli(
      baseArgs({
        src: rig.minio2,
        srcBucket: "whatever",
        dest: dead,
        destBucket: "b",
        srcFolder,
        destFolder,
      }).map((a) => (a === rig.minio2.endpoint ? dead.endpoint : a)),
      secretEnv(rig.minio2, dead),
    );
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("s3migrate shards, dry run, first", () => {
  it("three shards cover every key exactly once and ign adds up", async () => {
    const { srcBucket, destBucket, keys, srcFolder } = await seeded(60, 10);
    const destFolder = await tempDir();
    const env = secretEnv(rig.minio2, rig.minio);
    const results = await Promise.all(
      [0, 1, 2].map((v) =>
        runCli(
          [
            ...baseArgs({
              src: rig.minio2,
              srcBucket,
              dest: rig.minio,
              destBucket,
              srcFolder,
              destFolder,
            }),
            "--json",
            "--hash-count",
            "3",
            "--hash-value",
            String(v),
          ],
          env,
        ),
      ),
    );
    const counters = results.map((r) => {
      expect(r.code, r.stderr).toBe(0);
      return summaries(r.stdout)[0]?.counters as Record<string, number>;
    });
    expect(counters.reduce((a, c) => a + (c.upld ?? 0), 0)).toBe(keys.length);
    expect(counters.reduce((a, c) => a + (c.ign ?? 0), 0)).toBe(2 * keys.length);
    for (const c of counters) expect(c.upld).toBeGreaterThan(0);
    expect(await listAll(sdk(rig.minio), destBucket)).toEqual(keys);
    // Each shard keeps its own log in the shared dest folder.
    const logs = (await readdir(destFolder)).filter((n) => n.startsWith("migrate-")).sort();
    expect(logs).toEqual(["migrate-0-of-3.log", "migrate-1-of-3.log", "migrate-2-of-3.log"]);
    const logged = (await Promise.all(logs.map((l) => logLines(join(destFolder, l)))))
      .flat()
      .sort(compareKeys);
    expect(logged).toEqual(keys);
  });

  it("--dry-run writes nothing; --first N stops after N keys", async () => {
    const { srcBucket, destBucket, keys, srcFolder } = await seeded(12, 10);
    const destFolder = await tempDir();
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
    const dry = await runCli([...args, "--dry-run"], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(summaries(dry.stdout)[0]?.counters).toMatchObject({ obj: 12, work: 12, upld: 0 });
    expect(await listAll(sdk(rig.minio), destBucket)).toEqual([]);
    expect(await readdir(destFolder)).toEqual([]);

    const first = await runCli([...args, "--first", "5"], env);
    expect(first.code, first.stderr).toBe(0);
    expect(summaries(first.stdout)[0]?.counters).toMatchObject({ obj: 5, upld: 5 });
    expect(await listAll(sdk(rig.minio), destBucket)).toEqual(keys.slice(0, 5));
  });

  it("--list-source pages the source bucket when there are no lists, and --until-clean stops after a clean pass", async () => {
    const { srcBucket, destBucket, keys } = await seeded(25, 10);
    const destFolder = await tempDir();
    const res = await runCli(
      [
        ...baseArgs({ src: rig.minio2, srcBucket, dest: rig.minio, destBucket, destFolder }),
        "--json",
        "--until-clean",
      ],
      secretEnv(rig.minio2, rig.minio),
    );
    expect(res.code, res.stderr).toBe(0);
    const passes = summaries(res.stdout);
    expect(passes.map((p) => p.counters.upld)).toEqual([25, 0]);
    expect(passes[1]?.counters.skipUp).toBe(25);
    expect(await listAll(sdk(rig.minio), destBucket)).toEqual(keys);
  });
});

describe("s3migrate start-up probe", () => {
  it("refuses a target that ignores If-None-Match", async () => {
    // A loopback server that accepts every PUT, as some emulators do.
    const puts: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.method === "PUT") puts.push(req.url ?? "");
        res
          .writeHead(req.method === "DELETE" ? 204 : 200, {
            etag: '"d41d8cd98f00b204e9800998ecf8427e"',
          })
          .end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { srcBucket, srcFolder } = await seeded(2, 10);
      const destFolder = await tempDir();
      const dest = { endpoint, accessKeyId: "k", secretAccessKey: "s" };
      const res = await runCli(
        baseArgs({ src: rig.minio2, srcBucket, dest, destBucket: "b", srcFolder, destFolder }),
        secretEnv(rig.minio2, dest),
      );
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/ignores If-None-Match/);
      expect(puts).toHaveLength(2);
      expect(puts.every((p) => p.includes(".s3migrate-probe"))).toBe(true);
    } finally {
      server.close();
    }
  });

  it("accepts a real target and leaves no probe key behind", async () => {
    const { srcBucket, destBucket, srcFolder } = await seeded(1, 10);
    const destFolder = await tempDir();
    const res = await runCli(
      baseArgs({ src: rig.minio2, srcBucket, dest: rig.minio, destBucket, srcFolder, destFolder }),
      secretEnv(rig.minio2, rig.minio),
    );
    expect(res.code, res.stderr).toBe(0);
    expect(await listAll(sdk(rig.minio), destBucket)).toEqual(["obj/00000"]);
  });
});

describe("s3migrate many", () => {
  it("runs three pairs in parallel, one failing, prints a status line per pair and exits non-zero", async () => {
    const folder = await tempDir();
    const pairs = [];
    for (const name of ["alpha", "beta", "gamma"]) {
      const { srcBucket, destBucket, srcFolder } = await seeded(5, 10);
      const destFolder = await tempDir();
      pairs.push({ name, destBucket });
      const lines = [
        `src-url: ${rig.minio2.endpoint}`,
        `src-bucket: ${srcBucket}`,
        `src-key: ${rig.minio2.accessKeyId}`,
        "src-secret: ${S3M_SRC_SECRET}",
        `src-folder: ${srcFolder}`,
        `dest-url: ${rig.minio.endpoint}`,
        // gamma's target bucket does not exist: that pair fails.
        `dest-bucket: ${name === "gamma" ? "no-such-bucket-s3m" : destBucket}`,
        `dest-key: ${rig.minio.accessKeyId}`,
        "dest-secret: ${S3M_DEST_SECRET}",
        `dest-folder: ${destFolder}`,
      ];
      await writeFile(join(folder, `${name}.yaml`), lines.join("\n") + "\n");
    }
    const env = {
      ...process.env,
      S3M_SRC_SECRET: rig.minio2.secretAccessKey,
      S3M_DEST_SECRET: rig.minio.secretAccessKey,
    };
    const res = await runCli(["many", folder, "run"], env);
    expect(res.code).toBe(1);
    const lines = res.stdout.trim().split("\n").sort();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^alpha: run ok read=5 copied=5 /);
    expect(lines[1]).toMatch(/^beta: run ok read=5 copied=5 /);
    expect(lines[2]).toMatch(/^gamma: run FAILED \(exit 2\).*does not exist/);
    for (const p of pairs.slice(0, 2))
      expect(await listAll(sdk(rig.minio), p.destBucket)).toHaveLength(5);
    const status = await runCli(["many", folder, "status"], env);
    expect(status.code).toBe(1);
    expect(status.stdout.trim().split("\n")).toHaveLength(3);
    expect((await stat(join(folder, "gamma.status.json"))).isFile()).toBe(true);
  });
});
