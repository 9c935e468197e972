/**
 * The gateway configuration: `s3gw serve --config gateway.yaml`.
 *
 * Parsing happens at the edge and fails fast: every rule below produces one line naming the
 * key (`config: credentials[2].role must be one of user, migrator, admin`), and no secret value
 * ever appears in such a line. The result is a typed, deeply frozen object. Keys are documented
 * in docs/configuration.md.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";

/** What a credential may do: `user` (S3 client), `migrator` (s3migrate, DESIGN 3.4), `admin`. */
export type CredentialRole = "user" | "migrator" | "admin";

/** Every role, in the order error messages list them. */
export const CREDENTIAL_ROLES: readonly CredentialRole[] = ["user", "migrator", "admin"];

/** A `host:port` pair to listen on. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** One client credential the gateway accepts. */
export interface CredentialConfig {
  readonly accessKey: string;
  readonly secretKey: string;
  readonly role: CredentialRole;
  /** Bucket names or globs (`*`, `?`) the credential may use; undefined means every bucket. */
  readonly buckets: readonly string[] | undefined;
  /** Only reads (GET, HEAD) are allowed. */
  readonly readOnly: boolean;
}

/** The target S3 store and the service credential the gateway re-signs with. */
export interface TargetConfig {
  /** `http(s)://host[:port]`, no path. */
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
  /** Absolute path of a PEM CA bundle to trust for the target; undefined = system CAs. */
  readonly ca: string | undefined;
}

/** The fully validated gateway configuration. */
export interface GatewayConfig {
  readonly listen: ListenAddress;
  /** Absolute paths of the PEM certificate chain and key; undefined = plain HTTP. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** Base domains for virtual-hosted-style addressing, lower case, no trailing dot. */
  readonly domains: readonly string[];
  readonly region: string;
  readonly target: TargetConfig;
  readonly credentials: readonly CredentialConfig[];
  readonly admin: { readonly listen: ListenAddress; readonly tls: boolean };
  /** Where the migration state is kept and how the gateways sharing it agree (see {@link StateConfig}). */
  readonly state: StateConfig;
  readonly metrics: { readonly listen: ListenAddress } | undefined;
  /**
   * Which client authentication forms besides SigV4 are accepted. `sigv2` (default true):
   * Signature Version 2, header and presigned, since sources usually accept it (DESIGN 3.1).
   */
  readonly auth: { readonly sigv2: boolean };
  /**
   * The merged listing's backend page cache (gateway/listing/page-cache.ts): how many backend
   * entries it holds (0 turns it off) and how long a page may be served.
   */
  readonly listing: { readonly cacheEntries: number; readonly cacheMs: number };
}

/** The state store: SQLite at `path` (default) or PostgreSQL at `url`, and the gateways' lease. */
export interface StateConfig {
  /** `sqlite` when `path` is set, `postgres` when `url` is. */
  readonly engine: "sqlite" | "postgres";
  /**
   * Absolute path of the SQLite database. A `state.path` ending in `.json` (the JSON state
   * file of earlier releases) keeps working: the database is the same name with `.db`.
   */
  readonly sqlitePath: string | undefined;
  /** The configured `state.path` as given (resolved), for logs and the JSON import. */
  readonly path: string | undefined;
  /** `postgres://user@host:port/database`, no password. */
  readonly url: string | undefined;
  /** PostgreSQL password (from `${ENV}`); undefined lets pg read `PGPASSWORD`. */
  readonly password: string | undefined;
  /** TLS to PostgreSQL: absolute paths of a CA and an optional client certificate and key. */
  readonly tls:
    | {
        readonly ca: string | undefined;
        readonly cert: string | undefined;
        readonly key: string | undefined;
      }
    | undefined;
  /** A JSON state file of an earlier release to import when the store is new. */
  readonly importJson: string | undefined;
  /** This gateway's id among those sharing the store; undefined = `host:pid`. */
  readonly gatewayId: string | undefined;
  /** How long a confirmation of the state (and a heartbeat) is trusted. */
  readonly leaseMs: number;
  /** How often the state version is checked and the heartbeat written. */
  readonly pollMs: number;
  /** How long a mode change waits for every live gateway to apply it. */
  readonly confirmTimeoutMs: number;
}

