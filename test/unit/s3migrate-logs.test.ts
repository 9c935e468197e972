import { describe, it, expect } from "vitest";
import { appendFile, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readListFile } from "../../s3find/list-file.js";
import { FailedLog, failedToFolder, readFailedLog } from "../../s3migrate/failed-log.js";
import { OrderedLog, readLastLogKey } from "../../s3migrate/ordered-log.js";

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "s3m-logs-"));
}

describe("OrderedLog (migrate.log)", () => {
  it("appends a key only when it and every earlier key are done", async () => {
    const path = join(await tmp(), "migrate.log");
    const log = await OrderedLog.open(path, { append: false, windowSize: 10 });
    const a = await log.admit("a");
    const b = await log.admit("b");
    const c = await log.admit("c");
    log.complete(c);
    log.complete(b);
    await log.flush();
    expect(await readFile(path, "utf8")).toBe("");
    log.complete(a);
    await log.flush();
    expect(await readFile(path, "utf8")).toBe("a\nb\nc\n");
    expect(log.lastKey).toBe("c");
    await log.close();
  });

  it("back-pressures admit when the window is full until the head finishes", async () => {
    const path = join(await tmp(), "migrate.log");
    const log = await OrderedLog.open(path, { append: false, windowSize: 2 });
    const a = await log.admit("a");
    const b = await log.admit("b");
    let admitted = false;
    const third = log.admit("c").then((t) => {
      admitted = true;
      return t;
    });
    log.complete(b); // the head ("a") is still running: the window stays full
    await Promise.resolve();
    await Promise.resolve();
    expect(admitted).toBe(false);
    expect(log.inFlight).toBe(2);
    log.complete(a);
    const c = await third;
    expect(admitted).toBe(true);
    log.complete(c);
    await log.close();
    expect(await readFile(path, "utf8")).toBe("a\nb\nc\n");
  });

  it("writes keys escaped in s3find's list format", async () => {
    const path = join(await tmp(), "migrate.log");
    const log = await OrderedLog.open(path, { append: false, windowSize: 4 });
    for (const k of ["a\\b", "new\nline"]) log.complete(await log.admit(k));
    await log.close();
    expect(await readFile(path, "utf8")).toBe("a\\\\b\nnew\\nline\n");
    expect((await readLastLogKey(path)).key).toBe("new\nline");
  });

  it("keeps in-flight keys out of the log at close (the next run redoes them)", async () => {
    const path = join(await tmp(), "migrate.log");
    const log = await OrderedLog.open(path, { append: false, windowSize: 4 });
    const a = await log.admit("a");
    await log.admit("b");
    const c = await log.admit("c");
    log.complete(a);
    log.complete(c);
    await log.close();
    expect(await readFile(path, "utf8")).toBe("a\n");
  });

  it("reads the last complete line, ignoring a torn last line after SIGKILL", async () => {
    const dir = await tmp();
    const path = join(dir, "migrate.log");
    await writeFile(path, "a\nbb\nccc\ndd");
    expect(await readLastLogKey(path)).toEqual({ key: "ccc", validLength: 9 });
    await writeFile(path, "only\n");
    expect(await readLastLogKey(path)).toEqual({ key: "only", validLength: 5 });
    await writeFile(path, "torn-without-newline");
    expect(await readLastLogKey(path)).toEqual({ validLength: 0 });
    expect(await readLastLogKey(join(dir, "missing.log"))).toEqual({ validLength: 0 });
  });

  it("finds the last line across read chunks of a large log", async () => {
    const path = join(await tmp(), "migrate.log");
    const long = "k".repeat(70_000);
    await writeFile(path, `${"x".repeat(100)}\n${long}\n${"t".repeat(100_000)}`);
    const last = await readLastLogKey(path);
    expect(last.key).toBe(long);
    expect(last.validLength).toBe(101 + 70_001);
  });

  it("cuts a torn tail before appending on resume", async () => {
    const path = join(await tmp(), "migrate.log");
    await writeFile(path, "a\nb\nc-torn");
    const log = await OrderedLog.open(path, { append: true, windowSize: 4 });
    expect(log.lastKey).toBe("b");
    log.complete(await log.admit("c"));
    await log.close();
    expect(await readFile(path, "utf8")).toBe("a\nb\nc\n");
  });
});

describe("failed.log", () => {
  it("records JSON lines and converts them into a sorted, deduplicated list folder", async () => {
    const dir = await tmp();
    const path = join(dir, "failed.log");
    const log = await FailedLog.open(path, { append: false });
    await log.add({ key: "z", code: "InternalError", message: "boom", attempts: 5 });
    await log.add({ key: "a\nb", code: "BadDigest", message: "md5", attempts: 1 });
    await log.add({ key: "m", code: "SlowDown", message: "slow", attempts: 5 });
    await log.close();
    // A second run appends, then a SIGKILL leaves a torn line.
    const again = await FailedLog.open(path, { append: true });
    await again.add({ key: "z", code: "InternalError", message: "boom", attempts: 5 });
    await again.close();
    await appendFile(path, '{"key":"torn","co');

    const entries = [];
    for await (const e of readFailedLog(path)) entries.push(e);
    expect(entries.map((e) => e.key)).toEqual(["z", "a\nb", "m", "z"]);
    expect(entries[1]).toEqual({ key: "a\nb", code: "BadDigest", message: "md5", attempts: 1 });

    const out = join(dir, "retry");
    expect(await failedToFolder(path, out, { compare: byteOrder, chunkSize: 2 })).toBe(3);
    const files = (await readdir(out)).sort();
    expect(files).toEqual(["keys-000001.txt", "keys-000002.txt"]);
    const keys: string[] = [];
    for (const f of files) for await (const k of readListFile(join(out, f))) keys.push(k);
    expect(keys).toEqual(["a\nb", "m", "z"]);
  });
});
