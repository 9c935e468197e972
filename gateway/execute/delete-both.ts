/**
 * The `both` plan (DESIGN 3.3): DeleteObject and DeleteObjects applied to the target and the
 * source, answered as one bucket would answer: a key is reported deleted only when neither side
 * failed it, and a key that fails on either side is an error for that key, never "deleted".
 * The target goes first, then the source; a delete of a key a side does not hold succeeds
 * there, as on S3. Before either goes out, each key gets a durable tombstone
 * (execute/tombstones.ts), so no copy of the old object can land afterwards.
 */
import type { Dispatcher } from "undici";
import { readBodyLimited } from "../../s3/client.js";
import { S3Error } from "../../s3/errors.js";
import {
  buildDeleteResult,
  parseDeleteRequest,
  parseDeleteResult,
  type DeleteErrorEntry,
  type DeleteResult,
  type DeletedEntry,
} from "../../s3/xml-documents.js";
import type { BothPlan } from "../routing/plan.js";
import type { Backend } from "../upstream/backends.js";
import type { ExecContext, PreparedBody } from "./context.js";
import type { ErrorResult, ExecResult } from "./result.js";
import { tombstoneAndWait } from "./tombstones.js";
import { isKeyMiss, readUpstreamError, sendWithBody } from "./single.js";

/** The largest DeleteResult read from a backend (1,000 keys of 1,024 bytes, escaped). */
const MAX_DELETE_RESULT = 16 * 1024 * 1024;

/**
 * Carries out a `both` plan. The target, the system of record, goes first: when it fails (no
 * answer, a 5xx, a refusal) the source is not touched, so a sick target never leaves a delete
 * applied to the source alone — the client retries a delete that did nothing. A delete the
 * target did apply and the source failed is reported as failed (retrying it is harmless).
 */
export async function executeDeleteBoth(ctx: ExecContext, plan: BothPlan): Promise<ExecResult> {
  const body = await ctx.body.buffered(MAX_DELETE_RESULT);
  // Durable tombstones first, and no migration write in flight on these keys (DESIGN 3.4).
  // A delete of one version removes no key: it leaves none.
  const keys =
    ctx.operation === "DeleteObjects"
      ? parseDeleteRequest(body.body as Buffer)
          .objects.filter((o) => o.versionId === undefined)
          .map((o) => o.key)
      : ctx.key !== undefined && !ctx.query.some(([k]) => k === "versionId")
        ? [ctx.key]
        : [];
  await tombstoneAndWait(ctx, plan.bucket, keys);
  const target = ctx.backends.target;
  const source = ctx.backends.source(plan.source);
  let t: Dispatcher.ResponseData;
  try {
    t = await sendWithBody(ctx, {
      backend: target,
      bucket: plan.bucket,
      headers: ctx.headers,
      body,
    });
  } catch (err) {
    ctx.metrics.deleteBoth(ctx.operation, "error");
    throw err;
  }
  const tFailed =
    t.statusCode >= 300
      ? await readUpstreamError(t, target, ctx.operation !== "DeleteObjects")
      : undefined;
  if (tFailed !== undefined && (ctx.operation === "DeleteObjects" || !absent(tFailed.error))) {
    ctx.metrics.deleteBoth(ctx.operation, "error");
    return unavailableIf5xx(tFailed);
  }
  const started = process.hrtime.bigint();
  let s: Dispatcher.ResponseData;
  try {
    s = await sendWithBody(ctx, {
      backend: source,
      bucket: plan.source.sourceBucket,
      headers: ctx.headers,
      body,
    });
  } catch (err) {
    t.body.resume();
    ctx.metrics.deleteBoth(ctx.operation, "error");
    throw err;
  } finally {
    ctx.metrics.sourceCall(ctx.operation, Number(process.hrtime.bigint() - started) / 1e9);
  }
  const result =
    ctx.operation === "DeleteObjects"
      ? await mergeDeleteObjects(body, [t, target], [s, source])
      : await mergeDeleteObject(tFailed ?? [t, target], [s, source]);
  ctx.metrics.deleteBoth(ctx.operation, result.kind === "error" ? "error" : "ok");
  return result;
}