/** Default lease: a gateway cut off from the store stops serving attached buckets after it. */
export const DEFAULT_STATE_LEASE_MS = 15_000;
/** Default poll interval of the state version and heartbeat. */
export const DEFAULT_STATE_POLL_MS = 1_000;

/** A configuration that cannot be used; the message is one line naming the key, no secrets. */
export class ConfigError extends Error {
  /** The dotted key path the error is about, e.g. `credentials[2].role`. */
  readonly key: string;

  constructor(key: string, problem: string) {
    super(`config: ${key} ${problem}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

/** Options for {@link parseConfig}. */
export interface ParseConfigOptions {
  /** Variables for `${NAME}` expansion (the CLI passes `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are resolved against (the config file's directory). */
  baseDir: string;
}

/** The default admin listener: loopback only, since the admin API changes routing. */
export const DEFAULT_ADMIN_LISTEN: ListenAddress = { host: "127.0.0.1", port: 9444 };

/** The default signing region, as in AWS. */
export const DEFAULT_REGION = "us-east-1";

const TOP_KEYS = [
  "listen",
  "tls",
  "domains",
  "region",
  "target",
  "credentials",
  "admin",
  "state",
  "metrics",
  "auth",
  "listing",
] as const;

// Keys whose values are secrets: never echoed, even when invalid.
const SECRET_KEY_NAMES = new Set(["secretKey", "password"]);

/** Reads, expands and validates a configuration file; throws {@link ConfigError}. */
export async function loadConfigFile(
  path: string,
  options: { env: Readonly<Record<string, string | undefined>> },
): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError("file", `${path} cannot be read (${errnoCode(err)})`);
  }
  const config = parseConfig(text, { env: options.env, baseDir: dirname(resolve(path)) });
  await checkFilesReadable(config);
  return config;
}

/** Parses and validates configuration text; pure apart from nothing (files are not opened). */
export function parseConfig(text: string, options: ParseConfigOptions): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    // The YAML library's messages quote source text, which may contain a secret: keep only
    // the position.
    const pos = first?.linePos?.[0];
    const where = pos ? `line ${pos.line} column ${pos.col}` : "unknown position";
    throw new ConfigError("file", `is not valid YAML (${first?.code ?? "error"} at ${where})`);
  }
  const raw: unknown = doc.toJS();
  const root = expectObject(raw ?? {}, "(root)");
  const expanded = expandEnv(root, "", options.env) as Record<string, unknown>;
  return deepFreeze(validate(expanded, options.baseDir));
}

// ---------------------------------------------------------------------------------------------
// ${ENV} expansion

const ENV_REF = /\$\$|\$\{([^}]*)\}/g;

/**
 * Expands `${NAME}` in every string value (never in keys); `$$` is a literal `$`. Expansion
 * runs after YAML parsing so a value cannot change the document's structure.
 */
