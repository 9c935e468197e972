// State store benchmark (issues 12 and 13): on SQLite (a temp file) and PostgreSQL (the test
// rig's throwaway cluster, loopback), measure
//   - what the request path pays per request: the cached snapshot read and the freshness check;
//   - a transition (store.update, durable) and the per-key records: a durable tombstone insert,
//     a claim + release, and tombstone lookups with 1,000,000 tombstones in the table;
//   - the size on disk of 1,000,000 tombstones.
// The million rows are bulk-loaded in large transactions (one durable insert per key would
// measure fsync a million times); single-key operations are then timed one by one, durably.
//
// Run: npx tsx bench/state/bench.ts [--tombstones 1000000] [--ops 2000]
// Prints a table and one JSON line per engine.

import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import pg from "pg";
import type { StateConfig } from "../../gateway/config.js";
import { openStateStore } from "../../gateway/state/open.js";
import type { MigrationStateStore } from "../../gateway/state/store.js";
import { startPostgres } from "../../test/rig/postgres.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const TOMBSTONES = arg("tombstones", 1_000_000);
const OPS = arg("ops", 2_000);
const BUCKET = "bench";
const keyOf = (i: number): string => `photos/2026/img-${i}.jpg`;

interface Timing {
  opsPerSec: number;
  p50us: number;
  p99us: number;
}

async function timeOps(count: number, op: (i: number) => Promise<unknown>): Promise<Timing> {
  const lat: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await op(i);
    lat.push(performance.now() - t);
  }
  const total = performance.now() - start;
  lat.sort((a, b) => a - b);
  const q = (p: number): number => Math.round((lat[Math.floor(p * (lat.length - 1))] ?? 0) * 1000);
  return { opsPerSec: Math.round((count / total) * 1000), p50us: q(0.5), p99us: q(0.99) };
}

/** Nanoseconds per call of what the request path does with the store (no I/O). */
function requestPathNs(store: MigrationStateStore): { snapshotNs: number; baselineNs: number } {
  const n = 5_000_000;
  let hits = 0;
  const names = ["bench-a", "other", "bench-b", "nope"];
  // Warm up, then measure the loop with and without the store calls.
  for (let i = 0; i < 100_000; i++)
    if (store.snapshot().buckets.get(names[i & 3] as string)) hits++;
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    const state = store.snapshot().buckets.get(names[i & 3] as string);
    if (state !== undefined && store.isFresh()) hits++;
  }
  const snapshotNs = ((performance.now() - t) * 1e6) / n;
  const map = new Map(store.snapshot().buckets);
  t = performance.now();
  for (let i = 0; i < n; i++) if (map.get(names[i & 3] as string) !== undefined) hits++;
  const baselineNs = ((performance.now() - t) * 1e6) / n;
  if (hits < 0) console.log(hits);
  return {
    snapshotNs: Math.round(snapshotNs * 10) / 10,
    baselineNs: Math.round(baselineNs * 10) / 10,
  };
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
    gatewayId: "bench",
    leaseMs: 15_000,
    pollMs: 1_000,
    confirmTimeoutMs: 30_000,
    ...extra,
  };
}

async function run(
  name: string,
  config: StateConfig,
  bulkLoad: () => Promise<void>,
  size: () => Promise<number>,
): Promise<Record<string, unknown>> {
  const store = await openStateStore(config);
  const source = {
    sourceUrl: "http://127.0.0.1:7070",
    sourceAccessKey: "k",
    sourceSecretKey: "s",
    sourceRegion: "us-east-1",
    sourceCa: "system",
  };
  await store.attach({ bucket: "bench-a", sourceBucket: "bench-a", ...source }, { by: "bench" });
  await store.attach({ bucket: "bench-b", sourceBucket: "bench-b", ...source }, { by: "bench" });
  const requestPath = requestPathNs(store);
  const transitions = Math.min(OPS, 500);
  const transition = await timeOps(transitions, (i) =>
    store.update(
      { bucket: "bench-a" },
      { mode: i % 2 === 0 ? "forward" : "ready" },
      { by: "bench" },
    ),
  );
  // The poll's own operations, as the store times them (the latency metric's source).
  const perOp = new Map<string, number[]>();
  const unobserve = store.observeOperations((op, seconds) => {
    perOp.set(op, [...(perOp.get(op) ?? []), seconds * 1e6]);
  });
  const versionRead = await timeOps(OPS, () => store.refresh());
  unobserve();
  const p50 = (op: string): number => {
    const v = [...(perOp.get(op) ?? [])].sort((a, b) => a - b);
    return Math.round(v[Math.floor((v.length - 1) / 2)] ?? 0);
  };
  const pollOps = {
    readVersionP50us: p50("readVersion"),
    heartbeatP50us: p50("heartbeat"),
    liveGatewaysP50us: p50("liveGateways"),
    heartbeats: perOp.get("heartbeat")?.length ?? 0,
  };
  const insert = await timeOps(OPS, (i) => store.addTombstone(BUCKET, `single/${i}`));
  const claim = await timeOps(OPS, async (i) => {
    await store.claimMigrationWrite(BUCKET, `claim/${i}`, { claimId: "c", ttlMs: 60_000 });
    await store.releaseClaim(BUCKET, `claim/${i}`, "c");
  });
  const loadStart = performance.now();
  await bulkLoad();
  const bulkSeconds = Math.round((performance.now() - loadStart) / 100) / 10;
  const bytes = await size();
  let rnd = 12345;
  const next = (): number => (rnd = (rnd * 1103515245 + 12345) % 2 ** 31);
  const lookupHit = await timeOps(OPS, () =>
    store.hasTombstone(BUCKET, keyOf(next() % TOMBSTONES)),
  );
  const lookupMiss = await timeOps(OPS, () => store.hasTombstone(BUCKET, `absent/${next()}`));
  const insertAt1M = await timeOps(OPS, (i) => store.addTombstone(BUCKET, `after/${i}`));
  const count = await store.countTombstones(BUCKET);
  await store.close();
  return {
    engine: name,
    requestPath,
    transition,
    pollVersionAndHeartbeat: versionRead,
    pollOps,
    tombstoneInsert: insert,
    claimAndRelease: claim,
    tombstones: count,
    bulkLoadSeconds: bulkSeconds,
    bytesOnDisk: bytes,
    bytesPerTombstone: Math.round(bytes / count),
    lookupHitAt1M: lookupHit,
    lookupMissAt1M: lookupMiss,
    insertAt1M,
  };
}

