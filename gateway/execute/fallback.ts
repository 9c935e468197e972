/**
 * The `fallback` plan (DESIGN 3.3): the target first and, only on a 404 for the key, the same
 * request to the source — with the same Range, `partNumber`, conditional headers and
 * `response-*` overrides, so the source evaluates them as it would have before the migration.
 *
 * A 403, a 5xx or a timeout from the target is an error, never a fallback (it would serve
 * stale source data while the target, the system of record, is sick). A failing source is a
 * 503, never a 404: a sync client takes a 404 for a delete (PITFALLS.md, "Migrate mode").
 * Writes to an object's subresources (tags, ACL) take the same path, so they go where the
 * object is; their small bodies are read whole first so they can be sent twice.
 */
import { S3Error } from "../../s3/errors.js";
import type { FallbackPlan } from "../routing/plan.js";
import type { ExecContext } from "./context.js";
import { prepareCopyOnRead } from "./copy-on-read.js";
import { SERVED_FROM_HEADER, type ExecResult } from "./result.js";
import { isKeyMiss, readUpstreamError, sendWithBody } from "./single.js";

/** The largest subresource body (tags, ACL, retention…) read whole to be sent twice. */
export const MAX_REPLAYED_BODY = 1024 * 1024;

/** Carries out a `fallback` plan. */
export async function executeFallback(ctx: ExecContext, plan: FallbackPlan): Promise<ExecResult> {
  const body = await ctx.body.buffered(MAX_REPLAYED_BODY);
  const target = ctx.backends.target;
  const first = await sendWithBody(ctx, {
    backend: target,
    bucket: plan.bucket,
    headers: ctx.headers,
    body,
  });
  if (first.statusCode < 300 || first.statusCode === 304) {
    ctx.metrics.fallback(ctx.operation, "target");
    return { kind: "upstream", upstream: first, backend: target };
  }
  const miss = await readUpstreamError(first, target, ctx.key !== undefined);
  if (!isKeyMiss(miss.error, ctx.method)) return miss;
  // A key a client deleted during migrate mode is gone, whatever the source still holds.
  if (ctx.key !== undefined && (await ctx.keys.hasTombstone(plan.bucket, ctx.key))) {
    ctx.metrics.fallback(ctx.operation, "not_found");
    return miss;
  }

  const source = ctx.backends.source(plan.source);
  const copyOnRead = prepareCopyOnRead(ctx, plan);
  const started = process.hrtime.bigint();
  let second;
  try {
    second = await sendWithBody(copyOnRead?.ctx ?? ctx, {
      backend: source,
      bucket: plan.source.sourceBucket,
      headers: ctx.headers,
      body,
    });
  } catch (err) {
    ctx.metrics.fallback(ctx.operation, "source_error");
    throw err;
  } finally {
    ctx.metrics.sourceCall(ctx.operation, Number(process.hrtime.bigint() - started) / 1e9);
  }
  const servedBy = { [SERVED_FROM_HEADER]: "source" };
  if (second.statusCode < 300 || second.statusCode === 304) {
    ctx.metrics.fallback(ctx.operation, "source");
    const served = {
      kind: "upstream",
      upstream: second,
      backend: source,
      headers: servedBy,
    } as const;
    // Copy-on-read (copy-on-read.ts) may also write the object to the target.
    return copyOnRead ? await copyOnRead.start(served) : served;
  }
  const error = await readUpstreamError(second, source, ctx.key !== undefined);
  if (isKeyMiss(error.error, ctx.method)) {
    ctx.metrics.fallback(ctx.operation, "not_found");
    return error;
  }
  // The source's credential or health is the gateway's business, not the client's: a 401/403
  // or a 5xx from the source is ServiceUnavailable. Answers about the request itself (412,
  // 416, 400…, and 501 NotImplemented: a source without object ACLs, say) are relayed.
  const aboutTheRequest = error.error.code === "NotImplemented";
  if (
    !aboutTheRequest &&
    (error.error.status >= 500 || error.error.status === 401 || error.error.status === 403)
  ) {
    ctx.metrics.fallback(ctx.operation, "source_error");
    ctx.logger.warn(
      { requestId: ctx.requestId, code: error.error.code, status: error.error.status },
      "source failed a fallback read",
    );
    return {
      kind: "error",
      error: new S3Error("ServiceUnavailable", {
        message: "The source S3 service is unavailable. Please retry.",
      }),
    };
  }
  ctx.metrics.fallback(ctx.operation, "source");
  return { ...error, headers: { ...error.headers, ...servedBy } };
}
