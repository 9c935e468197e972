/**
 * Copy-on-read (issue 13; docs/gateway.md, "Copy-on-read"): when a bucket in migrate mode has it
 * on, a fallback GET of a whole object that the source answers 200 is streamed to the client
 * and, from the same source bytes, written to the target — so the next read is the target's.
 *
 * The write-back is a migration write (migration-write.ts) in all but its origin: create-only
 * (`If-None-Match: *`, a client's write always wins), under a claim on the key that a client
 * DELETE's tombstone refuses (deleted keys never come back), renewed while the body streams.
 * It commits only the source's exact bytes: the target gets the source's Content-Length and a
 * Content-MD5 derived from its single-part ETag, so a body that was cut short or altered on the
 * way is refused by the target, not stored. Objects whose ETag is not an MD5 (multipart
 * `…-N`, SSE-KMS, SSE-C) are left to the copier, which preserves part layout.
 *
 * Once per key per gateway: a key being written back (or written back in the last minute) is
 * not written again by this gateway; across gateways the claim and `If-None-Match: *` make a
 * second writer harmless (412, counted as `exists`).
 *
 * The source body feeds both sides with backpressure: the slower side governs, and memory per
 * write-back is two stream buffers ({@link BRANCH_BUFFER} each) whatever the object size. A
 * client that goes away is dropped and the source keeps feeding the target, so the write-back
 * completes; a target that fails is dropped and the client's read goes on. A failed write-back
 * is logged and counted, never the client's error.
 */
