/**
 * The shared engine: PostgreSQL (pg), for gateways on several hosts.
 *
 * - A change of the bucket states locks the single meta row (`SELECT … FOR UPDATE`), so
 *   writers are serialised across every gateway, then reads, writes and bumps the version in
 *   the same transaction; COMMIT returns once the server made it durable
 *   (`synchronous_commit`, on by default).
 * - A tombstone and a migration-write claim of the same key take the same transaction-scoped
 *   advisory lock (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS),
 *   so under READ COMMITTED the claim either sees the tombstone or committed before the
 *   tombstone's writer looks for claims.
 * - Every change sends `NOTIFY s3gw_state`; a listening connection makes the other gateways
 *   reload at once instead of at their next poll.
 * - Times (heartbeats, claim expiry) are the server's clock, so hosts need not agree on theirs.
 * - Every wait is bounded: connect, query and statement timeouts.
 */
import { createHash } from "node:crypto";
import pg from "pg";
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

/** How to reach PostgreSQL. */
export interface PostgresEngineOptions {
  /** `postgres://user@host:port/database` (no password: see `password`). */
  readonly url: string;
  /** The password; undefined lets pg read `PGPASSWORD` (or ~/.pgpass). */
  readonly password?: string | undefined;
  /** TLS: undefined for none, or the CA (PEM) and optional client certificate. */
  readonly tls?:
    | {
        readonly ca?: string | undefined;
        readonly cert?: string | undefined;
        readonly key?: string | undefined;
      }
    | undefined;
  /** Limit for connecting and for each query; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Pool size; default 4. */
  readonly maxConnections?: number;
}

