// Pure parts of the state store: the JSON state file of earlier releases (imported on first
// start) and the `state:` section of gateway.yaml. The store itself is tested against both
// engines by the contract suite, test/integration/gateway-state-store.test.ts.

import { describe, expect, it } from "vitest";
import { parseConfig } from "../../gateway/config.js";
import {
  MigrationStateError,
  parseStateFile,
  serialiseStateFile,
  type BucketMigrationState,
} from "../../gateway/state/store.js";

const SECRET = "source-secret-value";

const photos: BucketMigrationState = {
  bucket: "photos",
  sourceUrl: "http://127.0.0.1:7070",
  sourceBucket: "photos",
  sourceAccessKey: "srckey",
  sourceSecretKey: SECRET,
  sourceRegion: "us-east-1",
  sourceCa: "system",
  mode: "ready",
  history: [{ at: "2026-01-02T03:04:05.000Z", from: "detached", to: "ready", by: "admin1" }],
};

function refusal(run: () => unknown): MigrationStateError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationStateError);
    return err as MigrationStateError;
  }
  throw new Error("expected a refusal");
}

describe("the JSON state file of earlier releases", () => {
  it("round-trips", () => {
    const text = serialiseStateFile(new Map([["photos", photos]]));
    expect(parseStateFile(text, "/x/state.json").get("photos")).toEqual(photos);
  });

  it("refuses a corrupt file with a clear message that quotes no secret", () => {
    const good = serialiseStateFile(new Map([["photos", photos]]));
    const e1 = refusal(() => parseStateFile(good.slice(0, good.length - 10), "/x/state.json"));
    expect(e1.code).toBe("CorruptStateFile");
    expect(e1.message).toMatch(/state file .* is corrupt \(not JSON.*\); refusing to start/);
    expect(e1.message).not.toContain(SECRET);
    const e2 = refusal(() => parseStateFile(good.replace('"ready"', '"sideways"'), "/x/s.json"));
    expect(e2.message).toContain("mode sideways is unknown");
    const e3 = refusal(() => parseStateFile(good.replace('"version": 1', '"version": 7'), "/x"));
    expect(e3.message).toContain("unknown format version 7");
  });
});

const BASE = [
  "listen: 127.0.0.1:8443",
  'target: { endpoint: "http://127.0.0.1:9000", accessKey: tkey, secretKey: target-secret }',
  "credentials: [{ accessKey: adm, secretKey: admin-secret-1, role: admin }]",
].join("\n");

function state(yaml: string, env: Record<string, string> = {}) {
  return parseConfig(`${BASE}\nstate:\n${yaml}`, { env, baseDir: "/etc/s3gw" }).state;
}

function configError(yaml: string): string {
  try {
    state(yaml);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected a config error");
}

describe("config state section", () => {
  it("an old JSON path keeps working: the SQLite database sits beside it", () => {
    const s = state("  path: state/migrations.json");
    expect(s.engine).toBe("sqlite");
    expect(s.path).toBe("/etc/s3gw/state/migrations.json");
    expect(s.sqlitePath).toBe("/etc/s3gw/state/migrations.db");
    expect(s.leaseMs).toBe(15_000);
    expect(s.pollMs).toBe(1_000);
    expect(s.confirmTimeoutMs).toBe(30_000);
  });

  it("PostgreSQL: url, password from the environment, TLS files, lease and poll", () => {
    const s = state(
      [
        "  url: postgres://s3gw@db.example:5432/s3gw",
        "  password: ${PGPW}",
        "  tls: { ca: pg-ca.pem }",
        "  gatewayId: gw-a",
        "  leaseSeconds: 6",
        "  pollSeconds: 0.5",
        "  confirmSeconds: 20",
      ].join("\n"),
      { PGPW: "pw-secret" },
    );
    expect(s).toMatchObject({
      engine: "postgres",
      url: "postgres://s3gw@db.example:5432/s3gw",
      password: "pw-secret",
      tls: { ca: "/etc/s3gw/pg-ca.pem", cert: undefined, key: undefined },
      gatewayId: "gw-a",
      leaseMs: 6_000,
      pollMs: 500,
      confirmTimeoutMs: 20_000,
    });
  });

  it.each([
    [
      "neither path nor url",
      "  leaseSeconds: 5",
      "config: state needs path (SQLite) or url (PostgreSQL)",
    ],
    [
      "both",
      "  path: s.db\n  url: postgres://h/d",
      "config: state.url and state.path are exclusive (use state.importJson to import a JSON state file into PostgreSQL)",
    ],
    [
      "a password in the URL",
      "  url: postgres://u:hunter2@h/d",
      "config: state.url must not contain a password: use state.password (e.g. ${S3GW_STATE_PASSWORD}) or PGPASSWORD",
    ],
    ["not postgres", "  url: mysql://h/d", "config: state.url must be a postgres:// URL"],
    [
      "a poll too slow for the lease",
      "  path: s.db\n  leaseSeconds: 2\n  pollSeconds: 1.5",
      "config: state.pollSeconds must be at most half of state.leaseSeconds",
    ],
    [
      "a bad lease",
      "  path: s.db\n  leaseSeconds: -1",
      "config: state.leaseSeconds must be a number of seconds from 0.5 to 3600",
    ],
    [
      "tls without url",
      "  path: s.db\n  tls: true",
      "config: state.tls is only used with state.url",
    ],
  ])("refuses %s", (_name, yaml, message) => {
    expect(configError(yaml)).toBe(message);
  });
});
