/**
 * Where a request goes: a pure function of the bucket's migration state, the S3 operation, the
 * facts gathered before routing, and who is asking (STYLE rule 4). The S3 listener calls it
 * after authentication and authorization and before it reads any request body, so the decision
 * never depends on bytes it would have to replay. Each mode is one case of
 * {@link MODE_ROUTERS}; the answer is a {@link Plan} that one executor carries out.
 */
import type { CredentialRole } from "../config.js";
import {
  isS3Operation,
  isWriteRequest,
  traitsOf,
  type MigrateRule,
  type S3Operation,
} from "../front/operation-traits.js";
import type { BucketMigrationState } from "../state/store.js";
import type { MigrationMode } from "../state/transitions.js";
import type { RouteFacts, WriteConditions } from "./facts.js";
import type { Plan, RefusePlan, RouteMode, SingleTargetPlan } from "./plan.js";

export type { Plan, RouteMode } from "./plan.js";

/** The decision (the name routing used before plans had kinds). */
export type Route = Plan;

/** What the router needs to know about one request. */
export interface RouteInput {
  /** The bucket's migration state; undefined when the bucket is not attached (or no bucket). */
  readonly state: BucketMigrationState | undefined;
  /** The client-facing bucket name; undefined for service-level requests (ListBuckets). */
  readonly bucket: string | undefined;
  /** The object key, for object-level requests. */
  readonly key?: string;
  /** The S3 operation name from classifyOperation. */
  readonly operation: S3Operation | string;
  /** The role of the credential that signed the request. */
  readonly role: CredentialRole;
  /** The HTTP method, upper case. */
  readonly method: string;
  /** Facts gathered before routing (migrate mode). */
  readonly facts?: RouteFacts;
  /** The client's write conditions, for conditional writes in migrate mode. */
  readonly conditions?: WriteConditions;
}

/** The routing function of one mode. */
export type ModeRouter = (input: RouteInput, state: BucketMigrationState) => Plan;

function refuse(
  input: RouteInput,
  mode: RouteMode,
  code: RefusePlan["code"],
  reason: string,
): RefusePlan {
  return { kind: "refuse", backend: "refuse", mode, bucket: input.bucket, code, reason };
}

function target(input: RouteInput, mode: RouteMode): SingleTargetPlan {
  return { kind: "single", backend: "target", mode, bucket: input.bucket };
}

/**
 * Writes by the migrator identity in forward mode are refused: they would land on the source
 * (the bucket being copied from), get `412` from `If-None-Match: *`, and be logged as already
 * copied — a silent hole in the migration once migrate mode begins.
 */
const forwardRouter: ModeRouter = (input, state) => {
  if (input.role === "migrator" && isWriteRequest(input.method, input.operation)) {
    return refuse(
      input,
      "forward",
      "AccessDenied",
      "the migrator credential may only write in migrate mode",
    );
  }
  return {
    kind: "single",
    backend: "source",
    mode: "forward",
    bucket: state.sourceBucket,
    source: state,
  };
};

/** Operations whose `If-Match` / `If-None-Match` the gateway must evaluate across both sides. */
export const CONDITIONAL_WRITES: ReadonlySet<string> = new Set([
  "PutObject",
  "CopyObject",
  "CompleteMultipartUpload",
]);

/**
 * A client's conditional write in migrate mode means what it means on one bucket (DESIGN 3.3):
 * an object that exists only on the source still exists. When the target holds the key it
 * evaluates the conditions itself; otherwise the gateway does, from the source's ETag, and
 * drops an `If-Match` it has already found true (the target would refuse it: it has no object).
 */
function conditionalWrite(
  input: RouteInput,
  plan: SingleTargetPlan,
): SingleTargetPlan | RefusePlan {
  const object = input.facts?.object;
  const c = input.conditions;
  if (object === undefined || c === undefined || object.onTarget) return plan;
  if (object.sourceEtag === undefined) return plan;
  if (c.ifNoneMatch !== undefined && etagListMatches(c.ifNoneMatch, object.sourceEtag)) {
    return refuse(input, "migrate", "PreconditionFailed", "the object exists on the source");
  }
  if (c.ifMatch !== undefined) {
    if (!etagListMatches(c.ifMatch, object.sourceEtag)) {
      return refuse(input, "migrate", "PreconditionFailed", "If-Match does not match the object");
    }
    return { ...plan, dropHeaders: ["if-match"] };
  }
  return plan;
}