import { PassThrough, type Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { EMPTY_SHA256 } from "../../s3/sigv4-canonical.js";
import type { FallbackPlan } from "../routing/plan.js";
import { DEFAULT_COPY_ON_READ_MAX_SIZE, type KeyRecordStore } from "../state/store.js";
import { sendUpstream, type Backend } from "../upstream/backends.js";
import type { ExecContext } from "./context.js";
import type { CopyOnReadFailure, CopyOnReadSkip } from "./metrics.js";
import { holdMigrationClaim, type HeldClaim } from "./migration-write.js";
import type { ExecResult, UpstreamResult } from "./result.js";
import { readUpstreamError } from "./single.js";

/** The most write-backs one gateway runs at once; beyond, reads are served without one. */
export const MAX_WRITE_BACKS = 16;

/** How long a key this gateway wrote back (or found on the target) is not tried again. */
export const RECENT_MS = 60_000;

/** Buffer of each side of the tee (client, target) before backpressure. */
export const BRANCH_BUFFER = 1024 * 1024;

/**
 * How far the client may fall behind the write-back before the write-back reads the rest of
 * the object from the source on its own: with {@link BRANCH_BUFFER}, the bound on memory per
 * write-back.
 */
export const CLIENT_LAG_CAP = 8 * 1024 * 1024;

/** SHA-256 of an empty payload (a GET's `x-amz-content-sha256`). */

/** The most keys remembered as recently written back (the oldest are forgotten first). */
const MAX_REMEMBERED = 10_000;

/**
 * Request headers that make a GET something other than "the current object, whole": a part of
 * it (Range), a conditional answer that may be 304/412, or an SSE-C object (its ETag is no MD5).
 */
const DISQUALIFYING_HEADERS = [
  "range",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "x-amz-server-side-encryption-customer-algorithm",
  "x-amz-server-side-encryption-customer-key",
];

/** Object headers of the source's answer that the target's copy carries (with `x-amz-meta-*`). */
const CARRIED_HEADERS = [
  "content-type",
  "cache-control",
  "content-disposition",
  "content-language",
  "expires",
  "x-amz-website-redirect-location",
];

/** Keys being written back, and keys written back lately, by this gateway. */
interface Flights {
  readonly inFlight: Set<string>;
  /** Key → time (ms) until which it is not tried again; insertion-ordered, oldest first. */
  readonly recent: Map<string, number>;
}

// One table per gateway: its key-record store is one object per gateway (tests run several
// gateways in one process, and each must dedupe on its own).
const flightsByStore = new WeakMap<KeyRecordStore, Flights>();

function flightsOf(keys: KeyRecordStore): Flights {
  let flights = flightsByStore.get(keys);
  if (flights === undefined) {
    flights = { inFlight: new Set(), recent: new Map() };
    flightsByStore.set(keys, flights);
  }
  return flights;
}

/** A fallback read copy-on-read may write back, prepared before the source is asked. */
export interface CopyOnRead {
  /**
   * The context to ask the source with: the same request, with a signal of its own that
   * follows the client's until a write-back starts, then outlives it.
   */
  readonly ctx: ExecContext;
  /** Turns the source's answer into the client's, starting the write-back when it qualifies. */
  start(result: UpstreamResult): Promise<ExecResult>;
}

/**
 * Whether this fallback read may be written back (copy-on-read on for the bucket, a plain
 * GetObject of the current object, whole); undefined when not.
 */
export function prepareCopyOnRead(ctx: ExecContext, plan: FallbackPlan): CopyOnRead | undefined {
  const key = ctx.key;
  if (plan.source.copyOnRead !== true || key === undefined) return undefined;
  if (ctx.operation !== "GetObject" || ctx.method !== "GET") return undefined;
  if (DISQUALIFYING_HEADERS.some((h) => ctx.headers[h] !== undefined)) return undefined;
  // A version, a part or response-* overrides answer something else than the object as stored.
  if (
    ctx.query.some(([k]) => k === "versionId" || k === "partNumber" || k.startsWith("response-"))
  ) {
    return undefined;
  }
  const own = new AbortController();
  const follow = (): void => own.abort(ctx.signal.reason);
  if (ctx.signal.aborted) follow();
  else ctx.signal.addEventListener("abort", follow, { once: true });
  const sourceCtx: ExecContext = { ...ctx, signal: own.signal };
  const maxSize = plan.source.copyOnReadMaxSize ?? DEFAULT_COPY_ON_READ_MAX_SIZE;
  return {
    ctx: sourceCtx,
    start: (result) =>
      startWriteBack(ctx, {
        bucket: plan.bucket,
        sourceBucket: plan.source.sourceBucket,
        key,
        maxSize,
        result,
        detach: () => ctx.signal.removeEventListener("abort", follow),
      }),
  };
}

interface WriteBackInput {
  readonly bucket: string;
  readonly sourceBucket: string;
  readonly key: string;
  readonly maxSize: number;
  readonly result: UpstreamResult;
  /** Unlinks the source request from the client's signal, so it outlives the client. */
  readonly detach: () => void;
}

/** What the target's copy needs, or why there is none. */
type Judgement =
  | { readonly skip: CopyOnReadSkip }
  | {
      readonly size: number;
      /** The source's ETag, 32 lowercase hex digits. */
      readonly etag: string;
      readonly headers: Record<string, string>;
    };

/** Judges the source's 200 answer: size, ETag and encryption decide whether it is written back. */
export function judgeSourceAnswer(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  maxSize: number,
): Judgement {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const sse = one("x-amz-server-side-encryption");
  if (
    (sse !== undefined && sse !== "AES256") ||
    one("x-amz-server-side-encryption-customer-algorithm") !== undefined
  ) {
    return { skip: "encrypted" };
  }
  const length = one("content-length");
  if (length === undefined || !/^\d+$/.test(length)) return { skip: "unknown_length" };
  const size = Number(length);
  if (size > maxSize) return { skip: "too_large" };
  const etag = (one("etag") ?? "").replace(/^"|"$/g, "");
  // A multipart ETag (MD5 of the parts' MD5s, `-N`) cannot check a single PUT: the copier copies
  // such objects part for part (PITFALLS "Copier").
  if (/-\d+$/.test(etag)) return { skip: "multipart_etag" };
  if (!/^[0-9a-fA-F]{32}$/.test(etag)) return { skip: "not_md5_etag" };
  // GET returns only the tag count; tags need GetObjectTagging, which the copier does.
  const tags = one("x-amz-tagging-count");
  if (tags !== undefined && tags !== "0") return { skip: "tagged" };
  const put: Record<string, string> = { "if-none-match": "*" };
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (CARRIED_HEADERS.includes(name) || name.startsWith("x-amz-meta-")) {
      put[name] = Array.isArray(value) ? value.join(",") : value;
    }
  }
  const encoding = one("content-encoding");
  if (encoding !== undefined) {
    const kept = encoding
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "" && e !== "aws-chunked");
    if (kept.length > 0) put["content-encoding"] = kept.join(",");
  }
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html: the target checks the
  // body against Content-MD5 and refuses it (BadDigest) when it differs.
  put["content-md5"] = Buffer.from(etag, "hex").toString("base64");
  return { size, etag: etag.toLowerCase(), headers: put };
}

