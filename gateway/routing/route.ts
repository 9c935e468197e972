/**
 * Where a request goes: a pure function of the bucket's migration state, the S3 operation, and
 * who is asking (STYLE rule 4). The S3 proxy calls it after authentication and authorization
 * and before it reads any request body, so the decision never depends on bytes it would have to
 * replay. Each mode is one case of {@link MODE_ROUTERS}; migrate mode (DESIGN 3.3) slots in by
 * replacing its entry.
 */
import type { CredentialRole } from "../config.js";
import type { BucketMigrationState } from "../state/store.js";
import type { MigrationMode } from "../state/transitions.js";

/** What the router needs to know about one request. */
export interface RouteInput {
  /** The bucket's migration state; undefined when the bucket is not attached (or no bucket). */
  readonly state: BucketMigrationState | undefined;
  /** The client-facing bucket name; undefined for service-level requests (ListBuckets). */
  readonly bucket: string | undefined;
  /** The S3 operation name from {@link classifyOperation}. */
  readonly operation: string;
  /** The role of the credential that signed the request. */
  readonly role: CredentialRole;
  /** The HTTP method, upper case. */
  readonly method: string;
}

/** The routing mode label, for logs and metrics. */
export type RouteMode = MigrationMode | "detached";

/** The decision. `bucket` is the bucket name to use on the chosen backend. */
export type Route =
  /** Forward to the target, re-signed with the target's service credential. */
  | { readonly backend: "target"; readonly mode: RouteMode; readonly bucket: string | undefined }
  /** Forward to the bucket's source, re-signed with its source credential, trusting its CA. */
  | {
      readonly backend: "source";
      readonly mode: RouteMode;
      readonly bucket: string;
      readonly source: BucketMigrationState;
    }
  /** Answer with an S3 error without contacting any backend. */
  | {
      readonly backend: "refuse";
      readonly mode: RouteMode;
      readonly bucket: string | undefined;
      readonly code: "AccessDenied" | "NotImplemented" | "ServiceUnavailable";
      readonly reason: string;
    };

/** The routing function of one mode. */
export type ModeRouter = (input: RouteInput, state: BucketMigrationState) => Route;

/**
 * Writes by the migrator identity in forward mode are refused: they would land on the source
 * (the bucket being copied from), get `412` from `If-None-Match: *`, and be logged as already
 * copied — a silent hole in the migration once migrate mode begins.
 */
const forwardRouter: ModeRouter = (input, state) => {
  if (input.role === "migrator" && isWrite(input.method)) {
    return {
      backend: "refuse",
      mode: "forward",
      bucket: input.bucket,
      code: "AccessDenied",
      reason: "the migrator credential may only write in migrate mode",
    };
  }
  return { backend: "source", mode: "forward", bucket: state.sourceBucket, source: state };
};

/** The routers of each attached mode. */
export const MODE_ROUTERS: Readonly<Record<MigrationMode, ModeRouter>> = {
  ready: (input) => ({ backend: "target", mode: "ready", bucket: input.bucket }),
  forward: forwardRouter,
  // The hook for the next round: migrate mode routes operation by operation (DESIGN 3.3).
  migrate: (input) => ({
    backend: "refuse",
    mode: "migrate",
    bucket: input.bucket,
    code: "ServiceUnavailable",
    reason: "migrate mode is not implemented by this gateway version",
  }),
};

/**
 * Routes one request: not attached or `ready` → target; `forward` → the source bucket;
 * `migrate` → {@link MODE_ROUTERS}.migrate.
 */
export function route(input: RouteInput): Route {
  if (input.state === undefined || input.bucket === undefined) {
    return { backend: "target", mode: "detached", bucket: input.bucket };
  }
  return MODE_ROUTERS[input.state.mode](input, input.state);
}

/** Whether an HTTP method changes data (everything but GET, HEAD and OPTIONS). */
export function isWrite(method: string): boolean {
  return method !== "GET" && method !== "HEAD" && method !== "OPTIONS";
}
