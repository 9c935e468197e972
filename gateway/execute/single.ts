/**
 * The `single` plan: the client's request to one backend, re-signed, its body streamed, the
 * answer relayed. Ready and forward mode are this plan for every request, and migrate mode for
 * most writes.
 */
import { readBodyLimited } from "../../s3/client.js";
import { escapeXml, S3Error } from "../../s3/errors.js";
import { uriEncode } from "../../s3/uri-encode.js";
import { buildListAllMyBucketsResult, parseListAllMyBucketsResult } from "../../s3/xml.js";
import { principalAllowsBucket } from "../front/auth.js";
import { route } from "../routing/route.js";
import type { SingleSourcePlan, SingleTargetPlan } from "../routing/plan.js";
import { sendUpstream, type Backend } from "../upstream/backends.js";
import { relayedResponseHeaders } from "../upstream/headers.js";
import type { Dispatcher } from "undici";
import { backendError } from "../front/respond.js";
import type { ExecContext, PreparedBody } from "./context.js";
import type { ErrorResult, ExecResult } from "./result.js";

/** The largest ListBuckets document the gateway filters (a bound on what it buffers). */
const MAX_LIST_BUCKETS_BODY = 16 * 1024 * 1024;

/** Carries out a `single` plan. */
export async function executeSingle(
  ctx: ExecContext,
  plan: SingleTargetPlan | SingleSourcePlan,
): Promise<ExecResult> {
  const backend =
    plan.backend === "target" ? ctx.backends.target : ctx.backends.source(plan.source);
  const headers: Record<string, string> = { ...ctx.headers };
  for (const name of plan.dropHeaders ?? []) delete headers[name];
  if (ctx.copySource !== undefined) {
    headers["x-amz-copy-source"] = rewriteCopySource(ctx, plan, backend);
  }
  const body = await ctx.body.stream();
  const upstream = await sendWithBody(ctx, { backend, bucket: plan.bucket, headers, body });
  if (
    ctx.operation === "ListBuckets" &&
    upstream.statusCode === 200 &&
    ctx.principal.bucketPatterns !== undefined
  ) {
    // A bucket-limited credential does not learn other buckets' names.
    const raw = await readBodyLimited(upstream.body, MAX_LIST_BUCKETS_BODY);
    const doc = parseListAllMyBucketsResult(raw);
    const filtered = {
      ...doc,
      buckets: doc.buckets.filter((b) => principalAllowsBucket(ctx.principal, b.name)),
    };
    return {
      kind: "document",
      status: 200,
      headers: { "content-type": "application/xml" },
      body: Buffer.from(buildListAllMyBucketsResult(filtered), "utf8"),
    };
  }
  if (ctx.operation === "CompleteMultipartUpload" && upstream.statusCode === 200) {
    return await withClientLocation(ctx, upstream);
  }
  return { kind: "upstream", upstream, backend };
}

/** The largest CompleteMultipartUpload answer rewritten (it names one object). */
const MAX_COMPLETE_RESULT = 1024 * 1024;

/**
 * A CompleteMultipartUploadResult names the object's URL in `<Location>`: the backend's own
 * address, which clients must not be sent to (and which says where the gateway's backend is).
 * It becomes the URL the client used. Other answers pass through as they are.
 */
