/**
 * The gateway's {@link MigrationStateStore} on a {@link StateEngine}: the bucket states are
 * cached in an immutable snapshot that the request path reads synchronously, and a poll loop
 * keeps it current (DESIGN 3.5, issue 12).
 *
 * Every `pollMs` the loop reads the state version (reloading the buckets when it moved) and
 * writes this gateway's heartbeat: its id, the version it applied, its lease. When both
 * succeed the snapshot is *confirmed*. A gateway whose last confirmation is older than its
 * lease must not act on an attached bucket's mode (the mode may have changed without it); the
 * others stop counting it at the same moment, because its heartbeat is older than the same
 * lease. A mode change is acknowledged once every live gateway's heartbeat shows the new
 * version ({@link CachedMigrationStateStore.waitForGateways}).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { StateEngine } from "./engine.js";
import {
  applyAttach,
  applyDetach,
  applyUpdate,
  compareNames,
  MigrationStateError,
  type ActiveClaim,
  type AttachInput,
  type BucketMigrationState,
  type BucketSelector,
  type ChangeOptions,
  type ClaimOutcome,
  type GatewayStatus,
  type MigrationStateSnapshot,
  type MigrationStateStore,
  type StateChange,
} from "./store.js";

/** Called after every engine operation, for the latency metric. */
export type StoreOperationObserver = (operation: string, seconds: number, failed: boolean) => void;

/** What the cached store logs (a pino logger fits). */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options for {@link CachedMigrationStateStore.open}. */
export interface CachedStoreOptions {
  /** This gateway's id in the store (unique among the gateways sharing it). */
  readonly gatewayId: string;
  /** How long a confirmation (and a heartbeat) is trusted. */
  readonly leaseMs: number;
  /** How often the version is checked and the heartbeat written; well under `leaseMs`. */
  readonly pollMs: number;
  /** The wall clock for history timestamps (tests pass a fixed one). */
  readonly now?: () => Date;
  readonly logger?: StoreLogger;
  /** Do not register a heartbeat (tools and benchmarks that read or write without serving). */
  readonly passive?: boolean;
}

/** The {@link MigrationStateStore} of a running gateway. */
export class CachedMigrationStateStore implements MigrationStateStore {
  readonly gatewayId: string;
  readonly #engine: StateEngine;
  readonly #options: CachedStoreOptions;
  readonly #now: () => Date;
  #current: MigrationStateSnapshot;
  /** `performance.now()` when the last successful confirmation started. */
  #confirmedAt: number;
  #live: readonly GatewayStatus[] = [];
  #stale = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  #lastError: unknown;
  #polling: Promise<void> | undefined;
  #pollAgain = false;
  readonly #listeners = new Set<(snapshot: MigrationStateSnapshot) => void>();
  readonly #observers = new Set<StoreOperationObserver>();

  private constructor(
    engine: StateEngine,
    initial: MigrationStateSnapshot,
    confirmedAt: number,
    options: CachedStoreOptions,
  ) {
    this.#engine = engine;
    this.#current = initial;
    this.#confirmedAt = confirmedAt;
    this.#options = options;
    this.gatewayId = options.gatewayId;
    this.#now = options.now ?? (() => new Date());
  }

