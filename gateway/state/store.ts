/**
 * The migration state: per bucket, where its source lives, the source credential and CA, the
 * mode, and the history of transitions (DESIGN 3.5).
 *
 * The file implementation keeps one JSON document. A change is durable before its promise
 * resolves: the new document goes to a temp file in the same directory, created 0600 (it holds
 * secrets), fsynced, renamed over the old file (rename(2) is atomic within a file system), and
 * the directory is fsynced so the rename itself survives a crash. Writers are serialised by a
 * mutex, and readers see immutable snapshots swapped in one assignment: a routing decision sees
 * the old state or the new one, never a mix.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
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
}

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

/** The seam between the gateway and wherever migration state is kept. */
export interface MigrationStateStore {
  /** The current snapshot; synchronous so routing never waits. */
  snapshot(): MigrationStateSnapshot;
  /** One bucket's state, or undefined when not attached. */
  get(bucket: string): BucketMigrationState | undefined;
  /** Every attached bucket, sorted by name. */
  list(): readonly BucketMigrationState[];
  /** Attaches a bucket in mode ready; resolves once durable. */
  attach(input: AttachInput, options: ChangeOptions): Promise<BucketMigrationState>;
  /** Applies a change to every selected bucket at once (all or nothing); resolves once durable. */
  update(
    selector: BucketSelector,
    change: StateChange,
    options: ChangeOptions,
  ): Promise<readonly BucketMigrationState[]>;
  /** Forgets a bucket (from ready or migrate); resolves with its last state once durable. */
  detach(bucket: string, options: ChangeOptions): Promise<BucketMigrationState>;
  /** Calls `listener` with every new snapshot; returns the unsubscribe function. */
  subscribe(listener: (snapshot: MigrationStateSnapshot) => void): () => void;
}

/** Why a state change was refused; `code` is stable for the admin API. */
export type MigrationStateErrorCode =
  | "NotAttached"
  | "AlreadyAttached"
  | "TransitionRefused"
  | "ConfirmationRequired"
  | "NoBucketsMatched"
  | "InvalidState"
  | "CorruptStateFile";

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

const FILE_FORMAT_VERSION = 1;

/** Options for {@link FileMigrationStateStore.open}. */
export interface FileStoreOptions {
  /** The clock, for history timestamps (tests pass a fixed one). */
  now?: () => Date;
}

/** The durable, file-backed {@link MigrationStateStore}. */
export class FileMigrationStateStore implements MigrationStateStore {
  readonly #path: string;
  readonly #now: () => Date;
  #current: MigrationStateSnapshot;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners = new Set<(snapshot: MigrationStateSnapshot) => void>();

  private constructor(path: string, initial: MigrationStateSnapshot, now: () => Date) {
    this.#path = path;
    this.#current = initial;
    this.#now = now;
  }

  /**
   * Opens (or starts) the state file at `path`. A missing file is an empty state; a file that
   * does not parse or validate is refused, never overwritten.
   */
  static async open(
    path: string,
    options: FileStoreOptions = {},
  ): Promise<FileMigrationStateStore> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const buckets = text === undefined ? new Map() : parseStateFile(text, path);
    await removeStaleTempFiles(path);
    return new FileMigrationStateStore(
      path,
      { version: 0, buckets },
      options.now ?? (() => new Date()),
    );
  }

  /** The path of the state file. */
  get path(): string {
    return this.#path;
  }

  snapshot(): MigrationStateSnapshot {
    return this.#current;
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

  attach(input: AttachInput, options: ChangeOptions): Promise<BucketMigrationState> {
    return this.#mutate((buckets) => {
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
        history: [{ at: this.#now().toISOString(), from: "detached", to: "ready", by: options.by }],
      });
      validateState(state, `bucket ${input.bucket}`);
      buckets.set(state.bucket, state);
      return state;
    });
  }

  update(
    selector: BucketSelector,
    change: StateChange,
    options: ChangeOptions,
  ): Promise<readonly BucketMigrationState[]> {
    return this.#mutate((buckets) => {
      const selected = selectBuckets(buckets, selector);
      const at = this.#now().toISOString();
      // Check every bucket before changing any: an update is all or nothing.
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
        const changed = SOURCE_FIELDS.filter(
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
    });
  }

  detach(bucket: string, _options: ChangeOptions): Promise<BucketMigrationState> {
    return this.#mutate((buckets) => {
      const current = buckets.get(bucket);
      if (!current)
        throw new MigrationStateError("NotAttached", `bucket ${bucket} is not attached`);
      const verdict = checkTransition(current.mode, "detached");
      if (!verdict.allowed) throw refused(bucket, verdict.rule, verdict.message);
      // The history goes with the state; the admin API logs the detach with its actor.
      buckets.delete(bucket);
      return current;
    });
  }

  /**
   * Runs `change` on a copy of the bucket map under the mutex, writes the result durably, and
   * only then publishes the new snapshot. A failure (refusal or I/O) publishes nothing.
   */
  #mutate<T>(change: (buckets: Map<string, BucketMigrationState>) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const buckets = new Map(this.#current.buckets);
      const result = change(buckets);
      await writeFileAtomically(this.#path, serialise(buckets));
      this.#current = Object.freeze({ version: this.#current.version + 1, buckets });
      for (const listener of this.#listeners) {
        try {
          listener(this.#current);
        } catch {
          // A listener's failure must not turn a durable change into a reported failure.
        }
      }
      return result;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
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

function pickAttach(input: AttachInput): AttachInput {
  return {
    bucket: input.bucket,
    sourceUrl: input.sourceUrl,
    sourceBucket: input.sourceBucket,
    sourceAccessKey: input.sourceAccessKey,
    sourceSecretKey: input.sourceSecretKey,
    sourceRegion: input.sourceRegion,
    sourceCa: input.sourceCa,
  };
}

function definedOnly(change: StateChange): Partial<AttachInput> {
  const out: Record<string, string> = {};
  for (const f of SOURCE_FIELDS) {
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

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function freezeState(state: BucketMigrationState): BucketMigrationState {
  for (const h of state.history) Object.freeze(h);
  Object.freeze(state.history);
  return Object.freeze(state);
}

// ---------------------------------------------------------------------------------------------
// file format

interface StateFile {
  version: number;
  buckets: Record<string, BucketMigrationState>;
}

function serialise(buckets: ReadonlyMap<string, BucketMigrationState>): string {
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

// ---------------------------------------------------------------------------------------------
// atomic write

const TEMP_MARK = ".tmp-";

/** The temp file name for `path`: same directory, so rename(2) stays within one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${randomBytes(6).toString("hex")}`);
}

/**
 * Replaces `path` with `content` atomically and durably: temp file (0600, exclusive create) →
 * write → fsync → rename → fsync of the directory (rename(2) durability needs the directory's
 * metadata on disk; see the fsync(2) man page, "NOTES").
 */
export async function writeFileAtomically(path: string, content: string): Promise<void> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, "wx", 0o600);
  try {
    try {
      await fh.writeFile(content, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function removeStaleTempFiles(path: string): Promise<void> {
  // A crash between writing the temp file and renaming it leaves the temp file behind; the
  // real file is still the previous, complete version, so the leftover is only garbage.
  const prefix = `.${basename(path)}${TEMP_MARK}`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix))
      .map((n) => unlink(join(dirname(path), n)).catch(() => undefined)),
  );
}
