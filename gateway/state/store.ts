/**
 * The migration state: per bucket, where its source lives, the source credential and CA, the
 * mode, and the history of transitions (DESIGN 3.5); the gateways sharing it; and the per-key
 * records migrate mode needs (tombstones of client deletes, claims of in-flight migration
 * writes).
 *
 * {@link MigrationStateStore} is the seam the gateway uses. One implementation
 * (state/cached-store.ts) caches the bucket states in memory, so the request path never waits
 * on the store, and keeps that cache current by polling the state version of an engine
 * (state/engine.ts): SQLite (state/sqlite-engine.ts) or PostgreSQL (state/postgres-engine.ts).
 * The pure rules of a change (this file) are shared by both engines: an engine runs them inside
 * one write transaction, so a change is atomic and durable before its promise resolves.
 */
import {
  checkTransition,
  isIrreversible,
  MIGRATION_MODES,
  type LifecycleState,
  type MigrationMode,
  type TransitionRule,
} from "./transitions.js";

/** One entry of a bucket's history: a mode transition or a change of its source settings. */
export interface HistoryEntry {
  /** ISO 8601 time the change became durable. */
  readonly at: string;
  readonly from: LifecycleState;
  readonly to: LifecycleState;
  /** The admin access key (or other actor) that asked for it. */
  readonly by: string;
  /** Source settings that changed (names only, never values), when not a pure mode change. */
  readonly changed?: readonly string[];
}

/** The migration state of one attached bucket. Holds secrets: never log or return it as is. */
export interface BucketMigrationState {
  /** The bucket name clients use; also the target bucket. */
  readonly bucket: string;
  /** The source S3 endpoint, `http(s)://host[:port]`. */
  readonly sourceUrl: string;
  /** The bucket on the source (the same name unless `--source` said otherwise). */
  readonly sourceBucket: string;
  readonly sourceAccessKey: string;
  readonly sourceSecretKey: string;
  /** The region to sign source requests for. */
  readonly sourceRegion: string;
  /** PEM CA/certificate to trust for an https source, or `system` for the system CAs. */
  readonly sourceCa: string;
  /**
   * Copy-on-read (docs/gateway.md): a whole-object GET that falls back to the source also writes
   * the object to the target. Absent (states saved before it existed) means off.
   */
  readonly copyOnRead?: boolean;
  /** The largest object copy-on-read writes back, in bytes; absent means {@link DEFAULT_COPY_ON_READ_MAX_SIZE}. */
  readonly copyOnReadMaxSize?: number;
  readonly mode: MigrationMode;
  readonly history: readonly HistoryEntry[];
}

/** What attach needs. */
export type AttachInput = Omit<BucketMigrationState, "mode" | "history">;

/** Which buckets an update applies to. */
export type BucketSelector =
  { readonly bucket: string } | { readonly sourceUrl: string } | { readonly all: true };

/** A change to apply to every selected bucket; absent fields are left as they are. */
export interface StateChange {
  readonly mode?: MigrationMode;
  readonly sourceUrl?: string;
  readonly sourceBucket?: string;
  readonly sourceAccessKey?: string;
  readonly sourceSecretKey?: string;
  readonly sourceRegion?: string;
  readonly sourceCa?: string;
  readonly copyOnRead?: boolean;
  readonly copyOnReadMaxSize?: number;
}

/** Copy-on-read's default size limit: 256 MiB. */
export const DEFAULT_COPY_ON_READ_MAX_SIZE = 256 * 1024 * 1024;

/** The largest copy-on-read size limit: 5 GiB, the largest single PutObject. */
export const MAX_COPY_ON_READ_MAX_SIZE = 5 * 1024 * 1024 * 1024;

/** Who asks, and what they acknowledged. */
export interface ChangeOptions {
  /** Recorded in the history. */
  readonly by: string;
  /** Allows migrate → ready. */
  readonly force?: boolean;
  /** Acknowledges forward → migrate, the point of no return. */
  readonly confirmIrreversible?: boolean;
}

/** An immutable view of every bucket's state at one version. */
export interface MigrationStateSnapshot {
  /** Increases by one with every durable change. */
  readonly version: number;
  readonly buckets: ReadonlyMap<string, BucketMigrationState>;
}

