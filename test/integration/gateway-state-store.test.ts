// The state store's contract (issue 12), one suite run against both engines: SQLite on a temp
// file and a real PostgreSQL started by the rig (test/rig/postgres.ts). Durable before
// acknowledged (a writer killed with SIGKILL right after an acknowledgement loses nothing),
// atomic and all-or-nothing transitions, concurrent writers on several connections and
// processes, restart, heartbeats and freshness, the JSON import, and the per-key records of
// migrate mode (tombstones vs migration-write claims, raced by a seeded model).

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import pgClient from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StateConfig } from "../../gateway/config.js";
import { CachedMigrationStateStore } from "../../gateway/state/cached-store.js";
import { openEngine, openStateStore } from "../../gateway/state/open.js";
import { keyLockId } from "../../gateway/state/postgres-engine.js";
import {
  MigrationStateError,
  serialiseStateFile,
  type AttachInput,
  type BucketMigrationState,
} from "../../gateway/state/store.js";
import { startPostgres, type RigPostgres } from "../rig/postgres.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SECRET = "source-secret-value";
const by = { by: "admin1" };

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

async function rejection(p: Promise<unknown>): Promise<MigrationStateError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationStateError);
    return err as MigrationStateError;
  }
  throw new Error("expected a rejection");
}

/** Waits until `check` holds, polling; fails after `ms` (never sleeps to win a race). */
async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A small seeded PRNG (mulberry32) so a failing round can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LEASE_MS = 1_500;
const POLL_MS = 100;

interface EngineUnderTest {
  readonly name: "sqlite" | "postgres";
  /** A fresh, empty store location. */
  fresh(): Promise<StateConfig>;
}

function stateConfig(extra: Partial<StateConfig>): StateConfig {
  return {
    engine: "sqlite",
    sqlitePath: undefined,
    path: undefined,
    url: undefined,
    password: undefined,
    tls: undefined,
    importJson: undefined,
    gatewayId: undefined,
    leaseMs: LEASE_MS,
    pollMs: POLL_MS,
    confirmTimeoutMs: 2 * LEASE_MS,
    ...extra,
  };
}

let pg: RigPostgres;

const engines: EngineUnderTest[] = [
  {
    name: "sqlite",
    fresh: async () => {
      const path = join(await mkdtemp(join(tmpdir(), "s3gw-state-")), "sub", "state.db");
      return stateConfig({ engine: "sqlite", path, sqlitePath: path });
    },
  },
  {
    name: "postgres",
    fresh: async () =>
      stateConfig({ engine: "postgres", url: await pg.createDatabase(), password: pg.password }),
  },
];

beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.close();
});

let gatewayCount = 0;
function open(
  config: StateConfig,
  extra: { gatewayId?: string; now?: () => Date; passive?: boolean } = {},
): Promise<CachedMigrationStateStore> {
  return openStateStore(
    { ...config, gatewayId: extra.gatewayId ?? `gw-${process.pid}-${++gatewayCount}` },
    {
      ...(extra.now ? { now: extra.now } : {}),
      ...(extra.passive ? { passive: true } : {}),
    },
  );
}

