import { describe, expect, it } from "vitest";
import type { CredentialRole } from "../../gateway/config.js";
import { route, type Route } from "../../gateway/routing/route.js";
import type { BucketMigrationState } from "../../gateway/state/store.js";
import type { MigrationMode } from "../../gateway/state/transitions.js";

function state(mode: MigrationMode): BucketMigrationState {
  return {
    bucket: "photos",
    sourceUrl: "https://old.example.com",
    sourceBucket: "old-photos",
    sourceAccessKey: "AK",
    sourceSecretKey: "SK",
    sourceRegion: "us-east-1",
    sourceCa: "system",
    mode,
    history: [],
  };
}

function summary(r: Route): string {
  return r.backend === "refuse" ? `refuse:${r.code}` : `${r.backend}:${r.bucket ?? "-"}`;
}

const TABLE: [
  name: string,
  mode: MigrationMode | undefined,
  op: string,
  method: string,
  role: CredentialRole,
  expected: string,
][] = [
  ["not attached GET", undefined, "GetObject", "GET", "user", "target:photos"],
  ["not attached PUT", undefined, "PutObject", "PUT", "user", "target:photos"],
  ["ready GET", "ready", "GetObject", "GET", "user", "target:photos"],
  ["ready PUT", "ready", "PutObject", "PUT", "user", "target:photos"],
  ["ready migrator PUT", "ready", "PutObject", "PUT", "migrator", "target:photos"],
  ["ready bucket config", "ready", "PutBucketVersioning", "PUT", "user", "target:photos"],
  ["forward GET", "forward", "GetObject", "GET", "user", "source:old-photos"],
  ["forward PUT", "forward", "PutObject", "PUT", "user", "source:old-photos"],
  ["forward list", "forward", "ListObjectsV2", "GET", "user", "source:old-photos"],
  ["forward multipart", "forward", "UploadPart", "PUT", "user", "source:old-photos"],
  ["forward multi-delete", "forward", "DeleteObjects", "POST", "user", "source:old-photos"],
  ["forward HeadBucket", "forward", "HeadBucket", "HEAD", "user", "source:old-photos"],
  ["forward unknown op", "forward", "UnknownBucketOperation", "GET", "user", "source:old-photos"],
  ["forward migrator GET", "forward", "GetObject", "GET", "migrator", "source:old-photos"],
  [
    "forward migrator PUT refused",
    "forward",
    "PutObject",
    "PUT",
    "migrator",
    "refuse:AccessDenied",
  ],
  [
    "forward migrator DELETE refused",
    "forward",
    "DeleteObject",
    "DELETE",
    "migrator",
    "refuse:AccessDenied",
  ],
  [
    "migrate not implemented yet",
    "migrate",
    "GetObject",
    "GET",
    "user",
    "refuse:ServiceUnavailable",
  ],
];

describe("route", () => {
  for (const [name, mode, operation, method, role, expected] of TABLE) {
    it(name, () => {
      const r = route({
        state: mode ? state(mode) : undefined,
        bucket: "photos",
        operation,
        method,
        role,
      });
      expect(summary(r)).toBe(expected);
      expect(r.mode).toBe(mode ?? "detached");
    });
  }

  it("forward carries the source state for re-signing", () => {
    const s = state("forward");
    const r = route({
      state: s,
      bucket: "photos",
      operation: "GetObject",
      method: "GET",
      role: "user",
    });
    expect(r.backend === "source" && r.source).toBe(s);
  });

  it("ListBuckets (no bucket) goes to the target", () => {
    const r = route({
      state: undefined,
      bucket: undefined,
      operation: "ListBuckets",
      method: "GET",
      role: "user",
    });
    expect(summary(r)).toBe("target:-");
  });
});