  /** Loads the state, registers this gateway's heartbeat and starts the poll loop. */
  static async open(
    engine: StateEngine,
    options: CachedStoreOptions,
  ): Promise<CachedMigrationStateStore> {
    const started = performance.now();
    const loaded = await engine.load();
    const store = new CachedMigrationStateStore(
      engine,
      Object.freeze({ version: loaded.version, buckets: loaded.buckets }),
      started,
      options,
    );
    if (!options.passive) {
      await engine.heartbeat(store.#beat());
      store.#live = await engine.liveGateways();
      engine.onChange?.(() => store.#pollSoon());
      store.#schedule();
      // Freshness is a matter of time, not of a poll finishing: a poll can be stuck waiting on
      // the store (SQLite busy, a PostgreSQL timeout), so the warning has its own timer.
      store.#watch = setInterval(() => store.#checkFreshness(), options.pollMs);
      store.#watch.unref();
    }
    return store;
  }

  get engine(): string {
    return this.#engine.kind;
  }

  snapshot(): MigrationStateSnapshot {
    return this.#current;
  }

  isFresh(): boolean {
    const fresh = performance.now() - this.#confirmedAt < this.#options.leaseMs;
    // The first request to see the state stale logs it, not only the next watch tick: the
    // outage may end before that tick, and the operator must still learn of it.
    if (!fresh && !this.#stale) this.#markStale();
    return fresh;
  }

  secondsSinceConfirmed(): number {
    return (performance.now() - this.#confirmedAt) / 1000;
  }

  /** The live gateways as of the last poll (cached; for metrics). */
  knownGateways(): readonly GatewayStatus[] {
    return this.#live;
  }

  get(bucket: string): BucketMigrationState | undefined {
    return this.#current.buckets.get(bucket);
  }

  list(): readonly BucketMigrationState[] {
    return [...this.#current.buckets.values()].sort((a, b) => compareNames(a.bucket, b.bucket));
  }

  subscribe(listener: (snapshot: MigrationStateSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `observer` after every engine operation; returns the unsubscribe function. */
  observeOperations(observer: StoreOperationObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  attach(input: AttachInput, options: ChangeOptions): Promise<BucketMigrationState> {
    return this.#change("attach", (buckets) =>
      applyAttach(buckets, input, { ...options, at: this.#now().toISOString() }),
    );
  }

  update(
    selector: BucketSelector,
    change: StateChange,
    options: ChangeOptions,
  ): Promise<readonly BucketMigrationState[]> {
    return this.#change("update", (buckets) =>
      applyUpdate(buckets, selector, change, { ...options, at: this.#now().toISOString() }),
    );
  }

  detach(bucket: string, _options: ChangeOptions): Promise<BucketMigrationState> {
    return this.#change("detach", (buckets) => applyDetach(buckets, bucket));
  }

  /** Imports `buckets` (from a JSON state file) when the store was never written; true when it did. */
  async importIfEmpty(buckets: ReadonlyMap<string, BucketMigrationState>): Promise<boolean> {
    let imported = false;
    const committed = await this.#timed("import", () =>
      this.#engine.transact((current, version) => {
        // Version 0: nothing was ever written, not even a detach that emptied the store.
        if (version !== 0 || current.size > 0) return;
        for (const [name, state] of buckets) current.set(name, state);
        imported = buckets.size > 0;
      }),
    );
    this.#install(committed.version, committed.buckets);
    return imported;
  }

  async liveGateways(): Promise<readonly GatewayStatus[]> {
    const live = await this.#timed("liveGateways", () => this.#engine.liveGateways());
    this.#live = live;
    return live;
  }

  async waitForGateways(
    version: number,
    options: { readonly timeoutMs: number },
  ): Promise<readonly GatewayStatus[]> {
    const deadline = performance.now() + options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      let pending: readonly GatewayStatus[];
      try {
        pending = (await this.liveGateways()).filter((g) => g.appliedVersion < version);
      } catch (err) {
        if (performance.now() >= deadline) throw err;
        pending = [];
        await sleep(100);
        continue;
      }
      if (pending.length === 0) return [];
      if (performance.now() >= deadline) return pending;
      // Others apply within one poll (at once on PostgreSQL, by NOTIFY): check often at first.
      await sleep(Math.min(200, 10 + attempt * 10));
    }
  }

  addTombstone(bucket: string, key: string): Promise<void> {
    return this.#timed("addTombstone", () => this.#engine.addTombstone(bucket, key));
  }

  hasTombstone(bucket: string, key: string): Promise<boolean> {
    return this.#timed("hasTombstone", () => this.#engine.hasTombstone(bucket, key));
  }

  countTombstones(bucket: string): Promise<number> {
    return this.#timed("countTombstones", () => this.#engine.countTombstones(bucket));
  }

  claimMigrationWrite(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<ClaimOutcome> {
    return this.#timed("claimMigrationWrite", () =>
      this.#engine.claimMigrationWrite(bucket, key, claim),
    );
  }

  renewClaim(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<boolean> {
    return this.#timed("renewClaim", () => this.#engine.renewClaim(bucket, key, claim));
  }

  releaseClaim(bucket: string, key: string, claimId: string): Promise<void> {
    return this.#timed("releaseClaim", () => this.#engine.releaseClaim(bucket, key, claimId));
  }

  activeClaims(bucket: string, key: string): Promise<readonly ActiveClaim[]> {
    return this.#timed("activeClaims", () => this.#engine.activeClaims(bucket, key));
  }

  clearKeyRecords(bucket: string): Promise<void> {
    return this.#timed("clearKeyRecords", () => this.#engine.clearKeyRecords(bucket));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#watch);
    await this.#polling;
    // Leaving at once, rather than after the lease, keeps a stopped gateway from holding up
    // the next transition.
    if (!this.#options.passive) await this.#engine.leave(this.gatewayId).catch(() => undefined);
    await this.#engine.close();
  }

  /** Forces a poll now and waits for it (tests, and after a change made here). */
  async refresh(): Promise<void> {
    this.#pollSoon();
    while (this.#polling) await this.#polling;
  }

  async #change<T>(
    operation: string,
    change: (buckets: Map<string, BucketMigrationState>) => T,
  ): Promise<T> {
    const started = performance.now();
    const committed = await this.#timed(operation, () => this.#engine.transact(change));
    this.#install(committed.version, committed.buckets);
    if (!this.#options.passive) {
      // Report the new version at once, so an admin waiting on the gateways does not wait for
      // this one's next poll. A failure here is left to the poll loop.
      try {
        await this.#timed("heartbeat", () => this.#engine.heartbeat(this.#beat()));
        this.#confirmed(started);
      } catch {
        // The change is durable; only the confirmation is late.
      }
    }
    return committed.result;
  }

  #install(version: number, buckets: ReadonlyMap<string, BucketMigrationState>): void {
    // Versions only grow: an older load (a poll racing a local change) is dropped.
    if (version <= this.#current.version) return;
    this.#current = Object.freeze({ version, buckets });
    for (const listener of this.#listeners) {
      try {
        listener(this.#current);
      } catch {
        // A listener's failure must not turn a durable change into a reported failure.
      }
    }
  }

  #beat(): { gatewayId: string; appliedVersion: number; leaseMs: number } {
    return {
      gatewayId: this.gatewayId,
      appliedVersion: this.#current.version,
      leaseMs: this.#options.leaseMs,
    };
  }

  #confirmed(startedAt: number): void {
    if (startedAt > this.#confirmedAt) this.#confirmedAt = startedAt;
    if (this.#stale) {
      this.#stale = false;
      this.#options.logger?.info(
        { version: this.#current.version },
        "state store reachable again: state confirmed",
      );
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#pollSoon(), this.#options.pollMs);
    this.#timer.unref();
  }

  #pollSoon(): void {
    if (this.#closed) return;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    this.#polling = this.#pollOnce().finally(() => {
      this.#polling = undefined;
      if (this.#pollAgain) {
        this.#pollAgain = false;
        this.#pollSoon();
      } else this.#schedule();
    });
  }

  async #pollOnce(): Promise<void> {
    const started = performance.now();
    try {
      const version = await this.#timed("readVersion", () => this.#engine.readVersion());
      if (version !== this.#current.version) {
        const loaded = await this.#timed("load", () => this.#engine.load());
        this.#install(loaded.version, loaded.buckets);
      }
      await this.#timed("heartbeat", () => this.#engine.heartbeat(this.#beat()));
      this.#confirmed(started);
      this.#lastError = undefined;
      this.#live = await this.#timed("liveGateways", () => this.#engine.liveGateways());
    } catch (err) {
      this.#lastError = err;
      this.#checkFreshness();
    }
  }

  /** Checks the lease between requests too (isFresh logs when it has run out). */
  #checkFreshness(): void {
    this.isFresh();
  }

  /** Logs once when the lease runs out without a confirmation (the recovery is logged too). */
  #markStale(): void {
    this.#stale = true;
    const err = this.#lastError;
    this.#options.logger?.warn(
      {
        code: err instanceof MigrationStateError ? err.code : "Timeout",
        ...(err instanceof Error ? { error: err.message } : {}),
        leaseMs: this.#options.leaseMs,
      },
      "state not confirmed within the lease: attached buckets answer 503 until the store is reachable",
    );
  }

  async #timed<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let failed = true;
    try {
      const result = await run();
      failed = false;
      return result;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      for (const observer of this.#observers) observer(operation, seconds, failed);
    }
  }
}
