import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  credentialAllowsBucket,
  loadConfigFile,
  parseConfig,
  type GatewayConfig,
} from "../../gateway/config.js";

const SECRET = "TopSecretValue-123";

const BASE = `
listen: 0.0.0.0:8443
domains: [s3.example.com]
target:
  endpoint: http://127.0.0.1:9000
  accessKey: targetkey
  secretKey: ${SECRET}
credentials:
  - accessKey: userkey
    secretKey: ${SECRET}
  - accessKey: adminkey
    secretKey: ${SECRET}
    role: admin
state:
  path: state/migrations.json
`;

function parse(text: string, env: Record<string, string> = {}): GatewayConfig {
  return parseConfig(text, { env, baseDir: "/etc/s3gw" });
}

/** Parses and returns the error message, failing the test if parsing succeeds. */
function errorOf(text: string, env: Record<string, string> = {}): string {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a ConfigError");
}

/** BASE with one line replaced (or appended when `from` is not found). */
function variant(from: string, to: string): string {
  if (!BASE.includes(from)) throw new Error(`test bug: ${from} not in BASE`);
  return BASE.replace(from, to);
}

describe("gateway config", () => {
  it("parses a minimal file with defaults applied", () => {
    const c = parse(BASE);
    expect(c.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(c.tls).toBeUndefined();
    expect(c.region).toBe("us-east-1");
    expect(c.target).toEqual({
      endpoint: "http://127.0.0.1:9000",
      accessKey: "targetkey",
      secretKey: SECRET,
      region: "us-east-1",
      ca: undefined,
    });
    expect(c.credentials[0]).toMatchObject({ role: "user", readOnly: false, buckets: undefined });
    expect(c.credentials[1]?.role).toBe("admin");
    expect(c.admin).toEqual({ listen: { host: "127.0.0.1", port: 9444 }, tls: false });
    expect(c.state.path).toBe("/etc/s3gw/state/migrations.json");
    expect(c.metrics).toBeUndefined();
  });

  it("returns a deeply frozen object", () => {
    const c = parse(BASE);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.target)).toBe(true);
    expect(Object.isFrozen(c.credentials)).toBe(true);
    expect(Object.isFrozen(c.credentials[0])).toBe(true);
  });

  it("expands ${ENV} in values, and $$ is a literal dollar", () => {
    const c = parse(
      variant(`secretKey: ${SECRET}\ncredentials`, "secretKey: ${TARGET_SECRET}$$x\ncredentials"),
      {
        TARGET_SECRET: "from-env",
      },
    );
    expect(c.target.secretKey).toBe("from-env$x");
  });

  it("a missing variable is an error naming the variable and the key, not the value", () => {
    const m = errorOf(
      variant(`secretKey: ${SECRET}\ncredentials`, "secretKey: ${NOPE}\ncredentials"),
    );
    expect(m).toBe("config: target.secretKey uses environment variable NOPE, which is not set");
  });

  it("a variable's value cannot change the document structure", () => {
    const c = parse(variant("accessKey: targetkey", "accessKey: ${K}"), { K: "a: b\nrole: admin" });
    expect(c.target.accessKey).toBe("a: b\nrole: admin");
  });

  const cases: [name: string, text: string, expected: string][] = [
    ["invalid YAML", "listen: [", "config: file is not valid YAML"],
    ["listen missing", variant("listen: 0.0.0.0:8443", ""), "config: listen is required"],
    [
      "listen without port",
      variant("0.0.0.0:8443", "localhost"),
      "config: listen must be host:port",
    ],
    [
      "listen port out of range",
      variant("0.0.0.0:8443", "0.0.0.0:70000"),
      "config: listen has a port out of range",
    ],
    [
      "unknown top-level key",
      `${BASE}\nlisten_addr: x\n`,
      "config: listen_addr is not a known key",
    ],
    ["tls without key", `${BASE}\ntls:\n  cert: a.pem\n`, "config: tls.key is required"],
    [
      "domain not a DNS name",
      variant("[s3.example.com]", "[s3_example.com]"),
      "config: domains[0] must be a DNS name",
    ],
    [
      "duplicate domain",
      variant("[s3.example.com]", "[a.com, A.com.]"),
      'config: domains[1] repeats "a.com"',
    ],
    ["bad region", `${BASE}\nregion: US East\n`, "config: region must be a region name"],
    ["target missing", variant("target:", "target_:"), "config: target_ is not a known key"],
    [
      "target endpoint not a URL",
      variant("http://127.0.0.1:9000", "127.0.0.1:9000"),
      "config: target.endpoint must be an http:// or https:// URL",
    ],
    [
      "target endpoint with a path",
      variant("http://127.0.0.1:9000", "http://127.0.0.1:9000/x"),
      "config: target.endpoint must have no path",
    ],
    [
      "target endpoint with userinfo",
      variant("http://127.0.0.1:9000", `http://u:${SECRET}@127.0.0.1:9000`),
      "config: target.endpoint must not contain user:password@",
    ],
    [
      "target secret missing",
      variant(`  secretKey: ${SECRET}\ncredentials`, "credentials"),
      "config: target.secretKey is required",
    ],
    [
      "unknown target key",
      variant("  accessKey: targetkey", "  accessKey: targetkey\n  secret: x"),
      "config: target.secret is not a known key",
    ],
    [
      "credentials empty",
      BASE.replace(/credentials:[\s\S]*?state:/, "credentials: []\nstate:"),
      "config: credentials must list at least one credential",
    ],
    [
      "bad role",
      variant("role: admin", "role: root"),
      "config: credentials[1].role must be one of user, migrator, admin",
    ],
    [
      "duplicate access key",
      variant("accessKey: adminkey", "accessKey: userkey"),
      "config: credentials[1].accessKey repeats the access key of credentials[0]",
    ],
    [
      "short secret",
      variant(`    secretKey: ${SECRET}\n    role`, "    secretKey: short\n    role"),
      "config: credentials[1].secretKey must be at least 8 characters",
    ],
    [
      "buckets on admin",
      variant("role: admin", "role: admin\n    buckets: [a]"),
      "config: credentials[1].buckets is only allowed for role user",
    ],
    [
      "readOnly on admin",
      variant("role: admin", "role: admin\n    readOnly: true"),
      "config: credentials[1].readOnly is only allowed for role user",
    ],
    [
      "readOnly not boolean",
      variant("role: admin", "readOnly: yes-please"),
      "config: credentials[1].readOnly must be true or false",
    ],
    [
      "bad bucket glob",
      variant("role: admin", "buckets: [Photos]"),
      "config: credentials[1].buckets[0] must be a bucket name or a glob",
    ],
    [
      "empty buckets",
      variant("role: admin", "buckets: []"),
      "config: credentials[1].buckets must not be empty",
    ],
    [
      "admin.tls without tls",
      `${BASE}\nadmin:\n  tls: true\n`,
      "config: admin.tls needs tls.cert and tls.key",
    ],
    [
      "admin on the S3 port",
      `${BASE}\nadmin:\n  listen: 127.0.0.1:8443\n`,
      "config: admin.listen uses the same address as listen",
    ],
    [
      "state.path missing",
      variant("  path: state/migrations.json", "  other: x"),
      "config: state.other is not a known key",
    ],
    [
      "state missing",
      variant("state:\n  path: state/migrations.json", ""),
      "config: state is required",
    ],
    [
      "metrics listen invalid",
      `${BASE}\nmetrics:\n  listen: nope\n`,
      "config: metrics.listen must be host:port",
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(`refuses: ${name}`, () => {
      expect(errorOf(text)).toContain(expected);
    });
  }

  it("accepts every optional key", () => {
    const c = parse(
      `${BASE}
tls: { cert: certs/out/server.pem, key: /abs/server-key.pem }
region: eu-west-1
admin: { listen: "[::1]:9555", tls: true }
metrics: { listen: 127.0.0.1:9100 }
`.replace(
        "  secretKey: " + SECRET + "\ncredentials",
        `  secretKey: ${SECRET}\n  region: eu-central-1\n  ca: ca.pem\ncredentials`,
      ),
    );
    expect(c.tls).toEqual({ cert: "/etc/s3gw/certs/out/server.pem", key: "/abs/server-key.pem" });
    expect(c.region).toBe("eu-west-1");
    expect(c.target.region).toBe("eu-central-1");
    expect(c.target.ca).toBe("/etc/s3gw/ca.pem");
    expect(c.admin).toEqual({ listen: { host: "::1", port: 9555 }, tls: true });
    expect(c.metrics).toEqual({ listen: { host: "127.0.0.1", port: 9100 } });
  });

  it("bucket globs limit a user credential", () => {
    const c = parse(variant("role: admin", "buckets: [photos, 'logs-*', 'tmp?']"));
    const user = c.credentials[1];
    if (!user) throw new Error("missing credential");
    expect(credentialAllowsBucket(user, "photos")).toBe(true);
    expect(credentialAllowsBucket(user, "photos2")).toBe(false);
    expect(credentialAllowsBucket(user, "logs-2024")).toBe(true);
    expect(credentialAllowsBucket(user, "tmp1")).toBe(true);
    expect(credentialAllowsBucket(user, "tmp12")).toBe(false);
    // A dot in a glob is literal, not "any character".
    const dotted = parse(variant("role: admin", "buckets: ['a.b']")).credentials[1];
    if (!dotted) throw new Error("missing credential");
    expect(credentialAllowsBucket(dotted, "axb")).toBe(false);
    expect(credentialAllowsBucket(c.credentials[0] as never, "anything")).toBe(true);
  });

  it("the commented example gateway.example.yaml is valid and uses every top-level key", async () => {
    const text = await readFile(new URL("../../gateway.example.yaml", import.meta.url), "utf8");
    const env = new Proxy({} as Record<string, string>, {
      get: (_t, k) => `env-${String(k)}-value`,
    });
    const c = parse(text, env);
    expect(c.tls).toBeDefined();
    expect(c.metrics).toBeDefined();
    expect(c.domains).toEqual(["s3.example.com"]);
    expect(c.credentials.map((x) => x.role)).toEqual(["user", "user", "migrator", "admin"]);
    expect(c.target.secretKey).toBe("env-S3GW_TARGET_SECRET_KEY-value");
  });

  it("listing: the page cache's defaults, its limits and off", () => {
    expect(parse(BASE).listing).toEqual({ cacheEntries: 64_000, cacheMs: 10_000 });
    expect(parse(`${BASE}\nlisting: { cacheEntries: 5000, cacheSeconds: 2.5 }\n`).listing).toEqual({
      cacheEntries: 5000,
      cacheMs: 2500,
    });
    expect(parse(`${BASE}\nlisting: { cacheSeconds: 0 }\n`).listing.cacheEntries).toBe(0);
    expect(errorOf(`${BASE}\nlisting: { cacheEntries: -1 }\n`)).toMatch(/listing\.cacheEntries/);
    expect(errorOf(`${BASE}\nlisting: { cacheEntries: 1.5 }\n`)).toMatch(/listing\.cacheEntries/);
    expect(errorOf(`${BASE}\nlisting: { cacheSeconds: 301 }\n`)).toMatch(/listing\.cacheSeconds/);
    expect(errorOf(`${BASE}\nlisting: { pages: 3 }\n`)).toMatch(
      /listing\.pages is not a known key/,
    );
  });

  it("loadConfigFile reports unreadable TLS files by key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "s3gw-config-"));
    const path = join(dir, "gateway.yaml");
    await writeFile(path, `${BASE}\ntls: { cert: missing.pem, key: missing-key.pem }\n`);
    await expect(loadConfigFile(path, { env: {} })).rejects.toThrow(
      /^config: tls\.cert .*missing\.pem cannot be read \(ENOENT\)$/,
    );
    await expect(loadConfigFile(join(dir, "nope.yaml"), { env: {} })).rejects.toThrow(
      /config: file .* cannot be read/,
    );
    await writeFile(join(dir, "missing.pem"), "not pem");
    await expect(loadConfigFile(path, { env: {} })).rejects.toThrow("is not a PEM file");
  });
});