async function startWriteBack(ctx: ExecContext, input: WriteBackInput): Promise<ExecResult> {
  const { bucket, key, result } = input;
  const upstream = result.upstream;
  if (upstream.statusCode !== 200) return result;
  const judged = judgeSourceAnswer(upstream.headers, input.maxSize);
  if ("skip" in judged) {
    ctx.metrics.copyOnReadSkipped(judged.skip);
    return result;
  }
  const flights = flightsOf(ctx.keys);
  const id = `${bucket}\n${key}`;
  const until = flights.recent.get(id);
  if (until !== undefined && until > Date.now()) {
    ctx.metrics.copyOnReadSkipped("recent");
    return result;
  }
  if (flights.inFlight.has(id)) {
    ctx.metrics.copyOnReadSkipped("in_flight");
    return result;
  }
  if (flights.inFlight.size >= MAX_WRITE_BACKS) {
    ctx.metrics.copyOnReadSkipped("busy");
    return result;
  }
  // Taken before the first await, so concurrent reads of the key see it.
  flights.inFlight.add(id);
  let held: HeldClaim | "tombstoned";
  try {
    held = await holdMigrationClaim(ctx.keys, { bucket, key }, ctx);
  } catch (err) {
    flights.inFlight.delete(id);
    failed(ctx, key, "store_error", err);
    return result;
  }
  if (held === "tombstoned") {
    // A client deleted the key after the fallback checked: the read is served (it began
    // before the delete finished), but the key is not brought back.
    flights.inFlight.delete(id);
    ctx.metrics.copyOnRead("tombstoned", 0);
    return result;
  }
  input.detach();
  const toClient = new PassThrough({ highWaterMark: BRANCH_BUFFER });
  const toTarget = new PassThrough({ highWaterMark: BRANCH_BUFFER });
  const writeAbort = new AbortController();
  const sourceFailed = tee(upstream.body, {
    toClient,
    toTarget,
    size: judged.size,
    resumeFrom: (offset) =>
      readRest(ctx, {
        backend: result.backend,
        sourceBucket: input.sourceBucket,
        key,
        etag: judged.etag,
        offset,
        signal: writeAbort.signal,
      }),
  });
  void writeBack(ctx, {
    bucket,
    key,
    size: judged.size,
    headers: judged.headers,
    held,
    body: toTarget,
    source: sourceFailed,
    abort: writeAbort,
  }).finally(() => {
    flights.inFlight.delete(id);
  });
  // The responder relays this like any backend answer; only the body is the client's branch.
  const body = toClient as unknown as Dispatcher.ResponseData["body"];
  return { ...result, upstream: { ...upstream, body } };
}

/**
 * Feeds the source body to both branches. The target governs the pace: the source pauses while
 * the target branch is full, and the client branch may buffer up to {@link CLIENT_LAG_CAP}
 * behind it. A client slower than that does not slow the write-back down (a PUT with
 * `If-None-Match: *` holds MinIO's lock on the key, and every other read of the key waits on it
 * as long as the upload lasts): the target branch continues from a ranged source GET of the
 * rest (`resumeFrom`, pinned to the same ETag), and the client keeps the first stream to itself,
 * at its own pace. A branch that is destroyed (the client went away, the target PUT ended) is
 * dropped. Returns a flag object that says whether the source itself failed.
 */
function tee(
  source: Readable,
  branches: {
    readonly toClient: PassThrough;
    readonly toTarget: PassThrough;
    readonly size: number;
    readonly resumeFrom: (offset: number) => Promise<Readable>;
  },
): { failed: boolean } {
  const { toClient, toTarget } = branches;
  const state = { failed: false };
  let clientLive = true;
  let targetAttached = true;
  let bytes = 0;
  const blocked = (): boolean =>
    targetAttached ? toTarget.writableNeedDrain : clientLive && toClient.writableNeedDrain;
  const maybeResume = (): void => {
    if (!clientLive && !targetAttached) {
      source.destroy();
      return;
    }
    if (source.isPaused() && !blocked()) source.resume();
  };
  const fork = (offset: number): void => {
    targetAttached = false;
    if (offset >= branches.size) {
      toTarget.end();
      return;
    }
    branches.resumeFrom(offset).then(
      (rest) => {
        rest.once("error", (err) => {
          state.failed = true;
          toTarget.destroy(err);
        });
        toTarget.once("close", () => rest.destroy());
        rest.pipe(toTarget);
      },
      (err: unknown) => {
        state.failed = true;
        toTarget.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };
  toClient.on("drain", maybeResume);
  toClient.once("close", () => {
    clientLive = false;
    maybeResume();
  });
  toTarget.on("drain", maybeResume);
  toTarget.once("close", () => {
    if (targetAttached) {
      targetAttached = false;
      maybeResume();
    }
  });
  source.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (clientLive) toClient.write(chunk);
    if (targetAttached) {
      toTarget.write(chunk);
      if (clientLive && toClient.writableLength > CLIENT_LAG_CAP) fork(bytes);
    }
    if (blocked()) source.pause();
  });
  source.once("end", () => {
    if (clientLive) toClient.end();
    if (targetAttached) {
      targetAttached = false;
      if (bytes === branches.size) toTarget.end();
      else toTarget.destroy(new Error(`source sent ${bytes} bytes of ${branches.size}`));
    }
  });
  source.once("error", (err) => {
    if (clientLive) toClient.destroy(err);
    if (targetAttached) {
      state.failed = true;
      toTarget.destroy(err);
    }
  });
  return state;
}

