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
import type { Logger } from "pino";
import type { MigrationWritePlan } from "../routing/plan.js";
import type { KeyRecordStore } from "../state/store.js";
import type { ExecContext } from "./context.js";
import type { ExecResult } from "./result.js";
import { sendWithBody } from "./single.js";

/** How long a claim lives without renewal; renewed every third of it while the write runs. */
export const CLAIM_TTL_MS = 30_000;

/** A claim on one key, held for a migration write and renewed until released. */
export interface HeldClaim {
  /** Aborted (with a ServiceUnavailable S3Error) when the store lost the claim: stop the write before its last byte. */
  readonly lost: AbortSignal;
  /** Stops renewing and drops the claim (a failure is logged, never thrown). */
  release(): Promise<void>;
}

/**
 * Claims `key` for a migration write (or copy-on-read's write-back) unless a client deleted it
 * during migrate mode, and keeps the claim alive every third of {@link CLAIM_TTL_MS} until
 * released. The caller must stop its upload when `lost` aborts, so nothing lands unclaimed.
 */
export async function holdMigrationClaim(
  keys: KeyRecordStore,
  target: { readonly bucket: string; readonly key: string },
  log: { readonly logger: Logger; readonly requestId: string },
): Promise<HeldClaim | "tombstoned"> {
  const { bucket, key } = target;
  const claimId = randomUUID();
  const claim = { claimId, ttlMs: CLAIM_TTL_MS };
  if ((await keys.claimMigrationWrite(bucket, key, claim)) === "tombstoned") return "tombstoned";
  const lost = new AbortController();
  const renew = setInterval(() => {
    keys.renewClaim(bucket, key, claim).then(
      (alive) => {
        if (!alive) lost.abort(claimLost());
      },
      () => lost.abort(claimLost()),
    );
  }, CLAIM_TTL_MS / 3);
  renew.unref();
  return {
    lost: lost.signal,
    async release() {
      clearInterval(renew);
      await keys.releaseClaim(bucket, key, claimId).catch((err: unknown) => {
        log.logger.warn({ err, requestId: log.requestId }, "could not release a migration claim");
      });
    },
  };
}

/** Carries out a `migrationWrite` plan. */
export async function executeMigrationWrite(
  ctx: ExecContext,
  plan: MigrationWritePlan,
): Promise<ExecResult> {
  const key = ctx.key;
  if (key === undefined) throw new S3Error("InvalidRequest", { message: "No key." });
  const held = await holdMigrationClaim(ctx.keys, { bucket: plan.bucket, key }, ctx);
  if (held === "tombstoned") {
    ctx.metrics.migrationWrite("tombstoned");
    return {
      kind: "error",
      error: new S3Error("PreconditionFailed", {
        message: "A client deleted this key during the migration; it is not copied again.",
      }),
    };
  }
  const onLost = (): void => ctx.abort(held.lost.reason);
  held.lost.addEventListener("abort", onLost, { once: true });
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
    held.lost.removeEventListener("abort", onLost);
    // The answer's body (a small document) is relayed after this; the write itself is done.
    await held.release();
  }
}

function claimLost(): S3Error {
  return new S3Error("ServiceUnavailable", {
    message: "The migration write lost its claim on the key; retry.",
  });
}