describe.each(engines)("state store contract: $name", (engine) => {
  it("a change is durable once acknowledged and survives a restart", async () => {
    const config = await engine.fresh();
    const store = await open(config, { now: () => new Date("2026-01-02T03:04:05Z") });
    await store.attach(input("photos"), by);
    await store.update({ bucket: "photos" }, { mode: "forward" }, by);
    expect(store.snapshot().version).toBe(2);
    // Another connection sees it at once, without the first one closing.
    const other = await open(config, { passive: true });
    expect(other.get("photos")?.mode).toBe("forward");
    await other.close();
    await store.close();

    const again = await open(config);
    const s = again.get("photos");
    expect(s?.mode).toBe("forward");
    expect(s?.sourceSecretKey).toBe(SECRET);
    expect(s?.history).toEqual([
      { at: "2026-01-02T03:04:05.000Z", from: "detached", to: "ready", by: "admin1" },
      { at: "2026-01-02T03:04:05.000Z", from: "ready", to: "forward", by: "admin1" },
    ]);
    expect(again.snapshot().version).toBe(2);
    await again.close();
    if (engine.name === "sqlite") {
      // It holds the source secret: 0600.
      expect((await stat(config.sqlitePath as string)).mode & 0o777).toBe(0o600);
    }
  });

  it("a writer killed with SIGKILL right after acknowledgements loses none of them", async () => {
    const config = await engine.fresh();
    // Create the schema first, so the child's first write is the only thing it does.
    await (await open(config, { passive: true })).close();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/integration/gateway-state-writer.child.ts")],
      {
        cwd: ROOT,
        env: { ...process.env, STATE_CONFIG: JSON.stringify(config), WRITES: "1000" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const acked: string[] = [];
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    let buffer = "";
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const l of lines) if (l.startsWith("acked ")) acked.push(l.slice(6));
      if (acked.length >= 15) child.kill("SIGKILL");
    });
    await exited;
    expect(acked.length, err).toBeGreaterThanOrEqual(15);
    const store = await open(config, { passive: true });
    const names = new Set(store.list().map((s) => s.bucket));
    for (const b of acked) expect(names.has(b), b).toBe(true);
    await store.close();
  });

  it("serialises concurrent writers on several connections: no attach is lost", async () => {
    const config = await engine.fresh();
    const stores = await Promise.all([open(config), open(config), open(config)]);
    const names = Array.from({ length: 30 }, (_, i) => `bucket-${String(i).padStart(2, "0")}`);
    await Promise.all(names.map((n, i) => stores[i % 3]?.attach(input(n), by)));
    for (const s of stores) await s.refresh();
    for (const s of stores) {
      expect(s.list().map((b) => b.bucket)).toEqual(names);
      expect(s.snapshot().version).toBe(30);
    }
    await Promise.all(stores.map((s) => s.close()));
  });

  it("serialises concurrent writer processes: every acknowledged attach is there", async () => {
    const config = await engine.fresh();
    await (await open(config, { passive: true })).close();
    const run = (prefix: string): Promise<string[]> =>
      new Promise((done, fail) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join(ROOT, "test/integration/gateway-state-writer.child.ts")],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              STATE_CONFIG: JSON.stringify(config),
              WRITES: "15",
              PREFIX: prefix,
            },
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.once("exit", (code) =>
          code === 0
            ? done(
                out
                  .split("\n")
                  .filter((l) => l.startsWith("acked "))
                  .map((l) => l.slice(6)),
              )
            : fail(new Error(`writer exited ${code}: ${err}`)),
        );
      });
    const acked = (await Promise.all([run("p1"), run("p2"), run("p3")])).flat();
    expect(acked.length).toBe(45);
    const store = await open(config, { passive: true });
    expect(
      store
        .list()
        .map((s) => s.bucket)
        .sort(),
    ).toEqual([...acked].sort());
    expect(store.snapshot().version).toBe(45);
    await store.close();
  });

  it("concurrent transitions of one bucket apply one after the other", async () => {
    const config = await engine.fresh();
    const a = await open(config);
    const b = await open(config);
    await a.attach(input("photos"), by);
    await b.refresh();
    const results = await Promise.allSettled([
      a.update({ bucket: "photos" }, { mode: "forward" }, by),
      b.update({ bucket: "photos" }, { mode: "forward" }, by),
    ]);
    // Both see ready → forward or forward → forward (a no-op): never a lost or double history.
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
    await a.refresh();
    expect(a.get("photos")?.history.map((h) => `${h.from}>${h.to}`)).toEqual([
      "detached>ready",
      "ready>forward",
    ]);
    await Promise.all([a.close(), b.close()]);
  });

  it("a refused change writes nothing and publishes nothing", async () => {
    const config = await engine.fresh();
    const store = await open(config);
    await store.attach(input("alpha"), by);
    await store.attach(input("bravo"), by);
    await store.update({ bucket: "bravo" }, { mode: "forward" }, by);
    const version = store.snapshot().version;
    const e = await rejection(
      store.update({ all: true }, { mode: "migrate" }, { ...by, confirmIrreversible: true }),
    );
    expect(e.code).toBe("TransitionRefused");
    expect(e.rule).toBe("migrate-only-from-forward");
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
    expect(
      (await rejection(store.update({ bucket: "bravo" }, { sourceUrl: "ftp://x" }, by))).code,
    ).toBe("InvalidState");
    expect(store.snapshot().version).toBe(version);
    const other = await open(config, { passive: true });
    expect(other.snapshot().version).toBe(version);
    expect(other.get("bravo")?.mode).toBe("forward");
    expect(other.get("alpha")?.mode).toBe("ready");
    await Promise.all([store.close(), other.close()]);
  });

  it("snapshots are immutable and follow changes made elsewhere by version", async () => {
    const config = await engine.fresh();
    const a = await open(config);
    const b = await open(config);
    await a.attach(input("photos"), by);
    const old = a.snapshot();
    const seen: number[] = [];
    b.subscribe((s) => seen.push(s.version));
    await a.update({ bucket: "photos" }, { mode: "forward" }, by);
    expect(old.buckets.get("photos")?.mode).toBe("ready");
    expect(Object.isFrozen(a.get("photos"))).toBe(true);
    await until(() => b.get("photos")?.mode === "forward");
    expect(seen.at(-1)).toBe(2);
    await Promise.all([a.close(), b.close()]);
  });

  it("heartbeats: live gateways, the version each applied, leaving, and a dead one's lease", async () => {
    const config = await engine.fresh();
    const a = await open(config, { gatewayId: "gw-a" });
    const b = await open(config, { gatewayId: "gw-b" });
    expect((await a.liveGateways()).map((g) => g.id)).toEqual(["gw-a", "gw-b"]);
    await a.attach(input("photos"), by);
    // b applies within a poll (at once on PostgreSQL), so the wait returns nobody pending.
    expect(await a.waitForGateways(1, { timeoutMs: 10_000 })).toEqual([]);
    expect((await a.liveGateways()).every((g) => g.appliedVersion === 1)).toBe(true);
    await b.close();
    expect((await a.liveGateways()).map((g) => g.id)).toEqual(["gw-a"]);

    // A gateway that stops heartbeating without leaving (as after SIGKILL): it holds up a
    // change for at most its lease.
    const raw = await openEngine(config);
    await raw.heartbeat({ gatewayId: "gw-dead", appliedVersion: 1, leaseMs: LEASE_MS });
    await a.update({ bucket: "photos" }, { mode: "forward" }, by);
    const started = Date.now();
    expect((await a.waitForGateways(2, { timeoutMs: 100 })).map((g) => g.id)).toEqual(["gw-dead"]);
    expect(await a.waitForGateways(2, { timeoutMs: 10_000 })).toEqual([]);
    expect(Date.now() - started).toBeLessThan(LEASE_MS + 2_000);
    expect((await a.liveGateways()).map((g) => g.id)).toEqual(["gw-a"]);
    await raw.close();
    await a.close();
  });

  it("imports a JSON state file of the previous release exactly, once, and keeps it", async () => {
    const base = await engine.fresh();
    const dir = await mkdtemp(join(tmpdir(), "s3gw-import-"));
    const jsonPath = join(dir, "migrations.json");
    const states: BucketMigrationState[] = (["ready", "forward", "migrate"] as const).map(
      (mode, i) => ({
        ...input(`bucket-${mode}`, `http://source-${i}:9000`),
        sourceCa: i === 1 ? "system" : "system",
        mode,
        history: [
          { at: "2026-01-01T00:00:00.000Z", from: "detached", to: "ready", by: "old-admin" },
          ...(mode === "ready"
            ? []
            : [
                {
                  at: "2026-01-01T01:00:00.000Z",
                  from: "ready",
                  to: "forward",
                  by: "old-admin",
                } as const,
              ]),
          ...(mode === "migrate"
            ? [
                {
                  at: "2026-01-01T02:00:00.000Z",
                  from: "forward",
                  to: "migrate",
                  by: "old-admin",
                } as const,
              ]
            : []),
        ],
      }),
    );
    const text = serialiseStateFile(new Map(states.map((s) => [s.bucket, s])));
    await writeFile(jsonPath, text, { mode: 0o600 });
    const config: StateConfig =
      engine.name === "sqlite"
        ? { ...base, path: jsonPath, sqlitePath: join(dir, "migrations.db") }
        : { ...base, importJson: jsonPath };
    const store = await open(config);
    expect(store.list()).toEqual([...states].sort((a, b) => (a.bucket < b.bucket ? -1 : 1)));
    expect(store.snapshot().version).toBe(1);
    await store.detach("bucket-ready", by);
    await store.close();
    // Kept as it was; not imported again (the detached bucket stays detached).
    expect(await readFile(jsonPath, "utf8")).toBe(text);
    const again = await open(config);
    expect(again.list().map((s) => s.bucket)).toEqual(["bucket-forward", "bucket-migrate"]);
    await again.close();
  });

  it("tombstones: durable, idempotent, per bucket, keys as bytes", async () => {
    const config = await engine.fresh();
    const store = await open(config);
    const nfc = "caf\u00e9";
    const nfd = "cafe\u0301";
    const keys = [nfc, "dir/", "a//b", "line\nbreak", "k".repeat(1024), "%2F+ "];
    for (const k of keys) await store.addTombstone("photos", k);
    await store.addTombstone("photos", nfc);
    expect(await store.countTombstones("photos")).toBe(keys.length);
    expect(await store.hasTombstone("photos", nfd)).toBe(false);
    expect(await store.hasTombstone("other", nfc)).toBe(false);
    const other = await open(config, { passive: true });
    for (const k of keys) expect(await other.hasTombstone("photos", k)).toBe(true);
    await store.clearKeyRecords("photos");
    expect(await other.countTombstones("photos")).toBe(0);
    await Promise.all([store.close(), other.close()]);
  });

  it("claims: refused on a tombstone, listed while active, renewed, released, expired", async () => {
    const config = await engine.fresh();
    const store = await open(config);
    expect(await store.claimMigrationWrite("bkt1", "k", { claimId: "c1", ttlMs: 60_000 })).toBe(
      "claimed",
    );
    expect(await store.claimMigrationWrite("bkt1", "k", { claimId: "c2", ttlMs: 60_000 })).toBe(
      "claimed",
    );
    expect((await store.activeClaims("bkt1", "k")).map((c) => c.claimId)).toEqual(["c1", "c2"]);
    await store.releaseClaim("bkt1", "k", "c1");
    await store.releaseClaim("bkt1", "k", "c1");
    expect((await store.activeClaims("bkt1", "k")).map((c) => c.claimId)).toEqual(["c2"]);
    expect(await store.renewClaim("bkt1", "k", { claimId: "c2", ttlMs: 60_000 })).toBe(true);
    expect(await store.renewClaim("bkt1", "k", { claimId: "gone", ttlMs: 60_000 })).toBe(false);

    await store.addTombstone("bkt1", "k");
    expect(await store.claimMigrationWrite("bkt1", "k", { claimId: "c3", ttlMs: 60_000 })).toBe(
      "tombstoned",
    );
    // A short claim expires by itself (a migration writer that died).
    expect(await store.claimMigrationWrite("bkt1", "short", { claimId: "s", ttlMs: 200 })).toBe(
      "claimed",
    );
    await until(async () => (await store.activeClaims("bkt1", "short")).length === 0);
    expect(await store.renewClaim("bkt1", "short", { claimId: "s", ttlMs: 60_000 })).toBe(false);

    // Detach drops the bucket's key records in its own transaction.
    await store.attach(input("bkt1"), by);
    await store.detach("bkt1", by);
    expect(await store.countTombstones("bkt1")).toBe(0);
    expect(await store.activeClaims("bkt1", "k")).toEqual([]);
    await store.close();
  });

  it("claim vs tombstone races (seeded): a claim either sees the tombstone or is seen by the DELETE", async () => {
    const config = await engine.fresh();
    const seed = Number(process.env.STATE_RACE_SEED ?? Date.now() % 2 ** 31);
    console.log(
      `claim/tombstone race seed ${seed} (${engine.name}); replay with STATE_RACE_SEED=${seed}`,
    );
    const random = prng(seed);
    const writers = await Promise.all([
      open(config, { passive: true }),
      open(config, { passive: true }),
    ]);
    const deleters = await Promise.all([
      open(config, { passive: true }),
      open(config, { passive: true }),
    ]);
    const rounds = 150;
    for (let round = 0; round < rounds; round++) {
      const key = `key-${round}-${random().toString(36).slice(2, 6)}`;
      const writer = writers[Math.floor(random() * 2)] as CachedMigrationStateStore;
      const deleter = deleters[Math.floor(random() * 2)] as CachedMigrationStateStore;
      const claimId = `claim-${round}`;
      // The DELETE side of issue 13: tombstone first, then look for in-flight claims.
      const del = async (): Promise<readonly string[]> => {
        await deleter.addTombstone("race", key);
        return (await deleter.activeClaims("race", key)).map((c) => c.claimId);
      };
      const claim = (): Promise<string> =>
        writer.claimMigrationWrite("race", key, { claimId, ttlMs: 60_000 });
      const order = random() < 0.5;
      const [outcome, seen] = order
        ? await Promise.all([claim(), del()])
        : await Promise.all([del(), claim()]).then(([s, o]) => [o, s] as const);
      // The invariant: never both "claimed" and unseen by the DELETE.
      if (outcome === "claimed") expect(seen, `seed ${seed} round ${round}`).toContain(claimId);
      else expect(outcome).toBe("tombstoned");
    }
    await Promise.all([...writers, ...deleters].map((s) => s.close()));
  });

  it("held interleaving: a claim waiting for the key's lock sees a tombstone committed meanwhile", async () => {
    const config = await engine.fresh();
    const store = await open(config, { passive: true });
    await store.countTombstones("held"); // the schema exists
    const key = "held/key";
    let claim: Promise<string>;
    if (engine.name === "sqlite") {
      // The DELETE's transaction holds SQLite's write lock with its tombstone written but not
      // committed; the claim's first attempt runs (and finds the database busy) before
      // claimMigrationWrite returns, so it is waiting when the tombstone commits.
      const raw = new Database(config.sqlitePath as string, { timeout: 0 });
      raw.exec("BEGIN IMMEDIATE");
      raw
        .prepare("INSERT INTO s3gw_tombstones (bucket, key, created_ms) VALUES (?, ?, ?)")
        .run("held", Buffer.from(key), Date.now());
      claim = store.claimMigrationWrite("held", key, { claimId: "c", ttlMs: 60_000 });
      raw.exec("COMMIT");
      raw.close();
    } else {
      // The DELETE's transaction holds the key's advisory lock; the claim is seen waiting for
      // it in pg_locks before the tombstone is written and committed.
      const u = new URL(config.url as string);
      const raw = new pgClient.Client({
        host: u.hostname,
        port: Number(u.port),
        user: pg.user,
        password: pg.password,
        database: u.pathname.slice(1),
      });
      await raw.connect();
      await raw.query("BEGIN");
      await raw.query("SELECT pg_advisory_xact_lock($1)", [keyLockId("held", key)]);
      claim = store.claimMigrationWrite("held", key, { claimId: "c", ttlMs: 60_000 });
      await until(async () => {
        const r = await raw.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        );
        return Number(r.rows[0]?.n) > 0;
      });
      await raw.query("INSERT INTO s3gw_tombstones (bucket, key, created_ms) VALUES ($1, $2, 0)", [
        "held",
        Buffer.from(key),
      ]);
      await raw.query("COMMIT");
      await raw.end();
    }
    expect(await claim).toBe("tombstoned");
    expect(await store.activeClaims("held", key)).toEqual([]);
    await store.close();
  });

  it("goes stale when the store cannot be reached for a lease, and recovers by itself", async () => {
    const config = await engine.fresh();
    const store = await open(config);
    await store.attach(input("photos"), by);
    expect(store.isFresh()).toBe(true);
    let release: () => Promise<void>;
    if (engine.name === "sqlite") {
      // Another process holding the write lock: heartbeats cannot be written.
      const blocker = new Database(config.sqlitePath as string, { timeout: 5_000 });
      blocker.exec("BEGIN EXCLUSIVE");
      release = async () => {
        blocker.exec("COMMIT");
        blocker.close();
      };
    } else {
      await pg.stop();
      release = () => pg.start();
    }
    try {
      await until(() => !store.isFresh(), LEASE_MS + 15_000);
      expect(store.secondsSinceConfirmed()).toBeGreaterThanOrEqual(LEASE_MS / 1000);
      // The cached state is still there for detached decisions; only its freshness is gone.
      expect(store.get("photos")?.mode).toBe("ready");
      await expect(
        store.update({ bucket: "photos" }, { mode: "forward" }, by),
      ).rejects.toMatchObject({
        code: "StoreUnavailable",
      });
    } finally {
      await release();
    }
    await until(() => store.isFresh(), 30_000);
    await store.update({ bucket: "photos" }, { mode: "forward" }, by);
    expect(store.get("photos")?.mode).toBe("forward");
    await store.close();
  });
});

describe("state store: secrets", () => {
  it("errors name the store, never a secret or the SQL", async () => {
    const config = stateConfig({
      engine: "postgres",
      url: `postgres://${pg.user}@127.0.0.1:${pg.port}/postgres`,
      password: `wrong-${randomBytes(6).toString("hex")}`,
    });
    const e = await rejection(openEngine(config));
    expect(e.code).toBe("StoreUnavailable");
    expect(e.message).toMatch(/^state store \(postgres\) failed: /);
    expect(e.message).not.toContain(config.password as string);
  });
});