/** A gateway sharing the store, as its last heartbeat described it. */
export interface GatewayStatus {
  /** `state.gatewayId`, by default `host:pid`. */
  readonly id: string;
  /** The state version the gateway has loaded and routes by. */
  readonly appliedVersion: number;
  /** ISO 8601 time of its last heartbeat (the store's clock). */
  readonly lastSeen: string;
  /** ISO 8601 time it joined. */
  readonly startedAt: string;
  /** Its lease in milliseconds: it counts as live this long after its last heartbeat. */
  readonly leaseMs: number;
}

/** Whether a migration write could claim a key. */
export type ClaimOutcome = "claimed" | "tombstoned";

/** An unexpired claim of a migration write on one key. */
export interface ActiveClaim {
  readonly claimId: string;
  /** Milliseconds since the epoch (the store's clock) after which the claim is void. */
  readonly expiresAtMs: number;
}

/**
 * The per-key records of migrate mode (DESIGN 3.3, PITFALLS "Migrate mode"): a tombstone is
 * written durably before a client DELETE goes out, and a migration write first claims its key,
 * which fails once the key is tombstoned. Claim and tombstone are atomic with respect to each
 * other on every engine, so either the claim sees the tombstone or the DELETE sees the claim.
 */
export interface KeyRecordStore {
  /** Records that `key` was deleted by a client; resolves once durable. Idempotent. */
  addTombstone(bucket: string, key: string): Promise<void>;
  /** Whether `key` carries a tombstone. */
  hasTombstone(bucket: string, key: string): Promise<boolean>;
  /** How many tombstones `bucket` holds. */
  countTombstones(bucket: string): Promise<number>;
  /**
   * Claims `key` for a migration write of `ttlMs`, unless it is tombstoned; checking the
   * tombstone and recording the claim are one atomic step. Resolves once durable.
   */
  claimMigrationWrite(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<ClaimOutcome>;
  /** Extends a claim to `ttlMs` from now; false when it no longer exists (expired and reaped, or released). */
  renewClaim(
    bucket: string,
    key: string,
    claim: { readonly claimId: string; readonly ttlMs: number },
  ): Promise<boolean>;
  /** Drops a claim (the migration write finished or gave up). Idempotent. */
  releaseClaim(bucket: string, key: string, claimId: string): Promise<void>;
  /** The unexpired claims on `key`, so a client DELETE can wait for in-flight migration writes. */
  activeClaims(bucket: string, key: string): Promise<readonly ActiveClaim[]>;
  /** Drops every tombstone and claim of `bucket` (detach does this in its own transaction). */
  clearKeyRecords(bucket: string): Promise<void>;
}

/** The seam between the gateway and wherever migration state is kept. */
export interface MigrationStateStore extends KeyRecordStore {
  /** Which engine keeps the state, for logs: `sqlite` or `postgres`. */
  readonly engine: string;
  /** This gateway's id in the store. */
  readonly gatewayId: string;
  /** The cached snapshot; synchronous so routing never waits on the store. */
  snapshot(): MigrationStateSnapshot;
  /**
   * Whether this gateway confirmed its snapshot with the store (read the version and wrote its
   * heartbeat) less than one lease ago. When false, the mode of an attached bucket may be stale
   * and must not be acted on; other gateways stop counting this one after the same lease.
   */
  isFresh(): boolean;
  /** Seconds since the snapshot was last confirmed with the store. */
  secondsSinceConfirmed(): number;
  /** One bucket's state, or undefined when not attached. */
  get(bucket: string): BucketMigrationState | undefined;
  /** Every attached bucket, sorted by name. */
  list(): readonly BucketMigrationState[];
  /** Attaches a bucket in mode ready; resolves once durable (and applied here). */
  attach(input: AttachInput, options: ChangeOptions): Promise<BucketMigrationState>;
  /** Applies a change to every selected bucket at once (all or nothing); resolves once durable (and applied here). */
  update(
    selector: BucketSelector,
    change: StateChange,
    options: ChangeOptions,
  ): Promise<readonly BucketMigrationState[]>;
  /** Forgets a bucket (from ready or migrate) and its key records; resolves with its last state once durable. */
  detach(bucket: string, options: ChangeOptions): Promise<BucketMigrationState>;
  /** Calls `listener` with every new snapshot; returns the unsubscribe function. */
  subscribe(listener: (snapshot: MigrationStateSnapshot) => void): () => void;
  /** The gateways whose heartbeat is fresh, sorted by id. */
  liveGateways(): Promise<readonly GatewayStatus[]>;
  /**
   * Waits until every live gateway has applied `version` (a gateway whose lease runs out stops
   * counting). Resolves with the gateways that have not confirmed when `timeoutMs` passed
   * (empty when all did).
   */
  waitForGateways(
    version: number,
    options: { readonly timeoutMs: number },
  ): Promise<readonly GatewayStatus[]>;
  /** The live gateways as of the last poll (cached, for metrics). */
  knownGateways(): readonly GatewayStatus[];
  /** Calls `observer` after every store operation (for the latency metric); returns the unsubscribe function. */
  observeOperations(
    observer: (operation: string, seconds: number, failed: boolean) => void,
  ): () => void;
  /** Stops polling, removes this gateway's heartbeat, and closes the engine. */
  close(): Promise<void>;
}

/** Why a state change was refused; `code` is stable for the admin API. */
export type MigrationStateErrorCode =
  | "NotAttached"
  | "AlreadyAttached"
  | "TransitionRefused"
  | "ConfirmationRequired"
  | "NoBucketsMatched"
  | "InvalidState"
  | "CorruptStateFile"
  | "StoreUnavailable";

/** A refused or impossible state change. Messages carry no secrets. */
export class MigrationStateError extends Error {
  /** Stable code, mapped to an HTTP status by the admin API. */
  readonly code: MigrationStateErrorCode;
  /** The transition rule that refused, for `TransitionRefused`. */
  readonly rule: TransitionRule | undefined;

