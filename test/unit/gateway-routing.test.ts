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
  if (r.kind === "refuse") return `refuse:${r.code}`;
  if (r.kind === "single") return `${r.backend}:${r.bucket ?? "-"}`;
  if (r.kind === "copy") return `copy→${r.destination}`;
  return r.kind;
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
  // Migrate mode, operation by operation (DESIGN 3.3).
  ["migrate GET falls back", "migrate", "GetObject", "GET", "user", "fallback"],
  ["migrate HEAD falls back", "migrate", "HeadObject", "HEAD", "user", "fallback"],
  ["migrate tagging read falls back", "migrate", "GetObjectTagging", "GET", "user", "fallback"],
  [
    "migrate tagging write where the object is",
    "migrate",
    "PutObjectTagging",
    "PUT",
    "user",
    "fallback",
  ],
  ["migrate PUT to target", "migrate", "PutObject", "PUT", "user", "target:photos"],
  [
    "migrate new upload on target",
    "migrate",
    "CreateMultipartUpload",
    "POST",
    "user",
    "target:photos",
  ],
  [
    "migrate bucket config to target",
    "migrate",
    "PutBucketTagging",
    "PUT",
    "user",
    "target:photos",
  ],
  ["migrate HeadBucket to target", "migrate", "HeadBucket", "HEAD", "user", "target:photos"],
  ["migrate DELETE on both", "migrate", "DeleteObject", "DELETE", "user", "both"],
  ["migrate multi-delete on both", "migrate", "DeleteObjects", "POST", "user", "both"],
  ["migrate listing merged", "migrate", "ListObjectsV2", "GET", "user", "mergeList"],
  ["migrate uploads listing merged", "migrate", "ListMultipartUploads", "GET", "user", "mergeList"],
  ["migrate CopyObject", "migrate", "CopyObject", "PUT", "user", "copy→target"],
  [
    "migrate DeleteBucket refused",
    "migrate",
    "DeleteBucket",
    "DELETE",
    "user",
    "refuse:AccessDenied",
  ],
  [
    "migrate unknown op to target",
    "migrate",
    "UnknownObjectOperation",
    "GET",
    "user",
    "target:photos",
  ],
  [
    "migrate migrator GET sees the target",
    "migrate",
    "GetObject",
    "GET",
    "migrator",
    "target:photos",
  ],
  [
    "migrate migrator HEAD sees the target",
    "migrate",
    "HeadObject",
    "HEAD",
    "migrator",
    "target:photos",
  ],
  [
    "migrate migrator list sees the target",
    "migrate",
    "ListObjectsV2",
    "GET",
    "migrator",
    "target:photos",
  ],
  [
    "migrate migrator PUT is a migration write",
    "migrate",
    "PutObject",
    "PUT",
    "migrator",
    "migrationWrite",
  ],
  [
    "migrate migrator Complete is a migration write",
    "migrate",
    "CompleteMultipartUpload",
    "POST",
    "migrator",
    "migrationWrite",
  ],
  ["migrate migrator part to target", "migrate", "UploadPart", "PUT", "migrator", "target:photos"],
  [
    "migrate migrator DELETE refused",
    "migrate",
    "DeleteObject",
    "DELETE",
    "migrator",
    "refuse:AccessDenied",
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

  it("an upload that lives on the source keeps going there in migrate mode", () => {
    const s = state("migrate");
    const at = (operation: string, method: string, home: "target" | "source") =>
      summary(
        route({
          state: s,
          bucket: "photos",
          operation,
          method,
          role: "user",
          facts: { uploadHome: home },
        }),
      );
    expect(at("UploadPart", "PUT", "source")).toBe("source:old-photos");
    expect(at("ListParts", "GET", "source")).toBe("source:old-photos");
    expect(at("CompleteMultipartUpload", "POST", "source")).toBe("source:old-photos");
    expect(at("AbortMultipartUpload", "DELETE", "source")).toBe("source:old-photos");
    expect(at("UploadPartCopy", "PUT", "source")).toBe("copy→source");
    expect(at("UploadPart", "PUT", "target")).toBe("target:photos");
    expect(at("UploadPartCopy", "PUT", "target")).toBe("copy→target");
  });

  it("conditional writes in migrate mode see an object that lives only on the source", () => {
    const s = state("migrate");
    const put = (
      conditions: { ifMatch?: string; ifNoneMatch?: string },
      object: { onTarget: boolean; sourceEtag: string | undefined },
    ) =>
      route({
        state: s,
        bucket: "photos",
        operation: "PutObject",
        method: "PUT",
        role: "user",
        facts: { object },
        conditions,
      });
    const onSource = { onTarget: false, sourceEtag: '"abc"' };
    expect(summary(put({ ifNoneMatch: "*" }, onSource))).toBe("refuse:PreconditionFailed");
    expect(summary(put({ ifNoneMatch: "*" }, { onTarget: false, sourceEtag: undefined }))).toBe(
      "target:photos",
    );
    expect(summary(put({ ifNoneMatch: "*" }, { onTarget: true, sourceEtag: undefined }))).toBe(
      "target:photos",
    );
    expect(summary(put({ ifMatch: '"zzz"' }, onSource))).toBe("refuse:PreconditionFailed");
    const matched = put({ ifMatch: '"abc"' }, onSource);
    expect(summary(matched)).toBe("target:photos");
    expect(matched.kind === "single" && matched.dropHeaders).toEqual(["if-match"]);
    expect(summary(put({ ifMatch: "*" }, onSource))).toBe("target:photos");
  });

  it("the migrator may delete only its own start-up probe object in migrate mode", () => {
    const del = (key: string) =>
      summary(
        route({
          state: state("migrate"),
          bucket: "photos",
          key,
          operation: "DeleteObject",
          method: "DELETE",
          role: "migrator",
        }),
      );
    expect(del(".s3migrate-probe/123-abc")).toBe("target:photos");
    expect(del("photo.jpg")).toBe("refuse:AccessDenied");
    expect(del(".s3migrate-probe")).toBe("refuse:AccessDenied");
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