/** Whether an `If-Match`/`If-None-Match` list (`*` or quoted ETags) matches `etag`. */
export function etagListMatches(list: string, etag: string): boolean {
  const bare = (e: string): string => e.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
  const want = bare(etag);
  return list.split(",").some((item) => item.trim() === "*" || bare(item) === want);
}

/**
 * Migrate mode, operation by operation (DESIGN 3.3): the target is the system of record and
 * the source the fallback for what has not been copied yet. The migrator credential sees and
 * writes the target only, so s3migrate can tell what is really migrated, and its object writes
 * are migration writes (DESIGN 3.4).
 */
const migrateRouter: ModeRouter = (input, state) => {
  const sides = {
    mode: "migrate",
    backend: "target+source",
    bucket: state.bucket,
    source: state,
  } as const;
  if (!isS3Operation(input.operation)) return target(input, "migrate");
  const traits = traitsOf(input.operation);
  if (input.role === "migrator") return migratorInMigrate(input, traits.migrate);
  switch (traits.migrate) {
    case "target":
      return CONDITIONAL_WRITES.has(input.operation)
        ? conditionalWrite(input, target(input, "migrate"))
        : target(input, "migrate");
    case "fallback":
    case "whereObject":
      return { ...sides, kind: "fallback" };
    case "both":
      return { ...sides, kind: "both" };
    case "mergeList":
      return { ...sides, kind: "mergeList" };
    case "copy": {
      const checked = conditionalWrite(input, target(input, "migrate"));
      if (checked.kind === "refuse") return checked;
      return {
        ...sides,
        kind: "copy",
        destination: "target",
        ...(checked.dropHeaders === undefined ? {} : { dropHeaders: checked.dropHeaders }),
      };
    }
    case "upload":
      return uploadPlan(input, state, sides);
    case "refuse":
      return refuse(input, "migrate", "AccessDenied", "the bucket is being migrated");
  }
};

/** An operation on an existing multipart upload goes where the upload lives (facts). */
function uploadPlan(
  input: RouteInput,
  state: BucketMigrationState,
  sides: {
    mode: "migrate";
    backend: "target+source";
    bucket: string;
    source: BucketMigrationState;
  },
): Plan {
  const home = input.facts?.uploadHome ?? "target";
  if (input.operation === "UploadPartCopy") return { ...sides, kind: "copy", destination: home };
  if (home === "source") {
    return {
      kind: "single",
      backend: "source",
      mode: "migrate",
      bucket: state.sourceBucket,
      source: state,
    };
  }
  const plan = target(input, "migrate");
  return input.operation === "CompleteMultipartUpload" ? conditionalWrite(input, plan) : plan;
}

/**
 * The migrator in migrate mode: reads see the target only; object writes go to the target
 * (s3migrate sends `If-None-Match: *` itself); deletes, bucket changes and anything else are
 * refused: a copier has no business removing data.
 */
function migratorInMigrate(input: RouteInput, rule: MigrateRule): Plan {
  if (!isWriteRequest(input.method, input.operation)) return target(input, "migrate");
  if (
    (input.operation === "PutObject" || input.operation === "CompleteMultipartUpload") &&
    input.bucket !== undefined
  ) {
    return { kind: "migrationWrite", backend: "target", mode: "migrate", bucket: input.bucket };
  }
  if (
    rule === "upload" ||
    input.operation === "PutObject" ||
    input.operation === "CreateMultipartUpload"
  ) {
    return target(input, "migrate");
  }
  // s3migrate's start-up probe (PUT one key twice, expect 412) removes its own object; no
  // client key lives under that prefix.
  if (input.operation === "DeleteObject" && input.key?.startsWith(MIGRATOR_PROBE_PREFIX) === true) {
    return target(input, "migrate");
  }
  return refuse(
    input,
    "migrate",
    "AccessDenied",
    "the migrator credential may only read the target and write objects to it",
  );
}

/** Where s3migrate's start-up probe writes (s3migrate/copier.ts, probeConditional). */
export const MIGRATOR_PROBE_PREFIX = ".s3migrate-probe/";

/** The routers of each attached mode. */
export const MODE_ROUTERS: Readonly<Record<MigrationMode, ModeRouter>> = {
  ready: (input) => target(input, "ready"),
  forward: forwardRouter,
  migrate: migrateRouter,
};

/**
 * Routes one request: not attached or `ready` → target; `forward` → the source bucket;
 * `migrate` → operation by operation ({@link MODE_ROUTERS}).
 */
export function route(input: RouteInput): Plan {
  if (input.state === undefined || input.bucket === undefined) {
    return target(input, "detached");
  }
  return MODE_ROUTERS[input.state.mode](input, input.state);
}
