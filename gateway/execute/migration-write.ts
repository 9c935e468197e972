/**
 * The `migrationWrite` plan (DESIGN 3.4): a PutObject or CompleteMultipartUpload by the
 * migrator credential in migrate mode. It goes to the target only, create-only
 * (`If-None-Match: *` is set whatever the copier sent, so a client's write is never
 * overwritten), and only under a claim on the key in the shared state store. Claim and
 * tombstone are atomic with respect to each other (gateway/state), and a client DELETE writes
 * its tombstone and then waits for the key's claims to end before its deletes go out, so:
 *   - a key a client deleted during migrate mode cannot be claimed: the write answers 412;
 *   - a write that claimed first lands before the client's deletes, which then remove it.
 * The claim is renewed while the body streams; a claim the store lost (the gateway could not
 * renew it in time) aborts the upload before its last byte, so nothing lands unclaimed.
 */
import { randomUUID } from "node:crypto";
import { S3Error } from "../../s3/errors.js";
import type { MigrationWritePlan } from "../routing/plan.js";
import type { ExecContext } from "./context.js";
import type { ExecResult } from "./result.js";
import { sendWithBody } from "./single.js";

/** How long a claim lives without renewal; renewed every third of it while the write runs. */
export const CLAIM_TTL_MS = 30_000;

/** Carries out a `migrationWrite` plan. */
export async function executeMigrationWrite(
  ctx: ExecContext,
  plan: MigrationWritePlan,
): Promise<ExecResult> {
  const key = ctx.key;
  if (key === undefined) throw new S3Error("InvalidRequest", { message: "No key." });
  const claimId = randomUUID();
  const claim = { claimId, ttlMs: CLAIM_TTL_MS };
  const outcome = await ctx.keys.claimMigrationWrite(plan.bucket, key, claim);
  if (outcome === "tombstoned") {
    ctx.metrics.migrationWrite("tombstoned");
    return {
      kind: "error",
      error: new S3Error("PreconditionFailed", {
        message: "A client deleted this key during the migration; it is not copied again.",
      }),
    };
  }
  const lost = new AbortController();
  const renew = setInterval(() => {
    ctx.keys.renewClaim(plan.bucket, key, claim).then(
      (alive) => {
        if (!alive) lost.abort(claimLost());
      },
      () => lost.abort(claimLost()),
    );
  }, CLAIM_TTL_MS / 3);
  renew.unref();
  const onLost = (): void => ctx.abort(lost.signal.reason);
  lost.signal.addEventListener("abort", onLost, { once: true });
  try {
    const headers: Record<string, string> = { ...ctx.headers, "if-none-match": "*" };
    delete headers["if-match"];
    const body = await ctx.body.stream();
    const upstream = await sendWithBody(ctx, {
      backend: ctx.backends.target,
      bucket: plan.bucket,
      headers,
      body,
    });
    ctx.metrics.migrationWrite(
      upstream.statusCode < 300 ? "written" : upstream.statusCode === 412 ? "exists" : "error",
    );
    return { kind: "upstream", upstream, backend: ctx.backends.target };
  } finally {
    clearInterval(renew);
    lost.signal.removeEventListener("abort", onLost);
    // The answer's body (a small document) is relayed after this; the write itself is done.
    await ctx.keys.releaseClaim(plan.bucket, key, claimId).catch((err: unknown) => {
      ctx.logger.warn({ err, requestId: ctx.requestId }, "could not release a migration claim");
    });
  }
}

function claimLost(): S3Error {
  return new S3Error("ServiceUnavailable", {
    message: "The migration write lost its claim on the key; retry.",
  });
}