export function expandEnv(
  value: unknown,
  key: string,
  env: Readonly<Record<string, string | undefined>>,
): unknown {
  if (typeof value === "string") {
    return value.replace(ENV_REF, (match, name: string | undefined) => {
      if (match === "$$") return "$";
      if (!name || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new ConfigError(key || "(root)", `has an invalid variable reference \${${name}}`);
      }
      const v = env[name];
      if (v === undefined) {
        throw new ConfigError(
          key || "(root)",
          `uses environment variable ${name}, which is not set`,
        );
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, `${key}[${i}]`, env));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, join(key, k), env);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// validation

function validate(root: Record<string, unknown>, baseDir: string): GatewayConfig {
  rejectUnknownKeys(root, "", TOP_KEYS);

  const listen = parseListen(required(root, "listen", ""), "listen");

  let tls: GatewayConfig["tls"];
  if (root.tls !== undefined && root.tls !== null) {
    const t = expectObject(root.tls, "tls");
    rejectUnknownKeys(t, "tls", ["cert", "key"]);
    tls = {
      cert: resolve(baseDir, expectString(required(t, "cert", "tls"), "tls.cert")),
      key: resolve(baseDir, expectString(required(t, "key", "tls"), "tls.key")),
    };
  }

  const domains: string[] = [];
  if (root.domains !== undefined && root.domains !== null) {
    const list = expectArray(root.domains, "domains");
    list.forEach((d, i) => {
      const key = `domains[${i}]`;
      const name = expectString(d, key).toLowerCase().replace(/\.$/, "");
      if (!isHostname(name)) throw new ConfigError(key, `must be a DNS name (got "${name}")`);
      if (domains.includes(name)) throw new ConfigError(key, `repeats "${name}"`);
      domains.push(name);
    });
  }

  const region = parseRegion(root.region ?? DEFAULT_REGION, "region");
  const target = parseTarget(required(root, "target", ""), baseDir);
  const credentials = parseCredentials(required(root, "credentials", ""));

  let admin: GatewayConfig["admin"] = { listen: DEFAULT_ADMIN_LISTEN, tls: false };
  if (root.admin !== undefined && root.admin !== null) {
    const a = expectObject(root.admin, "admin");
    rejectUnknownKeys(a, "admin", ["listen", "tls"]);
    const adminTls = a.tls === undefined ? false : expectBoolean(a.tls, "admin.tls");
    if (adminTls && !tls) {
      throw new ConfigError(
        "admin.tls",
        "needs tls.cert and tls.key (it reuses the S3 certificate)",
      );
    }
    admin = {
      listen: a.listen === undefined ? DEFAULT_ADMIN_LISTEN : parseListen(a.listen, "admin.listen"),
      tls: adminTls,
    };
  }

  const state = parseState(required(root, "state", ""), baseDir);

  let metrics: GatewayConfig["metrics"];
  if (root.metrics !== undefined && root.metrics !== null) {
    const m = expectObject(root.metrics, "metrics");
    rejectUnknownKeys(m, "metrics", ["listen"]);
    if (m.listen !== undefined) metrics = { listen: parseListen(m.listen, "metrics.listen") };
  }

  const ports = [
    ["listen", listen],
    ["admin.listen", admin.listen],
    ...(metrics ? [["metrics.listen", metrics.listen] as const] : []),
  ] as const;
  for (let i = 0; i < ports.length; i++) {
    for (let j = 0; j < i; j++) {
      const [ka, a] = ports[i] as readonly [string, ListenAddress];
      const [kb, b] = ports[j] as readonly [string, ListenAddress];
      if (
        a.port !== 0 &&
        a.port === b.port &&
        (a.host === b.host || isWildcard(a.host) || isWildcard(b.host))
      ) {
        throw new ConfigError(ka, `uses the same address as ${kb}`);
      }
    }
  }

  let auth: GatewayConfig["auth"] = { sigv2: true };
  if (root.auth !== undefined && root.auth !== null) {
    const a = expectObject(root.auth, "auth");
    rejectUnknownKeys(a, "auth", ["sigv2"]);
    if (a.sigv2 !== undefined) auth = { sigv2: expectBoolean(a.sigv2, "auth.sigv2") };
  }

  const listing = parseListing(root.listing);

  return {
    listen,
    tls,
    domains,
    region,
    target,
    credentials,
    admin,
    state,
    metrics,
    auth,
    listing,
  };
}

/** Defaults of `listing`: about 64 backend pages of 1,000 entries, served for ten seconds. */
export const DEFAULT_LISTING_CACHE = { cacheEntries: 64_000, cacheMs: 10_000 } as const;

function parseListing(value: unknown): GatewayConfig["listing"] {
  if (value === undefined || value === null) return DEFAULT_LISTING_CACHE;
  const l = expectObject(value, "listing");
  rejectUnknownKeys(l, "listing", ["cacheEntries", "cacheSeconds"]);
  const entries = l.cacheEntries ?? DEFAULT_LISTING_CACHE.cacheEntries;
  if (
    typeof entries !== "number" ||
    !Number.isInteger(entries) ||
    entries < 0 ||
    entries > 10_000_000
  ) {
    throw new ConfigError(
      "listing.cacheEntries",
      "must be a whole number from 0 (off) to 10000000",
    );
  }
  const seconds = l.cacheSeconds ?? DEFAULT_LISTING_CACHE.cacheMs / 1000;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 || seconds > 300) {
    throw new ConfigError(
      "listing.cacheSeconds",
      "must be a number of seconds from 0 (off) to 300",
    );
  }
  return {
    cacheEntries: seconds === 0 ? 0 : entries,
    cacheMs: Math.round(seconds * 1000),
  };
}

function parseState(value: unknown, baseDir: string): StateConfig {
  const s = expectObject(value, "state");
  rejectUnknownKeys(s, "state", [
    "path",
    "url",
    "password",
    "tls",
    "importJson",
    "gatewayId",
    "leaseSeconds",
    "pollSeconds",
    "confirmSeconds",
  ]);
  if (s.path === undefined && s.url === undefined) {
    throw new ConfigError("state", "needs path (SQLite) or url (PostgreSQL)");
  }
  if (s.path !== undefined && s.url !== undefined) {
    throw new ConfigError(
      "state.url",
      "and state.path are exclusive (use state.importJson to import a JSON state file into PostgreSQL)",
    );
  }
  const seconds = (key: string, fallbackMs: number, min: number): number => {
    const v = s[key];
    if (v === undefined) return fallbackMs;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > 3600) {
      throw new ConfigError(`state.${key}`, `must be a number of seconds from ${min} to 3600`);
    }
    return Math.round(v * 1000);
  };
  const leaseMs = seconds("leaseSeconds", DEFAULT_STATE_LEASE_MS, 0.5);
  const pollMs = seconds("pollSeconds", Math.min(DEFAULT_STATE_POLL_MS, leaseMs / 3), 0.05);
  if (pollMs * 2 > leaseMs) {
    throw new ConfigError("state.pollSeconds", "must be at most half of state.leaseSeconds");
  }
  const confirmTimeoutMs = seconds("confirmSeconds", 2 * leaseMs, 0.1);
  let path: string | undefined;
  let url: string | undefined;
  if (s.path !== undefined) path = resolve(baseDir, expectString(s.path, "state.path"));
  if (s.url !== undefined) {
    url = expectString(s.url, "state.url");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError("state.url", "must be a postgres:// URL");
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      throw new ConfigError("state.url", "must be a postgres:// URL");
    }
    // A password in the URL would travel into logs and process listings; never echo it.
    if (parsed.password) {
      throw new ConfigError(
        "state.url",
        "must not contain a password: use state.password (e.g. ${S3GW_STATE_PASSWORD}) or PGPASSWORD",
      );
    }
  }
  if (s.password !== undefined && url === undefined) {
    throw new ConfigError("state.password", "is only used with state.url");
  }
  let tls: StateConfig["tls"];
  if (s.tls !== undefined && s.tls !== false) {
    if (url === undefined) throw new ConfigError("state.tls", "is only used with state.url");
    if (s.tls === true) tls = { ca: undefined, cert: undefined, key: undefined };
    else {
      const t = expectObject(s.tls, "state.tls");
      rejectUnknownKeys(t, "state.tls", ["ca", "cert", "key"]);
      const file = (k: string): string | undefined =>
        t[k] === undefined ? undefined : resolve(baseDir, expectString(t[k], `state.tls.${k}`));
      tls = { ca: file("ca"), cert: file("cert"), key: file("key") };
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        throw new ConfigError("state.tls", "needs both cert and key, or neither");
      }
    }
  }
  const gatewayId =
    s.gatewayId === undefined ? undefined : expectString(s.gatewayId, "state.gatewayId");
  if (gatewayId !== undefined && !/^[A-Za-z0-9._:@-]{1,128}$/.test(gatewayId)) {
    throw new ConfigError("state.gatewayId", "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -");
  }
  return {
    engine: url === undefined ? "sqlite" : "postgres",
    path,
    sqlitePath:
      path === undefined ? undefined : path.endsWith(".json") ? `${path.slice(0, -5)}.db` : path,
    url,
    password: s.password === undefined ? undefined : expectString(s.password, "state.password"),
    tls,
    importJson:
      s.importJson === undefined
        ? undefined
        : resolve(baseDir, expectString(s.importJson, "state.importJson")),
    gatewayId,
    leaseMs,
    pollMs,
    confirmTimeoutMs,
  };
}