  constructor(
    code: MigrationStateErrorCode,
    message: string,
    options: { rule?: TransitionRule; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "MigrationStateError";
    this.code = code;
    this.rule = options.rule;
  }
}

/** The bucket map a change works on: a private copy, published only once durable. */
export type BucketMap = Map<string, BucketMigrationState>;

/** Attaches a bucket in mode ready to `buckets` (a private copy); throws when refused. */
export function applyAttach(
  buckets: BucketMap,
  input: AttachInput,
  options: ChangeOptions & { readonly at: string },
): BucketMigrationState {
  if (buckets.has(input.bucket)) {
    throw new MigrationStateError(
      "AlreadyAttached",
      `bucket ${input.bucket} is already attached (mode ${buckets.get(input.bucket)?.mode}); update or detach it`,
    );
  }
  const verdict = checkTransition("detached", "ready");
  if (!verdict.allowed) throw refused(input.bucket, verdict.rule, verdict.message);
  const state: BucketMigrationState = freezeState({
    ...pickAttach(input),
    mode: "ready",
    history: [{ at: options.at, from: "detached", to: "ready", by: options.by }],
  });
  validateState(state, `bucket ${input.bucket}`);
  buckets.set(state.bucket, state);
  return state;
}

/**
 * Applies `change` to every selected bucket of `buckets` (a private copy), checking every
 * bucket before changing any: an update is all or nothing. Unchanged buckets keep their object
 * identity, so an engine writes only what changed.
 */
export function applyUpdate(
  buckets: BucketMap,
  selector: BucketSelector,
  change: StateChange,
  options: ChangeOptions & { readonly at: string },
): BucketMigrationState[] {
  const selected = selectBuckets(buckets, selector);
  const { at } = options;
  const next = selected.map((current) => {
    const to = change.mode ?? current.mode;
    const verdict = checkTransition(current.mode, to, { force: options.force ?? false });
    if (!verdict.allowed) throw refused(current.bucket, verdict.rule, verdict.message);
    if (isIrreversible(current.mode, to) && !options.confirmIrreversible) {
      throw new MigrationStateError(
        "ConfirmationRequired",
        `bucket ${current.bucket}: forward → migrate is the point of no return and must be confirmed`,
      );
    }
    const changed = SETTING_FIELDS.filter(
      (f) => change[f] !== undefined && change[f] !== current[f],
    );
    if (verdict.noop && changed.length === 0) return current;
    const entry: HistoryEntry =
      changed.length > 0
        ? { at, from: current.mode, to, by: options.by, changed }
        : { at, from: current.mode, to, by: options.by };
    const updated: BucketMigrationState = freezeState({
      ...current,
      ...definedOnly(change),
      mode: to,
      history: [...current.history, entry],
    });
    validateState(updated, `bucket ${current.bucket}`);
    return updated;
  });
  for (const s of next) buckets.set(s.bucket, s);
  return next;
}

/** Removes a bucket from `buckets` (a private copy) when detach is allowed; returns its last state. */
export function applyDetach(buckets: BucketMap, bucket: string): BucketMigrationState {
  const current = buckets.get(bucket);
  if (!current) throw new MigrationStateError("NotAttached", `bucket ${bucket} is not attached`);
  const verdict = checkTransition(current.mode, "detached");
  if (!verdict.allowed) throw refused(bucket, verdict.rule, verdict.message);
  // The history goes with the state; the admin API logs the detach with its actor.
  buckets.delete(bucket);
  return current;
}

/** Reads one bucket's state as an engine stored it (JSON); throws `CorruptStateFile`. */
export function parseStoredState(name: string, json: string): BucketMigrationState {
  try {
    const state = JSON.parse(json) as BucketMigrationState;
    validateState(state, `bucket ${name}`);
    if (state.bucket !== name) throw new Error(`bucket ${name} holds the state of ${state.bucket}`);
    return freezeState({ ...pickAttach(state), mode: state.mode, history: [...state.history] });
  } catch (err) {
    // A JSON.parse message can quote the text, which holds a secret: name the bucket only.
    const why = err instanceof MigrationStateError ? err.message : "not valid JSON";
    throw new MigrationStateError(
      "CorruptStateFile",
      `stored state of ${name} is corrupt (${why})`,
    );
  }
}

const SOURCE_FIELDS = [
  "sourceUrl",
  "sourceBucket",
  "sourceAccessKey",
  "sourceSecretKey",
  "sourceRegion",
  "sourceCa",
] as const;

/** Every field an update can change besides the mode (recorded by name in the history). */
const SETTING_FIELDS = [...SOURCE_FIELDS, "copyOnRead", "copyOnReadMaxSize"] as const;

function pickAttach(input: AttachInput): AttachInput {
  return {
    bucket: input.bucket,
    sourceUrl: input.sourceUrl,
    sourceBucket: input.sourceBucket,
    sourceAccessKey: input.sourceAccessKey,
    sourceSecretKey: input.sourceSecretKey,
    sourceRegion: input.sourceRegion,
    sourceCa: input.sourceCa,
    // Absent, not false, when unset: states saved before copy-on-read existed read the same.
    ...(input.copyOnRead === undefined ? {} : { copyOnRead: input.copyOnRead }),
    ...(input.copyOnReadMaxSize === undefined
      ? {}
      : { copyOnReadMaxSize: input.copyOnReadMaxSize }),
  };
}

function definedOnly(change: StateChange): Partial<AttachInput> {
  const out: Record<string, string | number | boolean> = {};
  for (const f of SETTING_FIELDS) {
    const v = change[f];
    if (v !== undefined) out[f] = v;
  }
  return out;
}

function selectBuckets(
  buckets: ReadonlyMap<string, BucketMigrationState>,
  selector: BucketSelector,
): BucketMigrationState[] {
  if ("bucket" in selector) {
    const s = buckets.get(selector.bucket);
    if (!s)
      throw new MigrationStateError("NotAttached", `bucket ${selector.bucket} is not attached`);
    return [s];
  }
  const all = [...buckets.values()].sort((a, b) => compareNames(a.bucket, b.bucket));
  const chosen =
    "sourceUrl" in selector ? all.filter((s) => s.sourceUrl === selector.sourceUrl) : all;
  if (chosen.length === 0) {
    const what = "sourceUrl" in selector ? `with source ${selector.sourceUrl}` : "at all";
    throw new MigrationStateError("NoBucketsMatched", `no bucket is attached ${what}`);
  }
  return chosen;
}

function refused(bucket: string, rule: TransitionRule, message: string): MigrationStateError {
  return new MigrationStateError("TransitionRefused", `bucket ${bucket}: ${message}`, { rule });
}

/** Orders bucket names as the listings show them. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function freezeState(state: BucketMigrationState): BucketMigrationState {
  for (const h of state.history) Object.freeze(h);
  Object.freeze(state.history);
  return Object.freeze(state);
}

// ---------------------------------------------------------------------------------------------
// the JSON state file of earlier releases (imported on first start)

const FILE_FORMAT_VERSION = 1;

interface StateFile {
  version: number;
  buckets: Record<string, BucketMigrationState>;
}

/** The JSON state file of earlier releases for `buckets` (tests write one to import). */
export function serialiseStateFile(buckets: ReadonlyMap<string, BucketMigrationState>): string {
  const doc: StateFile = { version: FILE_FORMAT_VERSION, buckets: {} };
  for (const [name, state] of [...buckets].sort((a, b) => compareNames(a[0], b[0]))) {
    doc.buckets[name] = state;
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Parses and validates the state file's text; throws `CorruptStateFile` naming the problem. */
export function parseStateFile(text: string, path: string): Map<string, BucketMigrationState> {
  const corrupt = (why: string, cause?: unknown): MigrationStateError =>
    new MigrationStateError(
      "CorruptStateFile",
      `state file ${path} is corrupt (${why}); refusing to start — restore it from a backup or fix it by hand`,
      { cause },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // JSON.parse's message can quote the file, which holds secrets: report only the position.
    const pos = /position (\d+)/.exec(String((err as Error).message))?.[1];
    throw corrupt(pos ? `not JSON near byte ${pos}` : "not JSON");
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw corrupt("not an object");
  const { version, buckets } = doc as Partial<StateFile>;
  if (version !== FILE_FORMAT_VERSION) throw corrupt(`unknown format version ${String(version)}`);
  if (buckets === null || typeof buckets !== "object" || Array.isArray(buckets)) {
    throw corrupt("buckets is not an object");
  }
  const out = new Map<string, BucketMigrationState>();
  for (const [name, value] of Object.entries(buckets)) {
    try {
      const state = value as BucketMigrationState;
      validateState(state, `bucket ${name}`);
      if (state.bucket !== name)
        throw new Error(`bucket ${name} holds the state of ${state.bucket}`);
      out.set(
        name,
        freezeState({ ...pickAttach(state), mode: state.mode, history: [...state.history] }),
      );
    } catch (err) {
      throw corrupt((err as Error).message, err);
    }
  }
  return out;
}

function validateState(state: BucketMigrationState, what: string): void {
  const fail = (why: string): never => {
    throw new MigrationStateError("InvalidState", `${what}: ${why}`);
  };
  if (state === null || typeof state !== "object") fail("not an object");
  for (const f of ["bucket", ...SOURCE_FIELDS] as const) {
    if (typeof state[f] !== "string" || state[f].length === 0)
      fail(`${f} must be a non-empty string`);
  }
  if (!isBucketName(state.bucket)) fail("bucket is not a valid S3 bucket name");
  if (!isBucketName(state.sourceBucket)) fail("sourceBucket is not a valid S3 bucket name");
  if (!/^https?:\/\/[^/?#@]+$/.test(state.sourceUrl))
    fail("sourceUrl must be http(s)://host[:port]");
  if (state.sourceCa !== "system" && !state.sourceCa.includes("-----BEGIN CERTIFICATE-----")) {
    fail("sourceCa must be a PEM certificate or system");
  }
  if (state.copyOnRead !== undefined && typeof state.copyOnRead !== "boolean")
    fail("copyOnRead must be true or false");
  const max = state.copyOnReadMaxSize;
  if (
    max !== undefined &&
    (typeof max !== "number" ||
      !Number.isInteger(max) ||
      max < 1 ||
      max > MAX_COPY_ON_READ_MAX_SIZE)
  ) {
    fail(
      `copyOnReadMaxSize must be a whole number of bytes from 1 to ${MAX_COPY_ON_READ_MAX_SIZE}`,
    );
  }
  if (!(MIGRATION_MODES as readonly string[]).includes(state.mode))
    fail(`mode ${String(state.mode)} is unknown`);
  if (!Array.isArray(state.history)) fail("history must be a list");
  for (const h of state.history) {
    if (typeof h?.at !== "string" || typeof h.by !== "string") fail("history entry lacks at/by");
  }
}

/** Whether `name` follows the S3 bucket naming rules for new buckets (3-63, a-z 0-9 . -). */
export function isBucketName(name: string): boolean {
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes("..") &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name)
  );
}