const NOTIFY_CHANNEL = "s3gw_state";
/** The advisory lock taken while the schema is created (several gateways may start at once). */
const SCHEMA_LOCK = 0x5333_4757;
const SCHEMA_VERSION = 1;
const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS s3gw_meta (
  id integer PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL,
  schema_version integer NOT NULL
);
INSERT INTO s3gw_meta (id, version, schema_version) VALUES (1, 0, ${SCHEMA_VERSION}) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS s3gw_buckets (
  bucket text PRIMARY KEY,
  state text NOT NULL
);
CREATE TABLE IF NOT EXISTS s3gw_gateways (
  gateway_id text PRIMARY KEY,
  applied_version bigint NOT NULL,
  last_seen_ms bigint NOT NULL,
  started_ms bigint NOT NULL,
  lease_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS s3gw_tombstones (
  bucket text NOT NULL,
  key bytea NOT NULL,
  created_ms bigint NOT NULL,
  PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS s3gw_claims (
  bucket text NOT NULL,
  key bytea NOT NULL,
  claim_id text NOT NULL,
  expires_ms bigint NOT NULL,
  PRIMARY KEY (bucket, key, claim_id)
);
`;

/** The PostgreSQL {@link StateEngine}. */
export class PostgresEngine implements StateEngine {
  readonly kind = "postgres";
  readonly #pool: pg.Pool;
  readonly #config: pg.ClientConfig;
  #listener: pg.Client | undefined;
  #onChange: (() => void) | undefined;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(config: pg.ClientConfig, maxConnections: number) {
    this.#config = config;
    this.#pool = new pg.Pool({ ...config, max: maxConnections, idleTimeoutMillis: 30_000 });
    // An idle connection that breaks (server restart) is reported here; without a handler it
    // would crash the process. The next query opens a new one.
    this.#pool.on("error", () => undefined);
  }

  /** Connects, creates the schema when missing, and checks its version. */
  static async open(options: PostgresEngineOptions): Promise<PostgresEngine> {
    const timeout = options.timeoutMs ?? 5_000;
    // The URL is taken apart here rather than given to pg as connectionString: pg lets the
    // string's (absent) password override the one passed beside it.
    const url = new URL(options.url);
    const config: pg.ClientConfig = {
      host: decodeURIComponent(url.hostname).replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: url.port ? Number(url.port) : 5432,
      ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
      ...(url.pathname.length > 1 ? { database: decodeURIComponent(url.pathname.slice(1)) } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      statement_timeout: timeout,
      application_name: "s3gw",
      ...(options.tls
        ? {
            ssl: {
              rejectUnauthorized: true,
              ...(options.tls.ca ? { ca: options.tls.ca } : {}),
              ...(options.tls.cert ? { cert: options.tls.cert } : {}),
              ...(options.tls.key ? { key: options.tls.key } : {}),
            },
          }
        : {}),
    };
    const engine = new PostgresEngine(config, options.maxConnections ?? 4);
    try {
      await engine.#tx(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
        await c.query(SCHEMA);
        const { rows } = await c.query<{ schema_version: number }>(
          "SELECT schema_version FROM s3gw_meta WHERE id = 1",
        );
        const current = Number(rows[0]?.schema_version ?? 0);
        if (current > SCHEMA_VERSION) {
          throw new MigrationStateError(
            "CorruptStateFile",
            `state database has schema ${current}, newer than this gateway's ${SCHEMA_VERSION}; upgrade the gateway`,
          );
        }
      });
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  async readVersion(): Promise<number> {
    const { rows } = await this.#query<{ version: string }>(
      "SELECT version FROM s3gw_meta WHERE id = 1",
    );
    return Number(rows[0]?.version ?? 0);
  }

  async load(): Promise<LoadedState> {
    return this.#tx(async (c) => {
      // One snapshot for both reads.
      await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      const v = await c.query<{ version: string }>("SELECT version FROM s3gw_meta WHERE id = 1");
      const b = await c.query<{ bucket: string; state: string }>(
        "SELECT bucket, state FROM s3gw_buckets ORDER BY bucket",
      );
      return {
        version: Number(v.rows[0]?.version ?? 0),
        buckets: new Map(b.rows.map((r) => [r.bucket, parseStoredState(r.bucket, r.state)])),
      };
    });
  }

  async transact<T>(
    change: (buckets: BucketMap, version: number) => T,
  ): Promise<CommittedChange<T>> {
    return this.#tx(async (c) => {
      const v = await c.query<{ version: string }>(
        "SELECT version FROM s3gw_meta WHERE id = 1 FOR UPDATE",
      );
      const version = Number(v.rows[0]?.version ?? 0);
      const b = await c.query<{ bucket: string; state: string }>(
        "SELECT bucket, state FROM s3gw_buckets ORDER BY bucket",
      );
      const before: BucketMap = new Map(
        b.rows.map((r) => [r.bucket, parseStoredState(r.bucket, r.state)]),
      );
      const after = new Map(before);
      const result = change(after, version);
      const { written, removed } = diffBuckets(before, after);
      if (written.length === 0 && removed.length === 0) return { version, buckets: before, result };
      for (const s of written) {
        await c.query(
          "INSERT INTO s3gw_buckets (bucket, state) VALUES ($1, $2) ON CONFLICT (bucket) DO UPDATE SET state = excluded.state",
          [s.bucket, JSON.stringify(s)],
        );
      }
      for (const name of removed) {
        await c.query("DELETE FROM s3gw_buckets WHERE bucket = $1", [name]);
        await c.query("DELETE FROM s3gw_tombstones WHERE bucket = $1", [name]);
        await c.query("DELETE FROM s3gw_claims WHERE bucket = $1", [name]);
      }
      await c.query("UPDATE s3gw_meta SET version = version + 1 WHERE id = 1");
      // Delivered at commit, to every listening connection.
      await c.query(`NOTIFY ${NOTIFY_CHANNEL}`);
      return { version: version + 1, buckets: after, result };
    });
  }

  async heartbeat(beat: Heartbeat): Promise<void> {
    await this.#query(
      `INSERT INTO s3gw_gateways (gateway_id, applied_version, last_seen_ms, started_ms, lease_ms)
       VALUES ($1, $2, ${NOW_MS}, ${NOW_MS}, $3)
       ON CONFLICT (gateway_id) DO UPDATE SET applied_version = excluded.applied_version,
         last_seen_ms = excluded.last_seen_ms, lease_ms = excluded.lease_ms`,
      [beat.gatewayId, beat.appliedVersion, beat.leaseMs],
    );
  }

  async leave(gatewayId: string): Promise<void> {
    await this.#query("DELETE FROM s3gw_gateways WHERE gateway_id = $1", [gatewayId]);
  }

  async liveGateways(): Promise<GatewayStatus[]> {
    const { rows } = await this.#query<{
      gateway_id: string;
      applied_version: string;
      last_seen_ms: string;
      started_ms: string;
      lease_ms: string;
    }>(`SELECT * FROM s3gw_gateways WHERE last_seen_ms + lease_ms > ${NOW_MS} ORDER BY gateway_id`);
    return rows.map((r) => ({
      id: r.gateway_id,
      appliedVersion: Number(r.applied_version),
      lastSeen: new Date(Number(r.last_seen_ms)).toISOString(),
      startedAt: new Date(Number(r.started_ms)).toISOString(),
      leaseMs: Number(r.lease_ms),
    }));
  }

  async addTombstone(bucket: string, key: string): Promise<void> {
    await this.#tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [keyLockId(bucket, key)]);
      await c.query(
        `INSERT INTO s3gw_tombstones (bucket, key, created_ms) VALUES ($1, $2, ${NOW_MS}) ON CONFLICT DO NOTHING`,
        [bucket, keyBytes(key)],
      );
    });
  }

  async hasTombstone(bucket: string, key: string): Promise<boolean> {
    const { rows } = await this.#query(
      "SELECT 1 FROM s3gw_tombstones WHERE bucket = $1 AND key = $2",
      [bucket, keyBytes(key)],
    );
    return rows.length > 0;
  }

  async countTombstones(bucket: string): Promise<number> {
    const { rows } = await this.#query<{ n: string }>(
      "SELECT count(*) AS n FROM s3gw_tombstones WHERE bucket = $1",
      [bucket],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async claimMigrationWrite(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<ClaimOutcome> {
    const k = keyBytes(key);
    return this.#tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [keyLockId(bucket, key)]);
      // READ COMMITTED: this statement starts after the lock was granted, so it sees every
      // tombstone committed by a writer that held the lock before us.
      const t = await c.query("SELECT 1 FROM s3gw_tombstones WHERE bucket = $1 AND key = $2", [
        bucket,
        k,
      ]);
      if (t.rows.length > 0) return "tombstoned";
      await c.query(
        `DELETE FROM s3gw_claims WHERE bucket = $1 AND key = $2 AND expires_ms <= ${NOW_MS}`,
        [bucket, k],
      );
      await c.query(
        `INSERT INTO s3gw_claims (bucket, key, claim_id, expires_ms) VALUES ($1, $2, $3, ${NOW_MS} + $4)
         ON CONFLICT (bucket, key, claim_id) DO UPDATE SET expires_ms = excluded.expires_ms`,
        [bucket, k, claim.claimId, claim.ttlMs],
      );
      return "claimed";
    });
  }

  async renewClaim(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<boolean> {
    const r = await this.#query(
      `UPDATE s3gw_claims SET expires_ms = ${NOW_MS} + $1
       WHERE bucket = $2 AND key = $3 AND claim_id = $4 AND expires_ms > ${NOW_MS}`,
      [claim.ttlMs, bucket, keyBytes(key), claim.claimId],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async releaseClaim(bucket: string, key: string, claimId: string): Promise<void> {
    await this.#query("DELETE FROM s3gw_claims WHERE bucket = $1 AND key = $2 AND claim_id = $3", [
      bucket,
      keyBytes(key),
      claimId,
    ]);
  }

  async activeClaims(bucket: string, key: string): Promise<readonly ActiveClaim[]> {
    const { rows } = await this.#query<{ claim_id: string; expires_ms: string }>(
      `SELECT claim_id, expires_ms FROM s3gw_claims
       WHERE bucket = $1 AND key = $2 AND expires_ms > ${NOW_MS} ORDER BY claim_id`,
      [bucket, keyBytes(key)],
    );
    return rows.map((r) => ({ claimId: r.claim_id, expiresAtMs: Number(r.expires_ms) }));
  }

  async clearKeyRecords(bucket: string): Promise<void> {
    await this.#tx(async (c) => {
      await c.query("DELETE FROM s3gw_tombstones WHERE bucket = $1", [bucket]);
      await c.query("DELETE FROM s3gw_claims WHERE bucket = $1", [bucket]);
    });
  }

  onChange(listener: () => void): void {
    this.#onChange = listener;
    this.#listen();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    const l = this.#listener;
    this.#listener = undefined;
    await l?.end().catch(() => undefined);
    await this.#pool.end().catch(() => undefined);
  }

  /** Keeps one connection listening for changes; reconnects after a failure (polling covers the gap). */
  #listen(): void {
    if (this.#closed || this.#listener) return;
    const client = new pg.Client(this.#config);
    this.#listener = client;
    const retry = (): void => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#reconnectTimer = setTimeout(() => this.#listen(), 1_000);
      this.#reconnectTimer.unref();
    };
    client.on("error", retry);
    client.on("end", retry);
    client.on("notification", () => this.#onChange?.());
    client
      .connect()
      .then(() => client.query(`LISTEN ${NOTIFY_CHANNEL}`))
      .then(() => this.#onChange?.(), retry);
  }

  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw closedError();
    try {
      return await this.#pool.query<R>(text, values);
    } catch (err) {
      throw storeError(err);
    }
  }

  async #tx<T>(run: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storeError(err);
    }
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await run(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw storeError(err);
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: destroy it.
      client.release(broken);
    }
  }
}

function closedError(): MigrationStateError {
  return new MigrationStateError("StoreUnavailable", "the state store is closed");
}

/**
 * Maps a pg failure to a one-line `StoreUnavailable` naming only its code: pg's messages can
 * quote SQL parameters (bucket state JSON holds source secrets).
 */
function storeError(err: unknown): unknown {
  if (err instanceof MigrationStateError) return err;
  const code = (err as { code?: unknown }).code;
  const why =
    typeof code === "string"
      ? code
      : (err as Error).message?.includes("timeout")
        ? "timeout"
        : "error";
  return new MigrationStateError("StoreUnavailable", `state store (postgres) failed: ${why}`, {
    cause: err,
  });
}

/** An S3 key as the bytes of its UTF-8 encoding: keys are compared as bytes, never normalised. */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/** A stable signed 64-bit advisory lock number for a (bucket, key) pair (collisions only serialise more). */
export function keyLockId(bucket: string, key: string): string {
  const h = createHash("sha256").update(bucket).update("\0").update(key, "utf8").digest();
  return h.readBigInt64BE(0).toString();
}