/** The rest of the object from `offset`, as a ranged source GET pinned to the ETag the client got. */
async function readRest(
  ctx: ExecContext,
  input: {
    readonly backend: Backend;
    readonly sourceBucket: string;
    readonly key: string;
    readonly etag: string;
    readonly offset: number;
    readonly signal: AbortSignal;
  },
): Promise<Readable> {
  const answer = await sendUpstream(input.backend, {
    method: "GET",
    bucket: input.sourceBucket,
    key: input.key,
    query: [],
    // If-Match: the object must still be the one whose first bytes were sent.
    headers: { range: `bytes=${input.offset}-`, "if-match": `"${input.etag}"` },
    body: undefined,
    contentLength: undefined,
    payloadHash: EMPTY_SHA256,
    signal: input.signal,
  });
  if (answer.statusCode !== 206) {
    await answer.body.dump().catch(() => undefined);
    throw new Error(`the source answered ${answer.statusCode} to the rest of the object`);
  }
  ctx.touch("source");
  return answer.body;
}

/** Sends the target branch as a create-only PUT under the claim; records how it ended. */
async function writeBack(
  ctx: ExecContext,
  input: {
    readonly bucket: string;
    readonly key: string;
    readonly size: number;
    readonly headers: Record<string, string>;
    readonly held: HeldClaim;
    /** The target branch of the tee. */
    readonly body: PassThrough;
    /** Whether the source body failed (set by the tee). */
    readonly source: { readonly failed: boolean };
    /** Aborts the write-back's requests (the PUT, a ranged source GET). */
    readonly abort: AbortController;
  },
): Promise<void> {
  const { bucket, key, held, body, source, abort } = input;
  const onLost = (): void => abort.abort(held.lost.reason);
  held.lost.addEventListener("abort", onLost, { once: true });
  const target = ctx.backends.target;
  ctx.touch("target");
  let outcome: "written" | "exists" | CopyOnReadFailure;
  try {
    const answer = await sendUpstream(target, {
      method: "PUT",
      bucket,
      key,
      query: [],
      headers: input.headers,
      body,
      contentLength: input.size,
      payloadHash: "UNSIGNED-PAYLOAD",
      signal: abort.signal,
    });
    // An early answer (a 412 before the body) leaves the branch unread: drop it from the tee.
    body.destroy();
    if (answer.statusCode < 300) {
      await answer.body.dump();
      outcome = "written";
    } else if (answer.statusCode === 412) {
      await answer.body.dump();
      outcome = "exists";
    } else {
      const { error } = await readUpstreamError(answer, target, true);
      outcome = error.code === "BadDigest" ? "digest_mismatch" : "target_rejected";
      ctx.logger.warn(
        { requestId: ctx.requestId, bucket, key, code: error.code, status: error.status },
        "copy-on-read write-back refused by the target",
      );
    }
  } catch (err) {
    body.destroy();
    outcome = held.lost.aborted ? "claim_lost" : source.failed ? "source_error" : "target_error";
    ctx.logger.warn(
      { requestId: ctx.requestId, bucket, key, reason: outcome, err },
      "copy-on-read write-back failed",
    );
  } finally {
    held.lost.removeEventListener("abort", onLost);
    await held.release();
  }
  if (outcome === "written" || outcome === "exists") {
    ctx.metrics.copyOnRead(outcome, outcome === "written" ? input.size : 0);
    remember(flightsOf(ctx.keys), `${bucket}\n${key}`);
  } else {
    ctx.metrics.copyOnReadFailed(outcome);
  }
}

function failed(ctx: ExecContext, key: string, reason: CopyOnReadFailure, err: unknown): void {
  ctx.metrics.copyOnReadFailed(reason);
  ctx.logger.warn({ requestId: ctx.requestId, key, reason, err }, "copy-on-read write-back failed");
}

function remember(flights: Flights, id: string): void {
  const now = Date.now();
  flights.recent.delete(id);
  flights.recent.set(id, now + RECENT_MS);
  for (const [k, until] of flights.recent) {
    if (flights.recent.size <= MAX_REMEMBERED && until > now) break;
    flights.recent.delete(k);
  }
}
