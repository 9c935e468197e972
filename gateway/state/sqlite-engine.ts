/**
 * The embedded engine: one SQLite file (better-sqlite3), shared safely by the gateway
 * processes of one host.
 *
 * - WAL journal (readers never wait for the writer) and `synchronous = FULL`, so a commit is
 *   on disk before it is acknowledged (https://www.sqlite.org/pragma.html#pragma_synchronous:
 *   NORMAL in WAL mode may lose the last commits on power loss).
 * - Writes are `BEGIN IMMEDIATE` transactions: SQLite's write lock serialises them across
 *   processes. better-sqlite3 is synchronous, so instead of SQLite's busy handler (which would
 *   block the event loop, and with it every S3 request of this process, while another process
 *   writes) a busy database is retried from a timer until `busyTimeoutMs`.
 * - The file is created 0600: it holds source credentials. SQLite gives its -wal and -shm
 *   files the permissions of the database file.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import {
  MigrationStateError,
  parseStoredState,
  type ActiveClaim,
  type BucketMap,
  type ClaimOutcome,
  type GatewayStatus,
} from "./store.js";
import {
  diffBuckets,
  type CommittedChange,
  type Heartbeat,
  type LoadedState,
  type StateEngine,
} from "./engine.js";

/** Options for {@link SqliteEngine.open}. */
export interface SqliteEngineOptions {
  /** How long a busy database is retried before the operation fails; default 5000. */
  readonly busyTimeoutMs?: number;
  /** The clock (milliseconds since the epoch); tests pass their own. */
  readonly now?: () => number;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS s3gw_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT OR IGNORE INTO s3gw_meta (id, version) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS s3gw_buckets (
  bucket TEXT PRIMARY KEY,
  state TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS s3gw_gateways (
  gateway_id TEXT PRIMARY KEY,
  applied_version INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  lease_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS s3gw_tombstones (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS s3gw_claims (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  claim_id TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (bucket, key, claim_id)
) WITHOUT ROWID;
`;

/** The SQLite {@link StateEngine}. */
export class SqliteEngine implements StateEngine {
  readonly kind = "sqlite";
  readonly #db: Database.Database;
  readonly #busyTimeoutMs: number;
  readonly #now: () => number;
  readonly #stmt: ReturnType<typeof prepare>;
  #closed = false;

  private constructor(db: Database.Database, options: SqliteEngineOptions) {
    this.#db = db;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    this.#now = options.now ?? Date.now;
    this.#stmt = prepare(db);
  }

  /** Opens (or creates, 0600) the database at `path` and its schema. */
  static async open(path: string, options: SqliteEngineOptions = {}): Promise<SqliteEngine> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file ourselves so it starts 0600; SQLite would use the umask (often 0644).
    closeSync(openSync(path, "a", 0o600));
    // timeout 0: a busy database throws SQLITE_BUSY at once and is retried from a timer.
    const db = new Database(path, { timeout: 0 });
    try {
      await retryBusy(options.busyTimeoutMs ?? 5_000, () => {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
        db.pragma("foreign_keys = ON");
      });
      await retryBusy(options.busyTimeoutMs ?? 5_000, () => {
        db.transaction(() => {
          const current = Number(db.pragma("user_version", { simple: true }));
          if (current > SCHEMA_VERSION) {
            throw new MigrationStateError(
              "CorruptStateFile",
              `state database ${path} has schema ${current}, newer than this gateway's ${SCHEMA_VERSION}; upgrade the gateway`,
            );
          }
          db.exec(SCHEMA);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      });
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteEngine(db, options);
  }

  async readVersion(): Promise<number> {
    return this.#run(() => Number((this.#stmt.version.get() as { version: number }).version));
  }

  async load(): Promise<LoadedState> {
    return this.#run(() =>
      this.#db
        .transaction(() => ({
          version: Number((this.#stmt.version.get() as { version: number }).version),
          buckets: this.#readBuckets(),
        }))
        .deferred(),
    );
  }

  async transact<T>(
    change: (buckets: BucketMap, version: number) => T,
  ): Promise<CommittedChange<T>> {
    return this.#run(() =>
      this.#db
        .transaction(() => {
          const version = Number((this.#stmt.version.get() as { version: number }).version);
          const before = this.#readBuckets();
          const after = new Map(before);
          const result = change(after, version);
          const { written, removed } = diffBuckets(before, after);
          if (written.length === 0 && removed.length === 0) {
            return { version, buckets: before, result };
          }
          for (const s of written) this.#stmt.putBucket.run(s.bucket, JSON.stringify(s));
          for (const name of removed) {
            this.#stmt.deleteBucket.run(name);
            this.#stmt.clearTombstones.run(name);
            this.#stmt.clearClaims.run(name);
          }
          this.#stmt.bumpVersion.run();
          return { version: version + 1, buckets: after, result };
        })
        .immediate(),
    );
  }

  async heartbeat(beat: Heartbeat): Promise<void> {
    await this.#run(() => {
      // The time of the write itself, not of the first attempt (busy retries take time).
      const now = this.#now();
      this.#stmt.heartbeat.run(beat.gatewayId, beat.appliedVersion, now, now, beat.leaseMs);
    });
  }

  async leave(gatewayId: string): Promise<void> {
    await this.#run(() => {
      this.#stmt.leave.run(gatewayId);
    });
  }

  async liveGateways(): Promise<GatewayStatus[]> {
    const now = this.#now();
    const rows = await this.#run(
      () =>
        this.#stmt.live.all(now) as {
          gateway_id: string;
          applied_version: number;
          last_seen_ms: number;
          started_ms: number;
          lease_ms: number;
        }[],
    );
    return rows.map((r) => ({
      id: r.gateway_id,
      appliedVersion: Number(r.applied_version),
      lastSeen: new Date(Number(r.last_seen_ms)).toISOString(),
      startedAt: new Date(Number(r.started_ms)).toISOString(),
      leaseMs: Number(r.lease_ms),
    }));
  }

  async addTombstone(bucket: string, key: string): Promise<void> {
    const now = this.#now();
    await this.#run(() => {
      this.#stmt.addTombstone.run(bucket, keyBytes(key), now);
    });
  }

  async hasTombstone(bucket: string, key: string): Promise<boolean> {
    return this.#run(() => this.#stmt.hasTombstone.get(bucket, keyBytes(key)) !== undefined);
  }

  async countTombstones(bucket: string): Promise<number> {
    return this.#run(() => Number((this.#stmt.countTombstones.get(bucket) as { n: number }).n));
  }

  async claimMigrationWrite(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<ClaimOutcome> {
    const k = keyBytes(key);
    const now = this.#now();
    // One immediate transaction: the tombstone check and the claim see the same database, and
    // no addTombstone (a write) can come between them.
    return this.#run(() =>
      this.#db
        .transaction((): ClaimOutcome => {
          if (this.#stmt.hasTombstone.get(bucket, k) !== undefined) return "tombstoned";
          this.#stmt.reapClaims.run(bucket, k, now);
          this.#stmt.putClaim.run(bucket, k, claim.claimId, now + claim.ttlMs);
          return "claimed";
        })
        .immediate(),
    );
  }

  async renewClaim(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<boolean> {
    const now = this.#now();
    return this.#run(
      () =>
        this.#stmt.renewClaim.run(now + claim.ttlMs, bucket, keyBytes(key), claim.claimId, now)
          .changes > 0,
    );
  }

  async releaseClaim(bucket: string, key: string, claimId: string): Promise<void> {
    await this.#run(() => {
      this.#stmt.releaseClaim.run(bucket, keyBytes(key), claimId);
    });
  }

  async activeClaims(bucket: string, key: string): Promise<readonly ActiveClaim[]> {
    const now = this.#now();
    const rows = await this.#run(
      () =>
        this.#stmt.activeClaims.all(bucket, keyBytes(key), now) as {
          claim_id: string;
          expires_ms: number;
        }[],
    );
    return rows.map((r) => ({ claimId: r.claim_id, expiresAtMs: Number(r.expires_ms) }));
  }

  async clearKeyRecords(bucket: string): Promise<void> {
    await this.#run(() =>
      this.#db
        .transaction(() => {
          this.#stmt.clearTombstones.run(bucket);
          this.#stmt.clearClaims.run(bucket);
        })
        .immediate(),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #readBuckets(): BucketMap {
    const rows = this.#stmt.buckets.all() as { bucket: string; state: string }[];
    return new Map(rows.map((r) => [r.bucket, parseStoredState(r.bucket, r.state)]));
  }

  #run<T>(op: () => T): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new MigrationStateError("StoreUnavailable", "the state store is closed"),
      );
    }
    return retryBusy(this.#busyTimeoutMs, op);
  }
}

