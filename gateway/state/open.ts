/**
 * Opens the state store a gateway's configuration names (`state:` in gateway.yaml): the
 * engine, the JSON import of earlier releases, and the cached store with its heartbeat.
 */
import { readFile, rename, stat } from "node:fs/promises";
import { hostname } from "node:os";
import type { StateConfig } from "../config.js";
import { CachedMigrationStateStore, type StoreLogger } from "./cached-store.js";
import type { StateEngine } from "./engine.js";
import { PostgresEngine } from "./postgres-engine.js";
import { SqliteEngine } from "./sqlite-engine.js";
import { MigrationStateError, parseStateFile } from "./store.js";

/** Options for {@link openStateStore}. */
export interface OpenStateOptions {
  readonly logger?: StoreLogger;
  /** Open without a heartbeat (tools that are not gateways). */
  readonly passive?: boolean;
  /** The wall clock for history timestamps (tests). */
  readonly now?: () => Date;
}

/** The default id of this gateway: `host:pid`, unique among the processes of a host. */
export function defaultGatewayId(): string {
  return `${hostname()}:${process.pid}`;
}

/** Opens the engine configured in `config` (SQLite or PostgreSQL). */
export async function openEngine(config: StateConfig): Promise<StateEngine> {
  if (config.engine === "postgres") {
    const read = async (path: string | undefined): Promise<string | undefined> =>
      path === undefined ? undefined : readFile(path, "utf8");
    return PostgresEngine.open({
      url: config.url as string,
      password: config.password,
      tls: config.tls
        ? {
            ca: await read(config.tls.ca),
            cert: await read(config.tls.cert),
            key: await read(config.tls.key),
          }
        : undefined,
    });
  }
  return SqliteEngine.open(config.sqlitePath as string);
}

/**
 * Opens the configured store and, when it was never written, imports the JSON state file of
 * an earlier release (`state.importJson`, or a `state.path` that holds one). The JSON file is
 * kept as it is (a backup), and the log says what was imported from where.
 */
export async function openStateStore(
  config: StateConfig,
  options: OpenStateOptions = {},
): Promise<CachedMigrationStateStore> {
  const legacy = await legacyJsonFile(config);
  const engine = await openEngine(config);
  let store: CachedMigrationStateStore;
  try {
    store = await CachedMigrationStateStore.open(engine, {
      gatewayId: config.gatewayId ?? defaultGatewayId(),
      leaseMs: config.leaseMs,
      pollMs: config.pollMs,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.passive ? { passive: true } : {}),
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  try {
    const source = config.importJson ?? legacy;
    if (source !== undefined && store.snapshot().version === 0) {
      let text: string;
      try {
        text = await readFile(source, "utf8");
      } catch (err) {
        throw new MigrationStateError(
          "CorruptStateFile",
          `state file ${source} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        );
      }
      const buckets = parseStateFile(text, source);
      if (await store.importIfEmpty(buckets)) {
        options.logger?.info(
          { from: source, buckets: buckets.size, engine: engine.kind },
          "imported the JSON state file; it is kept unchanged as a backup",
        );
      }
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * The JSON state file of an earlier release at `state.path`, if any. A path ending in `.json`
 * names it directly (the database lives beside it). Any other path holding JSON rather than a
 * SQLite database is moved to `<path>.pre-sqlite.json` first, so the database can take its
 * place; that copy is then the file imported and kept.
 */
async function legacyJsonFile(config: StateConfig): Promise<string | undefined> {
  if (config.engine !== "sqlite" || config.path === undefined) return undefined;
  const path = config.path;
  if (path !== config.sqlitePath) return (await exists(path)) ? path : undefined;
  const moved = `${path}.pre-sqlite.json`;
  if (await exists(path)) {
    const head = (await readFile(path)).subarray(0, 16);
    if (head.toString("latin1").startsWith("SQLite format 3")) {
      return (await exists(moved)) ? moved : undefined;
    }
    if (head.length > 0 && head.toString("utf8").trimStart().startsWith("{")) {
      // Refuse a corrupt file before moving anything.
      parseStateFile(await readFile(path, "utf8"), path);
      if (await exists(moved)) {
        throw new MigrationStateError(
          "CorruptStateFile",
          `state.path ${path} holds a JSON state file and ${moved} exists too; move one of them away`,
        );
      }
      await rename(path, moved);
      return moved;
    }
  }
  return (await exists(moved)) ? moved : undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