function parseTarget(value: unknown, baseDir: string): TargetConfig {
  const t = expectObject(value, "target");
  rejectUnknownKeys(t, "target", ["endpoint", "accessKey", "secretKey", "region", "ca"]);
  const endpoint = parseEndpoint(required(t, "endpoint", "target"), "target.endpoint");
  return {
    endpoint,
    accessKey: expectString(required(t, "accessKey", "target"), "target.accessKey"),
    secretKey: expectString(required(t, "secretKey", "target"), "target.secretKey"),
    region: t.region === undefined ? DEFAULT_REGION : parseRegion(t.region, "target.region"),
    ca: t.ca === undefined ? undefined : resolve(baseDir, expectString(t.ca, "target.ca")),
  };
}

function parseCredentials(value: unknown): CredentialConfig[] {
  const list = expectArray(value, "credentials");
  if (list.length === 0) throw new ConfigError("credentials", "must list at least one credential");
  const seen = new Map<string, number>();
  return list.map((item, i) => {
    const key = `credentials[${i}]`;
    const c = expectObject(item, key);
    rejectUnknownKeys(c, key, ["accessKey", "secretKey", "role", "buckets", "readOnly"]);
    const accessKey = expectString(required(c, "accessKey", key), `${key}.accessKey`);
    // Access key ids travel in Credential= of every signed request; keep them to the
    // characters SigV4 scopes can carry unambiguously.
    if (!/^[A-Za-z0-9._~+=-]{3,128}$/.test(accessKey)) {
      throw new ConfigError(
        `${key}.accessKey`,
        "must be 3-128 characters of A-Z a-z 0-9 . _ ~ + = -",
      );
    }
    const previous = seen.get(accessKey);
    if (previous !== undefined) {
      throw new ConfigError(
        `${key}.accessKey`,
        `repeats the access key of credentials[${previous}]`,
      );
    }
    seen.set(accessKey, i);
    const secretKey = expectString(required(c, "secretKey", key), `${key}.secretKey`);
    if (secretKey.length < 8)
      throw new ConfigError(`${key}.secretKey`, "must be at least 8 characters");

    const roleRaw = c.role === undefined ? "user" : c.role;
    if (typeof roleRaw !== "string" || !(CREDENTIAL_ROLES as readonly string[]).includes(roleRaw)) {
      throw new ConfigError(`${key}.role`, `must be one of ${CREDENTIAL_ROLES.join(", ")}`);
    }
    const role = roleRaw as CredentialRole;

    let buckets: string[] | undefined;
    if (c.buckets !== undefined) {
      if (role !== "user") {
        throw new ConfigError(
          `${key}.buckets`,
          `is only allowed for role user (this one is ${role})`,
        );
      }
      buckets = expectArray(c.buckets, `${key}.buckets`).map((b, j) => {
        const bk = `${key}.buckets[${j}]`;
        const pattern = expectString(b, bk);
        if (!/^[a-z0-9.*?-]{1,63}$/.test(pattern)) {
          throw new ConfigError(
            bk,
            `must be a bucket name or a glob of a-z 0-9 . - * ? (got "${pattern}")`,
          );
        }
        return pattern;
      });
      if (buckets.length === 0)
        throw new ConfigError(`${key}.buckets`, "must not be empty (omit it for every bucket)");
    }
    let readOnly = false;
    if (c.readOnly !== undefined) {
      readOnly = expectBoolean(c.readOnly, `${key}.readOnly`);
      if (role !== "user") {
        throw new ConfigError(
          `${key}.readOnly`,
          `is only allowed for role user (this one is ${role})`,
        );
      }
    }
    return { accessKey, secretKey, role, buckets, readOnly };
  });
}

