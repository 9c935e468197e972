/**
 * The facts step (routing/facts.ts): the asynchronous look-ups routing needs before it can
 * decide, made without reading the request body. Only migrate mode needs any.
 *
 * Where a multipart upload lives is learnt without shared state: an upload id this process has
 * not seen is looked up with a body-less `ListParts` (`max-parts=1`) on the target; found → the
 * target, `NoSuchUpload` → the source (where uploads begun before migrate mode live). The
 * answer is cached per process (an upload never moves), so only the first request of an upload
 * pays the probe, and it holds after a restart, with several gateways and after detach.
 */
import { S3ClientError } from "../../s3/client-errors.js";
import { headObject } from "../../s3/client-operations.js";
import type { S3Principal } from "../front/auth.js";
import type { RouteFacts, ObjectWhereabouts } from "../routing/facts.js";
import { CONDITIONAL_WRITES } from "../routing/route.js";
import type { BucketMigrationState } from "../state/store.js";
import { backendTransport } from "../upstream/backend-transport.js";
import type { ExecContext } from "./context.js";

/** The most upload homes remembered per process (least recently used forgotten first). */
const MAX_UPLOAD_HOMES = 100_000;

/** A bounded per-process memory of where multipart uploads live. */
export class UploadHomes {
  readonly #homes = new Map<string, "target" | "source">();

  /** The remembered home of an upload, or undefined. */
  get(bucket: string, uploadId: string): "target" | "source" | undefined {
    const k = `${bucket}\n${uploadId}`;
    const home = this.#homes.get(k);
    if (home !== undefined) {
      // Refresh its place: recently used uploads stay.
      this.#homes.delete(k);
      this.#homes.set(k, home);
    }
    return home;
  }

  /** Remembers the home of an upload. */
  set(bucket: string, uploadId: string, home: "target" | "source"): void {
    const k = `${bucket}\n${uploadId}`;
    this.#homes.delete(k);
    this.#homes.set(k, home);
    if (this.#homes.size > MAX_UPLOAD_HOMES) {
      const oldest = this.#homes.keys().next().value;
      if (oldest !== undefined) this.#homes.delete(oldest);
    }
  }
}

/** Gathers what routing needs for one request to an attached bucket. */
export async function gatherFacts(
  ctx: ExecContext,
  state: BucketMigrationState,
  principal: S3Principal,
  uploadHomes: UploadHomes,
): Promise<RouteFacts> {
  if (state.mode !== "migrate" || principal.credential.role === "migrator") return {};
  let uploadHome: "target" | "source" | undefined;
  const uploadId = queryValue(ctx, "uploadId");
  if (ctx.traits.migrate === "upload" && uploadId !== undefined && ctx.key !== undefined) {
    uploadHome = await whereIsUpload(ctx, state, uploadId, uploadHomes);
  }
  let object: ObjectWhereabouts | undefined;
  if (
    CONDITIONAL_WRITES.has(ctx.operation) &&
    uploadHome !== "source" &&
    ctx.key !== undefined &&
    (ctx.headers["if-match"] !== undefined || ctx.headers["if-none-match"] !== undefined)
  ) {
    object = await whereIsObject(ctx, state, ctx.key);
  }
  return {
    ...(uploadHome === undefined ? {} : { uploadHome }),
    ...(object === undefined ? {} : { object }),
  };
}

function queryValue(ctx: ExecContext, name: string): string | undefined {
  for (const [k, v] of ctx.query) if (k === name) return v;
  return undefined;
}

async function whereIsUpload(
  ctx: ExecContext,
  state: BucketMigrationState,
  uploadId: string,
  homes: UploadHomes,
): Promise<"target" | "source"> {
  const known = homes.get(state.bucket, uploadId);
  if (known !== undefined) return known;
  ctx.touch("target");
  const target = backendTransport(ctx.backends.target, ctx.signal);
  let home: "target" | "source";
  try {
    const res = await target.request({
      method: "GET",
      bucket: state.bucket,
      key: ctx.key,
      query: { uploadId, "max-parts": "1" },
    });
    res.body.resume();
    home = "target";
  } catch (err) {
    if (!(err instanceof S3ClientError) || err.code !== "NoSuchUpload") throw err;
    home = "source";
  }
  homes.set(state.bucket, uploadId, home);
  return home;
}

/** Whether a 404 error means "no such key" (the only miss that may fall back to the source). */
export function isKeyNotFound(err: unknown): boolean {
  return (
    err instanceof S3ClientError &&
    err.status === 404 &&
    (err.code === "NoSuchKey" || err.code === "NoSuchVersion" || err.code === "NotFound")
  );
}

async function whereIsObject(
  ctx: ExecContext,
  state: BucketMigrationState,
  key: string,
): Promise<ObjectWhereabouts> {
  ctx.touch("target");
  try {
    await headObject(backendTransport(ctx.backends.target, ctx.signal), {
      bucket: state.bucket,
      key,
    });
    return { onTarget: true, sourceEtag: undefined };
  } catch (err) {
    if (!isKeyNotFound(err)) throw err;
  }
  ctx.touch("source");
  const started = process.hrtime.bigint();
  try {
    const info = await headObject(backendTransport(ctx.backends.source(state), ctx.signal), {
      bucket: state.sourceBucket,
      key,
    });
    return { onTarget: false, sourceEtag: info.etag };
  } catch (err) {
    if (!isKeyNotFound(err)) throw sourceUnavailable(err);
    return { onTarget: false, sourceEtag: undefined };
  } finally {
    ctx.metrics.sourceCall(ctx.operation, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/**
 * A failing source is a 503, never a 404 or the source's own error code: a sync client takes a
 * 404 for a delete (PITFALLS.md, "Migrate mode").
 */
export function sourceUnavailable(err: unknown): Error {
  if (err instanceof S3ClientError && err.status < 500 && err.kind === "response") {
    return err;
  }
  return new S3ServiceUnavailable(err);
}

/** The source failed or did not answer: ServiceUnavailable for the client. */
export class S3ServiceUnavailable extends S3ClientError {
  constructor(cause: unknown) {
    super("ServiceUnavailable", {
      status: 503,
      message: "The source S3 service is unavailable. Please retry.",
      cause,
    });
  }
}
