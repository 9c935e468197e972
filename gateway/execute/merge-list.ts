/**
 * The `mergeList` plan: one merged view of a migrate-mode bucket's listings (DESIGN 3.3).
 * Until the merged listing lands (migrate mode part 2), listings of a migrate-mode bucket
 * answer NotImplemented rather than show one side as if it were the whole bucket: a sync
 * client would take the missing keys for deletes.
 */
import { S3Error } from "../../s3/errors.js";
import type { MergeListPlan } from "../routing/plan.js";
import type { ExecContext } from "./context.js";
import type { ExecResult } from "./result.js";

/** Carries out a `mergeList` plan. */
export function executeMergeList(ctx: ExecContext, _plan: MergeListPlan): Promise<ExecResult> {
  return Promise.resolve({
    kind: "error",
    error: new S3Error("NotImplemented", {
      message: `${ctx.operation} of a bucket in migrate mode is not implemented by this gateway version.`,
    }),
  });
}
