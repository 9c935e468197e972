/**
 * What a storage engine of the migration state provides (SQLite or PostgreSQL). The cached
 * store (state/cached-store.ts) builds the gateway's {@link MigrationStateStore} on it; the
 * shared contract suite (test/integration/gateway-state-store.test.ts) holds every engine to
 * the same behaviour.
 *
 * Every write is one transaction that is durable (fsynced / committed) before its promise
 * resolves. Writers of the bucket states are serialised by the engine (SQLite's write lock,
 * a row lock in PostgreSQL), across processes and hosts, and every write of them bumps the
 * state version by one, which is how the other gateways notice it.
 */
import type {
  ActiveClaim,
  BucketMap,
  BucketMigrationState,
  ClaimOutcome,
  GatewayStatus,
  KeyRecordStore,
} from "./store.js";

/** Every bucket's state at one version, as read in one transaction. */
export interface LoadedState {
  readonly version: number;
  readonly buckets: ReadonlyMap<string, BucketMigrationState>;
}

/** The result of a committed change. */
export interface CommittedChange<T> {
  /** The state version the change created (unchanged when the change was a no-op). */
  readonly version: number;
  /** Every bucket's state after the change. */
  readonly buckets: ReadonlyMap<string, BucketMigrationState>;
  readonly result: T;
}

/** One heartbeat: who, which version it routes by, and how long it may be trusted. */
export interface Heartbeat {
  readonly gatewayId: string;
  readonly appliedVersion: number;
  readonly leaseMs: number;
}

/** A storage engine for the migration state. */
export interface StateEngine extends KeyRecordStore {
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  /** The current state version (cheap: one small read). */
  readVersion(): Promise<number>;
  /** Every bucket's state and the version, read consistently. */
  load(): Promise<LoadedState>;
  /**
   * Runs `change` on a private copy of the current buckets inside one write transaction,
   * `version` is the state version before the change. Writes the buckets whose object identity changed, deletes those removed (and their key
   * records), bumps the version when anything changed, and commits. A throw rolls back.
   */
  transact<T>(change: (buckets: BucketMap, version: number) => T): Promise<CommittedChange<T>>;
  /** Records a heartbeat (insert or replace) with the store's clock. */
  heartbeat(beat: Heartbeat): Promise<void>;
  /** Removes a gateway's heartbeat (it leaves the live set at once). */
  leave(gatewayId: string): Promise<void>;
  /** The gateways whose last heartbeat is younger than their lease (the store's clock). */
  liveGateways(): Promise<GatewayStatus[]>;
  /** Calls `listener` soon after another connection commits a change, where the engine can. */
  onChange?(listener: () => void): void;
  /** Closes connections; pending calls finish first. */
  close(): Promise<void>;
}

/** Re-exported for engines. */
export type { ActiveClaim, ClaimOutcome };

/** Diffs a changed bucket map against the one it was copied from. */
export function diffBuckets(
  before: ReadonlyMap<string, BucketMigrationState>,
  after: ReadonlyMap<string, BucketMigrationState>,
): { readonly written: BucketMigrationState[]; readonly removed: string[] } {
  const written = [...after.values()].filter((s) => before.get(s.bucket) !== s);
  const removed = [...before.keys()].filter((name) => !after.has(name));
  return { written, removed };
}