/** Parses `host:port` or `[v6]:port`; port 0 asks the OS for a free port (tests). */
export function parseListen(value: unknown, key: string): ListenAddress {
  const text = expectString(value, key);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m)
    throw new ConfigError(key, `must be host:port, e.g. 0.0.0.0:443 or [::1]:9444 (got "${text}")`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(key, `has a port out of range (got ${port})`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function parseEndpoint(value: unknown, key: string): string {
  const text = expectString(value, key);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(key, "must be an http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(key, "must be an http:// or https:// URL");
  }
  // Never echo a URL that carries userinfo: it may be a secret.
  if (url.username || url.password) throw new ConfigError(key, "must not contain user:password@");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new ConfigError(key, `must have no path, query or fragment (got "${text}")`);
  }
  return url.origin;
}

function parseRegion(value: unknown, key: string): string {
  const text = expectString(value, key);
  if (!/^[a-z0-9-]{1,64}$/.test(text))
    throw new ConfigError(key, `must be a region name like us-east-1 (got "${text}")`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// helpers

async function checkFilesReadable(config: GatewayConfig): Promise<void> {
  const files: [string, string | undefined][] = [
    ["tls.cert", config.tls?.cert],
    ["tls.key", config.tls?.key],
    ["target.ca", config.target.ca],
    ["state.tls.ca", config.state.tls?.ca],
    ["state.tls.cert", config.state.tls?.cert],
    ["state.tls.key", config.state.tls?.key],
  ];
  for (const [key, path] of files) {
    if (path === undefined) continue;
    try {
      const text = await readFile(path, "utf8");
      if (!text.includes("-----BEGIN ")) throw new ConfigError(key, `${path} is not a PEM file`);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(key, `${path} cannot be read (${errnoCode(err)})`);
    }
  }
}

function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? "error";
}

function join(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

function required(obj: Record<string, unknown>, name: string, parent: string): unknown {
  const v = obj[name];
  if (v === undefined || v === null) throw new ConfigError(join(parent, name), "is required");
  return v;
}

function expectObject(value: unknown, key: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(key, "must be a mapping of keys to values");
  }
  return value as Record<string, unknown>;
}

function expectArray(value: unknown, key: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(key, "must be a list");
  return value;
}

function expectString(value: unknown, key: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(key, "must be a non-empty string");
  }
  return value;
}

function expectBoolean(value: unknown, key: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(key, "must be true or false");
  return value;
}

function rejectUnknownKeys(
  obj: Record<string, unknown>,
  parent: string,
  known: readonly string[],
): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      // The key name is the operator's own text, never a secret value.
      const hint = SECRET_KEY_NAMES.has(k) ? "" : ` (expected one of ${known.join(", ")})`;
      throw new ConfigError(join(parent, k), `is not a known key${hint}`);
    }
  }
}

function isHostname(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label))
  );
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// bucket globs

/** Compiles a bucket glob (`*` any run, `?` one character) to an anchored RegExp. */
export function bucketGlobToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\-]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/** Whether a credential's `buckets` list (names or globs) allows `bucket`. */
export function credentialAllowsBucket(credential: CredentialConfig, bucket: string): boolean {
  if (credential.buckets === undefined) return true;
  return credential.buckets.some((g) => bucketGlobToRegExp(g).test(bucket));
}