function prepare(db: Database.Database) {
  return {
    version: db.prepare("SELECT version FROM s3gw_meta WHERE id = 1"),
    bumpVersion: db.prepare("UPDATE s3gw_meta SET version = version + 1 WHERE id = 1"),
    buckets: db.prepare("SELECT bucket, state FROM s3gw_buckets ORDER BY bucket"),
    putBucket: db.prepare(
      "INSERT INTO s3gw_buckets (bucket, state) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET state = excluded.state",
    ),
    deleteBucket: db.prepare("DELETE FROM s3gw_buckets WHERE bucket = ?"),
    heartbeat: db.prepare(
      `INSERT INTO s3gw_gateways (gateway_id, applied_version, last_seen_ms, started_ms, lease_ms)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (gateway_id) DO UPDATE SET applied_version = excluded.applied_version,
         last_seen_ms = excluded.last_seen_ms, lease_ms = excluded.lease_ms`,
    ),
    leave: db.prepare("DELETE FROM s3gw_gateways WHERE gateway_id = ?"),
    live: db.prepare(
      "SELECT * FROM s3gw_gateways WHERE last_seen_ms + lease_ms > ? ORDER BY gateway_id",
    ),
    addTombstone: db.prepare(
      "INSERT INTO s3gw_tombstones (bucket, key, created_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    hasTombstone: db.prepare("SELECT 1 FROM s3gw_tombstones WHERE bucket = ? AND key = ?"),
    countTombstones: db.prepare("SELECT count(*) AS n FROM s3gw_tombstones WHERE bucket = ?"),
    clearTombstones: db.prepare("DELETE FROM s3gw_tombstones WHERE bucket = ?"),
    reapClaims: db.prepare(
      "DELETE FROM s3gw_claims WHERE bucket = ? AND key = ? AND expires_ms <= ?",
    ),
    putClaim: db.prepare(
      `INSERT INTO s3gw_claims (bucket, key, claim_id, expires_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (bucket, key, claim_id) DO UPDATE SET expires_ms = excluded.expires_ms`,
    ),
    renewClaim: db.prepare(
      "UPDATE s3gw_claims SET expires_ms = ? WHERE bucket = ? AND key = ? AND claim_id = ? AND expires_ms > ?",
    ),
    releaseClaim: db.prepare(
      "DELETE FROM s3gw_claims WHERE bucket = ? AND key = ? AND claim_id = ?",
    ),
    activeClaims: db.prepare(
      "SELECT claim_id, expires_ms FROM s3gw_claims WHERE bucket = ? AND key = ? AND expires_ms > ? ORDER BY claim_id",
    ),
    clearClaims: db.prepare("DELETE FROM s3gw_claims WHERE bucket = ?"),
  };
}

/** An S3 key as the bytes of its UTF-8 encoding: keys are compared as bytes, never normalised. */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/** Runs `op`, retrying from a timer while SQLite answers SQLITE_BUSY / SQLITE_LOCKED. */
async function retryBusy<T>(timeoutMs: number, op: () => T): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return op();
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (!code.startsWith("SQLITE_BUSY") && !code.startsWith("SQLITE_LOCKED")) {
        if (err instanceof MigrationStateError) throw err;
        if (code.startsWith("SQLITE_")) {
          throw new MigrationStateError("StoreUnavailable", `state store: ${code}`, { cause: err });
        }
        throw err;
      }
      if (Date.now() >= deadline) {
        throw new MigrationStateError(
          "StoreUnavailable",
          `state store busy for more than ${timeoutMs} ms`,
          { cause: err },
        );
      }
      // Jittered backoff, 1..50 ms: short transactions release the lock within milliseconds.
      await sleep(Math.min(50, 1 + attempt * 5) * (0.5 + Math.random() / 2));
    }
  }
}
