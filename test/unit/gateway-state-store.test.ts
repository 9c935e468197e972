import { mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FileMigrationStateStore,
  MigrationStateError,
  tempPathFor,
  type AttachInput,
} from "../../gateway/state/store.js";

const SECRET = "source-secret-value";

async function freshPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "s3gw-state-"));
  return join(dir, "sub", "state.json");
}

function input(bucket: string, sourceUrl = "http://127.0.0.1:7070"): AttachInput {
  return {
    bucket,
    sourceUrl,
    sourceBucket: bucket,
    sourceAccessKey: "srckey",
    sourceSecretKey: SECRET,
    sourceRegion: "us-east-1",
    sourceCa: "system",
  };
}

const by = { by: "admin1" };

async function rejection(p: Promise<unknown>): Promise<MigrationStateError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationStateError);
    return err as MigrationStateError;
  }
  throw new Error("expected a rejection");
}

describe("FileMigrationStateStore", () => {
  it("creates the file 0600 and reloads it after a restart", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path, {
      now: () => new Date("2026-01-02T03:04:05Z"),
    });
    await store.attach(input("photos"), by);
    await store.update({ bucket: "photos" }, { mode: "forward" }, by);
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const again = await FileMigrationStateStore.open(path);
    const s = again.get("photos");
    expect(s?.mode).toBe("forward");
    expect(s?.sourceSecretKey).toBe(SECRET);
    expect(s?.history).toEqual([
      { at: "2026-01-02T03:04:05.000Z", from: "detached", to: "ready", by: "admin1" },
      { at: "2026-01-02T03:04:05.000Z", from: "ready", to: "forward", by: "admin1" },
    ]);
  });

  it("a crash between writing the temp file and renaming it leaves the old file valid", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path);
    await store.attach(input("photos"), by);
    const before = await readFile(path, "utf8");
    // Simulate the crash: the next version reached a temp file (half written) but was never
    // renamed over the state file.
    const tmp = tempPathFor(path);
    await writeFile(tmp, before.replace('"ready"', '"forward"').slice(0, 40), { mode: 0o600 });

    const reopened = await FileMigrationStateStore.open(path);
    expect(reopened.get("photos")?.mode).toBe("ready");
    expect(await readFile(path, "utf8")).toBe(before);
    // The leftover temp file is cleaned up on start.
    expect((await readdir(join(path, ".."))).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("refuses a corrupt file with a clear message that quotes no secret", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path);
    await store.attach(input("photos"), by);
    const good = await readFile(path, "utf8");

    await writeFile(path, good.slice(0, good.length - 10));
    const e1 = await rejection(FileMigrationStateStore.open(path));
    expect(e1.code).toBe("CorruptStateFile");
    expect(e1.message).toMatch(/state file .* is corrupt \(not JSON.*\); refusing to start/);
    expect(e1.message).not.toContain(SECRET);

    await writeFile(path, good.replace('"ready"', '"sideways"'));
    const e2 = await rejection(FileMigrationStateStore.open(path));
    expect(e2.message).toContain("mode sideways is unknown");

    await writeFile(path, good.replace('"version": 1', '"version": 7'));
    expect((await rejection(FileMigrationStateStore.open(path))).message).toContain(
      "unknown format version 7",
    );
  });

  it("serialises concurrent writers: no attach is lost", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path);
    const names = Array.from({ length: 25 }, (_, i) => `bucket-${String(i).padStart(2, "0")}`);
    const versions: number[] = [];
    store.subscribe((s) => versions.push(s.version));
    await Promise.all(names.map((n) => store.attach(input(n), by)));
    expect(store.list().map((s) => s.bucket)).toEqual(names);
    expect(versions).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const reopened = await FileMigrationStateStore.open(path);
    expect(reopened.list().map((s) => s.bucket)).toEqual(names);
  });

  it("concurrent transitions of one bucket apply one after the other", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path);
    await store.attach(input("photos"), by);
    const results = await Promise.allSettled([
      store.update({ bucket: "photos" }, { mode: "forward" }, by),
      store.update({ bucket: "photos" }, { mode: "migrate" }, { ...by, confirmIrreversible: true }),
      store.update({ bucket: "photos" }, { mode: "forward" }, by),
    ]);
    // In queue order: ready→forward, forward→migrate, then migrate→forward is refused.
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect(store.get("photos")?.mode).toBe("migrate");
  });

  it("a refused change writes nothing and publishes nothing", async () => {
    const path = await freshPath();
    const store = await FileMigrationStateStore.open(path);
    await store.attach(input("alpha"), by);
    await store.attach(input("bravo"), by);
    await store.update({ bucket: "bravo" }, { mode: "forward" }, by);
    const before = await readFile(path, "utf8");
    const version = store.snapshot().version;

    // --all to migrate: alpha is in ready, so the whole update is refused (all or nothing).
    const e = await rejection(
      store.update({ all: true }, { mode: "migrate" }, { ...by, confirmIrreversible: true }),
    );
    expect(e.code).toBe("TransitionRefused");
    expect(e.rule).toBe("migrate-only-from-forward");
    expect(e.message).toContain("bucket alpha");
    expect(store.get("bravo")?.mode).toBe("forward");

    expect((await rejection(store.update({ bucket: "bravo" }, { mode: "migrate" }, by))).code).toBe(
      "ConfirmationRequired",
    );
    expect((await rejection(store.detach("bravo", by))).rule).toBe(
      "detach-only-from-ready-or-migrate",
    );
    expect((await rejection(store.attach(input("alpha"), by))).code).toBe("AlreadyAttached");
    expect((await rejection(store.update({ bucket: "zz" }, { mode: "ready" }, by))).code).toBe(
      "NotAttached",
    );
    expect((await rejection(store.update({ sourceUrl: "http://nowhere:1" }, {}, by))).code).toBe(
      "NoBucketsMatched",
    );
    expect(
      (await rejection(store.update({ bucket: "bravo" }, { sourceUrl: "ftp://x" }, by))).code,
    ).toBe("InvalidState");

    expect(await readFile(path, "utf8")).toBe(before);
    expect(store.snapshot().version).toBe(version);
  });

  it("updates by source URL, records changed source fields, and migrate→ready needs force", async () => {
    const store = await FileMigrationStateStore.open(await freshPath());
    await store.attach(input("alpha", "http://old:1"), by);
    await store.attach(input("bravo", "http://old:1"), by);
    await store.attach(input("charlie", "http://other:1"), by);
    const updated = await store.update(
      { sourceUrl: "http://old:1" },
      { sourceUrl: "http://new:2", sourceSecretKey: "rotated-secret" },
      by,
    );
    expect(updated.map((s) => s.bucket)).toEqual(["alpha", "bravo"]);
    expect(store.get("alpha")?.sourceUrl).toBe("http://new:2");
    expect(store.get("charlie")?.sourceUrl).toBe("http://other:1");
    expect(store.get("alpha")?.history.at(-1)?.changed).toEqual(["sourceUrl", "sourceSecretKey"]);

    await store.update({ bucket: "alpha" }, { mode: "forward" }, by);
    await store.update(
      { bucket: "alpha" },
      { mode: "migrate" },
      { ...by, confirmIrreversible: true },
    );
    expect((await rejection(store.update({ bucket: "alpha" }, { mode: "ready" }, by))).rule).toBe(
      "migrate-to-ready-needs-force",
    );
    await store.update({ bucket: "alpha" }, { mode: "ready" }, { ...by, force: true });
    expect(store.get("alpha")?.mode).toBe("ready");
    const last = await store.detach("alpha", by);
    expect(last.bucket).toBe("alpha");
    expect(store.get("alpha")).toBeUndefined();
  });

  it("snapshots are immutable: a reader holding one never sees a later change", async () => {
    const store = await FileMigrationStateStore.open(await freshPath());
    await store.attach(input("photos"), by);
    const old = store.snapshot();
    await store.update({ bucket: "photos" }, { mode: "forward" }, by);
    expect(old.buckets.get("photos")?.mode).toBe("ready");
    expect(store.snapshot().buckets.get("photos")?.mode).toBe("forward");
    expect(Object.isFrozen(store.get("photos"))).toBe(true);
  });
});