type Answer = [Dispatcher.ResponseData, Backend];

/** A side's error that is no error for a delete: the key (or version) is not there. */
function absent(error: S3Error): boolean {
  return isKeyMiss(error, "DELETE");
}

/** A backend's 5xx becomes ServiceUnavailable; any other error is relayed. */
function unavailableIf5xx(failing: ErrorResult): ErrorResult {
  if (failing.error.status < 500) return failing;
  return {
    kind: "error",
    error: new S3Error("ServiceUnavailable", {
      message: "The delete could not be applied to every copy of the bucket. Please retry.",
    }),
  };
}

/**
 * DeleteObject: the target's answer when both sides succeeded (or one side has no such key);
 * otherwise the failing side's error, a 5xx as ServiceUnavailable. `t` is the target's answer,
 * or its error already read (a miss: the key is not on the target).
 */
async function mergeDeleteObject(t: Answer | ErrorResult, s: Answer): Promise<ExecResult> {
  const tOk = Array.isArray(t) && t[0].statusCode < 300;
  const sOk = s[0].statusCode < 300;
  if (tOk && sOk) {
    s[0].body.resume();
    return { kind: "upstream", upstream: t[0], backend: t[1] };
  }
  const tErr = Array.isArray(t) ? undefined : t;
  const sErr = sOk ? undefined : await readUpstreamError(s[0], s[1], true);
  const failing = [tErr, sErr].find((e) => e !== undefined && !absent(e.error));
  if (failing !== undefined) {
    if (tOk) t[0].body.resume();
    return unavailableIf5xx(failing);
  }
  // Both sides said "not here" (a version id lives on one side only), or one did.
  if (tOk) return { kind: "upstream", upstream: t[0], backend: t[1] };
  if (sOk) return { kind: "upstream", upstream: s[0], backend: s[1] };
  return tErr ?? { kind: "error", error: new S3Error("NoSuchKey") };
}

/** DeleteObjects: per-key results merged from both DeleteResult documents. */
async function mergeDeleteObjects(body: PreparedBody, t: Answer, s: Answer): Promise<ExecResult> {
  const docs: DeleteResult[] = [];
  for (const [res, backend] of [t, s]) {
    if (res.statusCode >= 300) {
      const error = await readUpstreamError(res, backend, false);
      // Draining the other side's answer before answering.
      for (const [other] of [t, s]) if (other !== res) other.body.resume();
      if (error.error.status >= 500) {
        return { kind: "error", error: new S3Error("ServiceUnavailable") };
      }
      return error;
    }
    docs.push(parseDeleteResult(await readBodyLimited(res.body, MAX_DELETE_RESULT)));
  }
  const request = parseDeleteRequest(body.body as Buffer);
  const [td, sd] = docs as [DeleteResult, DeleteResult];
  const id = (key: string, versionId: string | undefined): string => `${key}\n${versionId ?? ""}`;
  const errorsOf = (d: DeleteResult): Map<string, DeleteErrorEntry> =>
    new Map(
      d.errors
        .filter((e) => e.code !== "NoSuchKey" && e.code !== "NoSuchVersion")
        .map((e) => [id(e.key, e.versionId), e]),
    );
  const tErrors = errorsOf(td);
  const sErrors = errorsOf(sd);
  const tDeleted = new Map(td.deleted.map((d) => [id(d.key, d.versionId), d]));
  const merged: { deleted: DeletedEntry[]; errors: DeleteErrorEntry[] } = {
    deleted: [],
    errors: [],
  };
  for (const o of request.objects) {
    const k = id(o.key, o.versionId);
    const err = tErrors.get(k) ?? sErrors.get(k);
    if (err !== undefined) {
      merged.errors.push(err);
      continue;
    }
    if (!request.quiet) {
      merged.deleted.push(
        tDeleted.get(k) ?? {
          key: o.key,
          ...(o.versionId === undefined ? {} : { versionId: o.versionId }),
        },
      );
    }
  }
  return {
    kind: "document",
    status: 200,
    headers: { "content-type": "application/xml" },
    body: Buffer.from(buildDeleteResult(merged), "utf8"),
  };
}