async function main(): Promise<void> {
  const results: Record<string, unknown>[] = [];
  const dir = await mkdtemp(join(tmpdir(), "s3gw-bench-state-"));
  const dbPath = join(dir, "state.db");
  results.push(
    await run(
      "sqlite",
      stateConfig({ engine: "sqlite", path: dbPath, sqlitePath: dbPath }),
      async () => {
        const db = new Database(dbPath, { timeout: 10_000 });
        const ins = db.prepare(
          "INSERT OR IGNORE INTO s3gw_tombstones (bucket, key, created_ms) VALUES (?, ?, ?)",
        );
        const batch = db.transaction((from: number, to: number) => {
          for (let i = from; i < to; i++) ins.run(BUCKET, Buffer.from(keyOf(i)), Date.now());
        });
        for (let i = 0; i < TOMBSTONES; i += 50_000) batch(i, Math.min(TOMBSTONES, i + 50_000));
        db.pragma("wal_checkpoint(TRUNCATE)");
        db.close();
      },
      async () => {
        const sizeOf = (p: string): number => {
          try {
            return statSync(p).size;
          } catch {
            return 0;
          }
        };
        return sizeOf(dbPath) + sizeOf(`${dbPath}-wal`);
      },
    ),
  );
  await rm(dir, { recursive: true, force: true });

  const cluster = await startPostgres();
  try {
    const url = await cluster.createDatabase("bench");
    const client = async (): Promise<pg.Client> => {
      const u = new URL(url);
      const c = new pg.Client({
        host: u.hostname,
        port: Number(u.port),
        user: cluster.user,
        password: cluster.password,
        database: u.pathname.slice(1),
      });
      await c.connect();
      return c;
    };
    results.push(
      await run(
        "postgres",
        stateConfig({ engine: "postgres", url, password: cluster.password }),
        async () => {
          const c = await client();
          await c.query(
            `INSERT INTO s3gw_tombstones (bucket, key, created_ms)
             SELECT $1, convert_to('photos/2026/img-' || i || '.jpg', 'UTF8'), 0
             FROM generate_series(0, $2 - 1) AS i ON CONFLICT DO NOTHING`,
            [BUCKET, TOMBSTONES],
          );
          await c.query("VACUUM ANALYZE s3gw_tombstones");
          await c.end();
        },
        async () => {
          const c = await client();
          const r = await c.query<{ n: string }>(
            "SELECT pg_total_relation_size('s3gw_tombstones') AS n",
          );
          await c.end();
          return Number(r.rows[0]?.n ?? 0);
        },
      ),
    );
  } finally {
    await cluster.close();
  }

  const fmt = (t: unknown): string => {
    const x = t as Timing;
    return `${x.opsPerSec}/s p50 ${x.p50us}µs p99 ${x.p99us}µs`;
  };
  for (const r of results) {
    const rp = r.requestPath as { snapshotNs: number; baselineNs: number };
    console.log(`\n== ${String(r.engine)} (${String(r.tombstones)} tombstones)`);
    console.log(
      `request path: snapshot()+get+isFresh ${rp.snapshotNs} ns vs Map.get ${rp.baselineNs} ns`,
    );
    console.log(`transition (update, durable):  ${fmt(r.transition)}`);
    console.log(`poll (version + heartbeat):    ${fmt(r.pollVersionAndHeartbeat)}`);
    console.log(`  per operation (p50 µs):      ${JSON.stringify(r.pollOps)}`);
    console.log(`tombstone insert (durable):    ${fmt(r.tombstoneInsert)}`);
    console.log(`claim + release:               ${fmt(r.claimAndRelease)}`);
    console.log(
      `bulk load ${TOMBSTONES}: ${String(r.bulkLoadSeconds)} s; on disk ${Math.round(Number(r.bytesOnDisk) / 1048576)} MiB (${String(r.bytesPerTombstone)} B/tombstone)`,
    );
    console.log(`lookup hit at 1M:              ${fmt(r.lookupHitAt1M)}`);
    console.log(`lookup miss at 1M:             ${fmt(r.lookupMissAt1M)}`);
    console.log(`insert at 1M (durable):        ${fmt(r.insertAt1M)}`);
  }
  for (const r of results) console.log(JSON.stringify(r));
}

await main();
