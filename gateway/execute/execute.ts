/**
 * One executor per plan kind (routing/plan.ts); `Record<PlanKind, …>` makes the compiler check
 * that a new kind of plan gets its executor.
 */
import { S3Error } from "../../s3/errors.js";
import { isWriteRequest } from "../front/operation-traits.js";
import type { Plan, PlanKind } from "../routing/plan.js";
import type { ExecContext } from "./context.js";
import { executeCopy } from "./copy.js";
import { executeDeleteBoth } from "./delete-both.js";
import { executeFallback } from "./fallback.js";
import { executeMergeList } from "./merge-list.js";
import { executeMigrationWrite } from "./migration-write.js";
import type { ExecResult } from "./result.js";
import { executeSingle } from "./single.js";

type Executors = {
  readonly [K in PlanKind]: (
    ctx: ExecContext,
    plan: Extract<Plan, { kind: K }>,
  ) => Promise<ExecResult>;
};

const EXECUTORS: Executors = {
  single: executeSingle,
  refuse: (_ctx, plan) =>
    Promise.resolve({
      kind: "error",
      error: new S3Error(plan.code, { message: refusalMessage(plan.code, plan.reason) }),
    }),
  fallback: executeFallback,
  both: executeDeleteBoth,
  mergeList: executeMergeList,
  copy: executeCopy,
  migrationWrite: executeMigrationWrite,
};

/** Carries out `plan` with its executor. */
export async function execute(ctx: ExecContext, plan: Plan): Promise<ExecResult> {
  const run = EXECUTORS[plan.kind] as (ctx: ExecContext, plan: Plan) => Promise<ExecResult>;
  try {
    return await run(ctx, plan);
  } finally {
    // A write changes what the bucket lists: listings continued after it must not be answered
    // from backend pages fetched before it (listing/page-cache.ts). Also after a failure: the
    // write may have happened. Migration writes copy what is listed already, and would void
    // the cache all through a migration.
    if (
      ctx.bucket !== undefined &&
      plan.kind !== "migrationWrite" &&
      plan.kind !== "refuse" &&
      isWriteRequest(ctx.method, ctx.operation)
    ) {
      ctx.listingPages.invalidate(ctx.bucket);
    }
  }
}

function refusalMessage(code: string, reason: string): string {
  // A precondition the gateway evaluated reads as S3's own message.
  if (code === "PreconditionFailed")
    return "At least one of the pre-conditions you specified did not hold";
  return `Refused: ${reason}.`;
}