async function withClientLocation(
  ctx: ExecContext,
  upstream: Dispatcher.ResponseData,
): Promise<ExecResult> {
  const body = (await readBodyLimited(upstream.body, MAX_COMPLETE_RESULT)).toString("utf8");
  const location = ctx.objectUrl;
  const rewritten =
    location === undefined
      ? body
      : body.replace(/<Location>[^<]*<\/Location>/, `<Location>${escapeXml(location)}</Location>`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(relayedResponseHeaders(upstream.headers))) {
    if (name !== "content-length") headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return {
    kind: "document",
    status: 200,
    headers,
    body: Buffer.from(rewritten, "utf8"),
  };
}

/** Where and how {@link sendWithBody} sends the client's request. */
export interface SendInput {
  readonly backend: Backend;
  /** The bucket on that backend. */
  readonly bucket: string | undefined;
  /** The headers to send (the client's, as adjusted by the plan). */
  readonly headers: Readonly<Record<string, string>>;
  /** The client's body as prepared for upstream (a buffer may be sent more than once). */
  readonly body: PreparedBody;
}

/**
 * Sends the client's request (method, key, query) to one backend with the given bucket,
 * headers and body; a failing send or an error answer releases the client's unread body.
 */
export async function sendWithBody(
  ctx: ExecContext,
  input: SendInput,
): Promise<Dispatcher.ResponseData> {
  const { backend, body } = input;
  ctx.touch(backend.name);
  const upstream = await sendUpstream(backend, {
    method: ctx.method,
    bucket: input.bucket,
    key: ctx.key,
    query: ctx.query,
    headers: { ...input.headers, ...body.headers },
    body: body.body,
    contentLength: body.contentLength,
    payloadHash: body.payloadHash,
    signal: ctx.signal,
  }).catch((err: unknown) => {
    body.discard();
    throw err;
  });
  ctx.addBytesIn(body.decodedLength);
  if (upstream.statusCode >= 300 && upstream.statusCode !== 304) body.discard();
  return upstream;
}

/**
 * An error answer read into our own error (bounded read, vetted fields, the backend's secrets
 * scrubbed), for plans that decide on the code before answering.
 */
export async function readUpstreamError(
  upstream: Dispatcher.ResponseData,
  backend: Backend,
  hasKey: boolean,
): Promise<ErrorResult> {
  const { error, headers } = await backendError(upstream, { secrets: backend.secrets, hasKey });
  return { kind: "error", error, headers };
}

/** Whether an error is a miss for the key: the only answer a fallback may act on. */
export function isKeyMiss(error: S3Error, method: string): boolean {
  if (error.status !== 404) return false;
  // A 404 to a HEAD has no body to say which: for an object request it is the key.
  return (
    method === "HEAD" ||
    error.code === "NoSuchKey" ||
    error.code === "NoSuchVersion" ||
    error.code === "NotFound"
  );
}

/**
 * The `x-amz-copy-source` to send upstream for a copy one backend performs. Both buckets on the
 * target: unchanged. Both on the same source (same endpoint, pool and credential): the copy
 * source bucket becomes its source bucket name. A copy across backends cannot be done by one
 * backend: NotImplemented outside migrate mode (which plans such copies as `copy`).
 */
function rewriteCopySource(
  ctx: ExecContext,
  destination: SingleTargetPlan | SingleSourcePlan,
  destinationBackend: Backend,
): string {
  const copySource = ctx.copySource;
  if (copySource === undefined) throw new Error("no copy source");
  const from = route({
    state: ctx.snapshot.buckets.get(copySource.bucket),
    bucket: copySource.bucket,
    operation: "GetObject",
    role: ctx.principal.credential.role,
    method: "GET",
  });
  if (from.kind === "refuse") throw new S3Error(from.code, { message: `Refused: ${from.reason}.` });
  // A copy source bucket in migrate mode counts as on the target, its system of record (a
  // copy into a bucket that is itself in migrate mode is a `copy` plan, which also looks at
  // the source).
  const fromTarget = from.kind !== "single" || from.backend === "target";
  if (fromTarget && destination.backend === "target") return copySource.header;
  if (from.kind === "single" && from.backend === "source" && destination.backend === "source") {
    const a = ctx.backends.source(from.source);
    if (
      a.origin === destinationBackend.origin &&
      a.pool === destinationBackend.pool &&
      a.credentials.accessKeyId === destinationBackend.credentials.accessKeyId
    ) {
      return `/${uriEncode(from.bucket)}/${copySource.rawRest}`;
    }
  }
  throw new S3Error("NotImplemented", {
    message:
      "Copying between a bucket in forward mode and a bucket on another backend is not supported by this gateway; copy through the client (GET then PUT).",
  });
}
