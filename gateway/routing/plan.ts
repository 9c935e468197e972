/**
 * Plans: what routing decides for one request (STYLE rule 4). A plan names the backends a
 * request touches and in what order; each kind has one executor in `gateway/execute/` that
 * carries it out and returns a result for the one responder. Routing itself stays a pure
 * function (route.ts) of the bucket's state, the operation, the facts gathered before it, and
 * the caller's role.
 */
import type { S3ErrorCode } from "../../s3/errors.js";
import type { BucketMigrationState } from "../state/store.js";
import type { MigrationMode } from "../state/transitions.js";

/** The routing mode label, for logs and metrics. */
export type RouteMode = MigrationMode | "detached";

/** What every plan carries. */
interface PlanBase {
  readonly mode: RouteMode;
}

/** Both sides of a migrate-mode bucket: the client's bucket on the target, and its source. */
interface BothSides extends PlanBase {
  /** Logs and metrics label: the plan may touch both backends. */
  readonly backend: "target+source";
  /** The client's bucket, which is also the target bucket. */
  readonly bucket: string;
  /** The source's state: endpoint, credential, CA and bucket name (`sourceBucket`). */
  readonly source: BucketMigrationState;
}

/** One request to the target, as it came (re-signed). */
export interface SingleTargetPlan extends PlanBase {
  readonly kind: "single";
  readonly backend: "target";
  /** The bucket on the target; undefined for service-level requests. */
  readonly bucket: string | undefined;
  /** Request headers not to send (a condition the gateway has already evaluated). */
  readonly dropHeaders?: readonly string[];
}

/** One request to the bucket's source, as it came (re-signed with the source credential). */
export interface SingleSourcePlan extends PlanBase {
  readonly kind: "single";
  readonly backend: "source";
  /** The bucket on the source. */
  readonly bucket: string;
  readonly source: BucketMigrationState;
  /** Request headers not to send (a condition the gateway has already evaluated). */
  readonly dropHeaders?: readonly string[];
}

/** An S3 error answered without contacting any backend. */
export interface RefusePlan extends PlanBase {
  readonly kind: "refuse";
  readonly backend: "refuse";
  readonly bucket: string | undefined;
  readonly code: S3ErrorCode;
  readonly reason: string;
}

/**
 * The target first; on a 404 for the key (NoSuchKey, NoSuchVersion, or a body-less 404 to a
 * HEAD) the same request to the source. Reads of an object and writes to an object's
 * subresources (which go where the object is).
 */
export interface FallbackPlan extends BothSides {
  readonly kind: "fallback";
}

/** A delete applied to both sides, answered as one bucket would answer it. */
export interface BothPlan extends BothSides {
  readonly kind: "both";
}

/** A listing merged from both sides. */
export interface MergeListPlan extends BothSides {
  readonly kind: "mergeList";
}

/**
 * CopyObject or UploadPartCopy: the destination is `destination` (the target, or the source
 * for a part of an upload that lives there); the copy source is read where it is, which may
 * need a copy across clusters that the gateway streams itself.
 */
export interface CopyPlan extends BothSides {
  readonly kind: "copy";
  readonly destination: "target" | "source";
  /** Request headers not to send (a condition the gateway has already evaluated). */
  readonly dropHeaders?: readonly string[];
}

/**
 * A write by the migrator credential in migrate mode (DESIGN 3.4): PutObject or
 * CompleteMultipartUpload to the target only, create-only, and never for a key a client deleted
 * during migrate mode (its tombstone refuses the claim the write must take first).
 */
export interface MigrationWritePlan extends PlanBase {
  readonly kind: "migrationWrite";
  readonly backend: "target";
  /** The client's bucket, which is also the target bucket. */
  readonly bucket: string;
}

/** What routing decided for one request. */
export type Plan =
  | MigrationWritePlan
  | SingleTargetPlan
  | SingleSourcePlan
  | RefusePlan
  | FallbackPlan
  | BothPlan
  | MergeListPlan
  | CopyPlan;

/** The kinds of plan, one executor each. */
export type PlanKind = Plan["kind"];
