/**
 * The S3 side of s3migrate: copies one object from source to target, streamed, conditional,
 * with its metadata and tags, integrity-checked; or compares one object (`--verify`).
 *
 * - Small objects: GET → PUT with `If-None-Match: *` and the exact `Content-Length`; the
 *   source's ETag, when it is a plain MD5, goes along as `Content-MD5` so the target verifies
 *   the bytes itself (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html).
 * - Objects above `--multipart-threshold` or multipart on the source: HEAD on the target first
 *   (a conditional multipart upload only fails at Complete), then one UploadPart per source part
 *   (GET `?partNumber=N`), so the multipart ETag (MD5 of the part MD5s + `-N`) is preserved;
 *   before Complete the MD5 of the target's part ETags must be the source's composite ETag
 *   (parts are also hashed here until the target has shown MD5 part ETags, and when the source
 *   ETag is not composite); Complete with `If-None-Match: *`
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html); any failure
 *   aborts the upload.
 * - 412 → `skip(up)`; a source 404 → `skip(dn)`; 409 and 5xx are retried by the run loop; 503
 *   SlowDown and 429 make every worker wait (shared, jittered backoff).
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { S3ClientError, readBounded, type S3Transport } from "../s3/client.js";
import {
  abortMultipartUpload,
  completeMultipartUploadConditionally,
  createMultipartUpload,
  deleteObject,
  getObject,
  getObjectTagging,
  headObject,
  listObjectsV2,
  metadataFromHeaders,
  metadataToHeaders,
  putObjectConditionally,
  uploadPart,
  type GetObjectInput,
  type GetObjectOutput,
  type ObjectInfo,
  type ObjectMetadata,
} from "../s3/client-operations.js";
import { UNSIGNED_PAYLOAD } from "../s3/sigv4-canonical.js";
import type { CompletedPart, XmlTag } from "../s3/xml-documents.js";
import type { CopyContext, CopyOutcome, ObjectCopier } from "./run.js";

/** Single-part objects up to this size are read whole before their PUT (see putBuffered). */
const BUFFERED_MAX = 256 * 1024;

/** A copy failed for a reason of our own (integrity), with a stable code. */
export class CopyError extends Error {
  /** Stable code, written to failed.log. */
  readonly code: string;
  /** Whether another attempt may succeed. */
  readonly retryable: boolean;

  /** Creates the error. */
  constructor(code: string, message: string, options: { retryable: boolean }) {
    super(message);
    this.name = "CopyError";
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** A shared bandwidth cap (token bucket, one-second burst) for `--max-bps`. */
export class BandwidthLimiter {
  private tokens: number;
  private last = Date.now();

  /** Creates a limiter of `bytesPerSecond`. */
  constructor(private readonly bytesPerSecond: number) {
    this.tokens = bytesPerSecond;
  }

  /** Resolves when `bytes` may pass. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(
        this.bytesPerSecond,
        this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond,
      );
      this.last = now;
      if (this.tokens >= Math.min(bytes, this.bytesPerSecond)) {
        this.tokens -= bytes;
        return;
      }
      const waitMs = Math.max(5, ((bytes - this.tokens) / this.bytesPerSecond) * 1000);
      await sleep(Math.min(waitMs, 1000), signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A pass-through stream that hashes (MD5), counts, and rate-limits the bytes it carries. */
class Meter extends Transform {
  readonly md5: Hash | undefined;
  bytes = 0;

  constructor(
    private readonly onBytes: (n: number) => void,
    private readonly limiter: BandwidthLimiter | undefined,
    private readonly signal: AbortSignal,
    private readonly extraHash: Hash | undefined,
    hash: boolean,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.md5 = hash ? createHash("md5") : undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.md5?.update(chunk);
    this.extraHash?.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    if (!this.limiter) return cb(null, chunk);
    this.limiter.take(chunk.length, this.signal).then(
      () => cb(null, chunk),
      (err: unknown) => cb(err as Error),
    );
  }
}

/** A body on its way to the target, with the MD5 and count of the bytes that went through. */
interface Metered {
  /** What to send. */
  readonly stream: Readable;
  /** MD5 of the bytes so far, unless hashing was turned off. */
  readonly md5: Hash | undefined;
  /** Bytes so far. */
  readonly bytes: number;
}

/** Observes a body's chunks in place: no stream in between, so no extra hop per chunk. */
class Tap implements Metered {
  readonly md5: Hash | undefined;
  bytes = 0;

  constructor(
    readonly stream: Readable,
    onBytes: (n: number) => void,
    extraHash: Hash | undefined,
    hash: boolean,
  ) {
    const md5 = (this.md5 = hash ? createHash("md5") : undefined);
    // Paused first, so adding a listener does not start the flow: undici's request writer
    // resumes the body when it sends it, and every chunk passes this listener before it is
    // written (listeners run in order). No chunk can flow unseen before the request starts.
    stream.pause();
    stream.on("data", (chunk: Buffer) => {
      md5?.update(chunk);
      extraHash?.update(chunk);
      this.bytes += chunk.length;
      onBytes(chunk.length);
    });
  }
}

/**
 * Meters a source body for its PUT: a {@link Tap} when nothing limits the rate (a Transform
 * in between costs a stream hop per chunk, a third of the CPU of a large copy), the
 * rate-limiting {@link Meter} under `--max-bps`.
 */
function meterBody(
  body: Readable,
  o: {
    onBytes: (n: number) => void;
    limiter: BandwidthLimiter | undefined;
    signal: AbortSignal;
    extraHash?: Hash;
    /** Hash the bytes with MD5 (default true). */
    hash?: boolean;
  },
): Metered {
  const hash = o.hash ?? true;
  if (!o.limiter) return new Tap(body, o.onBytes, o.extraHash, hash);
  const meter = new Meter(o.onBytes, o.limiter, o.signal, o.extraHash, hash);
  body.on("error", (err) => meter.destroy(err));
  const stream = body.pipe(meter);
  return {
    stream,
    get md5() {
      return meter.md5;
    },
    get bytes() {
      return meter.bytes;
    },
  };
}

/** Options of {@link S3Copier}. */
export interface S3CopierOptions {
  /** Where objects are read (an {@link S3Client} in the CLI). */
  readonly source: S3Transport;
  /** Where objects are written. */
  readonly target: S3Transport;
  readonly srcBucket: string;
  readonly destBucket: string;
  /** Objects larger than this go multipart. */
  readonly multipartThreshold: number;
  /** Part size for sources that were not multipart. */
  readonly partSize: number;
  /** Shared upload bandwidth cap, if any. */
  readonly limiter?: BandwidthLimiter;
  /** Compare instead of copy. */
  readonly verify?: boolean;
  /** Most parts of one multipart copy in flight at once; default 1 (in order). */
  readonly partLanes?: number;
  /** Extra part lanes shared by all multipart copies in flight; default 0. */
  readonly spareLanes?: number;
}

/** What a single-part copy writes besides the bytes: the source's metadata and tags. */
interface SingleWrite {
  readonly metadata: ObjectMetadata;
  readonly tagging?: XmlTag[];
}

/** Source object facts from HEAD. */
interface SourceHead {
  readonly size: number;
  readonly etag: string;
  readonly metadata: ObjectMetadata;
  readonly partsCount?: number;
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ClientError && (err.status === 404 || err.code === "NoSuchKey");
}

/** The part count of a composite multipart ETag (`"<32 hex>-N"`), or undefined. */
export function compositeEtagParts(etag: string): number | undefined {
  const m = /^"?[0-9a-fA-F]{32}-(\d+)"?$/.exec(etag);
  return m ? Number(m[1]) : undefined;
}

/** The multipart ETag S3 computes from part ETags (MD5 of their MD5s + `-N`), or undefined when one is not an MD5. */
export function compositeEtagOf(partEtags: readonly string[]): string | undefined {
  const md5 = createHash("md5");
  for (const etag of partEtags) {
    const hex = plainMd5OfEtag(etag);
    if (hex === undefined) return undefined;
    md5.update(Buffer.from(hex, "hex"));
  }
  return `${md5.digest("hex")}-${partEtags.length}`;
}

/** The hex MD5 inside a plain (single-part, unencrypted) ETag, or undefined. */
export function plainMd5OfEtag(etag: string): string | undefined {
  const m = /^"?([0-9a-fA-F]{32})"?$/.exec(etag);
  return m?.[1]?.toLowerCase();
}

/** The metadata headers to copy: standard ones (Content-Encoding without aws-chunked) and `x-amz-meta-*`. */
export function copyableMetadata(
  headers: Readonly<Record<string, string>>,
): Record<string, string> {
  return metadataToHeaders(metadataFromHeaders(headers));
}

/** Renders tags as the `x-amz-tagging` header value (URL query form). */
export function taggingHeader(tags: readonly { key: string; value: string }[]): string {
  return tags.map((t) => `${encodeURIComponent(t.key)}=${encodeURIComponent(t.value)}`).join("&");
}

/** The real copier: source and target S3 endpoints through our undici client. */
export class S3Copier implements ObjectCopier {
  private throttleUntil = 0;
  /** Lanes beyond the first that multipart copies may still take (see copyParts). */
  private spareLanes: number;
  /** Whether the target answered an UploadPart with the part's MD5 as its ETag. */
  private partEtagsAreMd5 = false;

  /** Creates a copier. */
  constructor(private readonly o: S3CopierOptions) {
    this.spareLanes = o.spareLanes ?? 0;
  }

  /** Copies (or verifies) one key. */
  async copy(key: string, ctx: CopyContext): Promise<CopyOutcome> {
    await this.waitThrottle(ctx.signal);
    return this.o.verify ? this.verifyOne(key, ctx) : this.copyOne(key, ctx);
  }

  private async headSource(key: string, signal: AbortSignal): Promise<SourceHead | undefined> {
    let info: ObjectInfo;
    try {
      info = await headObject(this.o.source, { bucket: this.o.srcBucket, key, signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const head: SourceHead = {
      size: info.contentLength,
      etag: info.etag,
      metadata: info.metadata,
    };
    const mp = /-(\d+)"?$/.exec(info.etag);
    if (!mp) return head;
    // A multipart source: HEAD ?partNumber=1 tells the part count (x-amz-mp-parts-count).
    try {
      const p = await headObject(this.o.source, {
        bucket: this.o.srcBucket,
        key,
        partNumber: 1,
        signal,
      });
      // A count that is not a number is distrusted (NaN), not replaced by the ETag's.
      const count =
        p.headers["x-amz-mp-parts-count"] === undefined ? Number(mp[1]) : (p.partsCount ?? NaN);
      return Number.isSafeInteger(count) && count > 0 ? { ...head, partsCount: count } : head;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // A source without partNumber support: copy with our own part size.
      return head;
    }
  }

  /** The source's tags when GET/HEAD counted some (GET returns only their count). */
  private async tagsOf(
    key: string,
    got: ObjectInfo,
    signal: AbortSignal,
  ): Promise<XmlTag[] | undefined> {
    // A count we cannot read is asked about rather than taken for none.
    if (got.headers["x-amz-tagging-count"] === undefined || got.tagCount === 0) return undefined;
    const tags = await getObjectTagging(this.o.source, { bucket: this.o.srcBucket, key, signal });
    return tags.length > 0 ? tags : undefined;
  }

  private async copyOne(key: string, ctx: CopyContext): Promise<CopyOutcome> {
    // GET first, without a HEAD: its headers tell size, ETag and metadata, so a small object
    // costs two round trips (GET, PUT) instead of three. A multipart or large object turns out
    // from the same headers; its GET is dropped (the socket holds at most a few buffers of it)
    // and it goes by parts after a HEAD.
    const got = await this.getSource(key, ctx.signal);
    if (!got) return { kind: "skipDn" };
    if (!/-\d+"?$/.test(got.etag) && got.contentLength <= this.o.multipartThreshold) {
      return this.copySingle(key, got, ctx);
    }
    got.body.destroy();
    const head = await this.headSource(key, ctx.signal);
    if (!head) return { kind: "skipDn" };
    if (head.partsCount !== undefined || head.size > this.o.multipartThreshold) {
      return this.copyMultipart(key, head, ctx);
    }
    // Replaced by a small single-part object between the GET and the HEAD: start over.
    throw new CopyError("SourceChanged", "the source object changed during the copy", {
      retryable: true,
    });
  }

  /** GetObject on the source (whole, one part, or a range); undefined when the key is gone. */
  private async getSource(
    key: string,
    signal: AbortSignal,
    part?: Pick<GetObjectInput, "partNumber" | "range">,
  ): Promise<GetObjectOutput | undefined> {
    try {
      return await getObject(this.o.source, { bucket: this.o.srcBucket, key, signal, ...part });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async copySingle(
    key: string,
    got: GetObjectOutput,
    ctx: CopyContext,
  ): Promise<CopyOutcome> {
    const { counters } = ctx;
    try {
      const size = got.contentLength;
      const md5 = plainMd5OfEtag(got.etag);
      const tagging = await this.tagsOf(key, got, ctx.signal);
      const write: SingleWrite = tagging
        ? { metadata: got.metadata, tagging }
        : { metadata: got.metadata };
      counters.dnld++;
      if (size <= BUFFERED_MAX) return await this.putBuffered(key, got, size, md5, write, ctx);
      const meter = meterBody(got.body, {
        onBytes: (n) => (counters.dlBytes += n),
        limiter: this.o.limiter,
        signal: ctx.signal,
      });
      const put = await putObjectConditionally(this.o.target, {
        bucket: this.o.destBucket,
        key,
        ...write,
        ifNoneMatch: "*",
        // The source's MD5 lets the target check the bytes itself.
        ...(md5 ? { contentMd5: Buffer.from(md5, "hex").toString("base64") } : {}),
        body: meter.stream,
        contentLength: size,
        signal: ctx.signal,
      });
      if (!put.written) return { kind: "skipUp" };
      const sent = (meter.md5 as Hash).digest("hex");
      if (meter.bytes !== size) {
        throw new CopyError(
          "IncompleteBody",
          `read ${meter.bytes} of ${size} bytes from the source`,
          {
            retryable: true,
          },
        );
      }
      // The target's ETag of a single PUT is the MD5 of what it stored (when not encrypted).
      const targetMd5 = plainMd5OfEtag(put.etag);
      if ((md5 && sent !== md5) || (targetMd5 && targetMd5 !== sent)) {
        throw new CopyError(
          "ETagMismatch",
          `MD5 ${sent} of the copied bytes does not match the ETags`,
          {
            retryable: true,
          },
        );
      }
      counters.upld++;
      counters.ulBytes += size;
      return { kind: "copied", bytes: size };
    } finally {
      // A refused PUT (412) or an error leaves the GET body unread: release its connection.
      if (!got.body.readableEnded) got.body.destroy();
    }
  }

  /**
   * The small-object path: the body (at most {@link BUFFERED_MAX} bytes, so memory stays
   * bounded by threads × that) is read whole, hashed, and sent as one Buffer with its own
   * Content-MD5. A stream pipeline per object (Transform, pipe, listeners) and a chunked
   * request write cost more CPU than the copy itself at a few KiB an object; the integrity
   * checks are the same: source ETag, Content-MD5 checked by the target, the target's ETag.
   */
  private async putBuffered(
    key: string,
    got: GetObjectOutput,
    size: number,
    md5: string | undefined,
    write: SingleWrite,
    ctx: CopyContext,
  ): Promise<CopyOutcome> {
    const { counters } = ctx;
    const body = await readBounded(got.body, size + 1);
    counters.dlBytes += body.length;
    if (body.length !== size) {
      throw new CopyError(
        "IncompleteBody",
        `read ${body.length} of ${size} bytes from the source`,
        {
          retryable: true,
        },
      );
    }
    const sent = createHash("md5").update(body).digest("hex");
    if (md5 && sent !== md5) {
      throw new CopyError(
        "ETagMismatch",
        `MD5 ${sent} of the read bytes differs from the source ETag`,
        {
          retryable: true,
        },
      );
    }
    if (this.o.limiter) await this.o.limiter.take(size, ctx.signal);
    const put = await putObjectConditionally(this.o.target, {
      bucket: this.o.destBucket,
      key,
      ...write,
      ifNoneMatch: "*",
      contentMd5: Buffer.from(sent, "hex").toString("base64"),
      body,
      // Content-MD5 already makes the target check the bytes; a SHA-256 of them adds nothing.
      payloadHash: UNSIGNED_PAYLOAD,
      signal: ctx.signal,
    });
    if (!put.written) return { kind: "skipUp" };
    const targetMd5 = plainMd5OfEtag(put.etag);
    if (targetMd5 && targetMd5 !== sent) {
      throw new CopyError(
        "ETagMismatch",
        `MD5 ${sent} of the copied bytes differs from the target's ETag`,
        {
          retryable: true,
        },
      );
    }
    counters.upld++;
    counters.ulBytes += size;
    return { kind: "copied", bytes: size };
  }

  private async headTarget(key: string, signal: AbortSignal): Promise<boolean> {
    try {
      await headObject(this.o.target, { bucket: this.o.destBucket, key, signal });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async copyMultipart(
    key: string,
    head: SourceHead,
    ctx: CopyContext,
  ): Promise<CopyOutcome> {
    // Conditional multipart uploads only fail at Complete: ask first to spare the bytes.
    if (await this.headTarget(key, ctx.signal)) return { kind: "skipUp" };
    const { counters } = ctx;
    const byParts = head.partsCount !== undefined;
    const partCount = byParts
      ? (head.partsCount as number)
      : Math.max(1, Math.ceil(head.size / this.o.partSize));
    // The first GET also tells the tag count; its body becomes part 1.
    const first = byParts
      ? await this.getSource(key, ctx.signal, { partNumber: 1 })
      : await this.getRange(key, 0, Math.min(head.size, this.o.partSize), ctx.signal);
    if (!first) return { kind: "skipDn" };
    let uploadId: string | undefined;
    let pending: Readable | undefined = first.body;
    const whole = byParts ? undefined : createHash("md5");
    try {
      const tagging = await this.tagsOf(key, first, ctx.signal);
      uploadId = (
        await createMultipartUpload(this.o.target, {
          bucket: this.o.destBucket,
          key,
          metadata: head.metadata,
          ...(tagging ? { tagging } : {}),
          signal: ctx.signal,
        })
      ).uploadId;
      counters.dnld++;
      // The first lane takes part 1 (whose GET is open) first, so `first` is never left unread.
      pending = undefined;
      const copied = await this.copyParts(
        key,
        head,
        { partCount, byParts, first, uploadId, whole },
        ctx,
      );
      if (copied === undefined) return { kind: "skipDn" };
      const { parts, total, allVerified } = copied;
      if (total !== head.size) {
        throw new CopyError("SizeMismatch", `parts hold ${total} bytes, the source ${head.size}`, {
          retryable: true,
        });
      }
      // Parts not hashed here are checked together, before anything is committed: the MD5 of
      // the target's part MD5s must be the source's composite ETag, so every byte of every part
      // is what the source holds (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
      if (!allVerified) {
        const composite = compositeEtagOf(parts.map((p) => p.etag));
        if (composite === undefined || composite !== stripQuotes(head.etag)) {
          if (composite === undefined) this.partEtagsAreMd5 = false;
          throw new CopyError(
            "ETagMismatch",
            `the target's parts make ETag ${composite ?? "(not MD5 based)"}, the source's is ${head.etag}`,
            { retryable: true },
          );
        }
      }
      // A refusal comes as a 412 or as a PreconditionFailed Error document inside a 200
      // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html);
      // any other Error document is thrown (status 500, retried).
      const done = await completeMultipartUploadConditionally(this.o.target, {
        bucket: this.o.destBucket,
        key,
        uploadId,
        parts,
        ifNoneMatch: "*",
        signal: ctx.signal,
      });
      if (!done.written) {
        counters.ulBytes -= total;
        await this.abort(key, uploadId);
        uploadId = undefined;
        return { kind: "skipUp" };
      }
      uploadId = undefined;
      const finalEtag = done.etag;
      if (byParts && head.etag && finalEtag && stripQuotes(finalEtag) !== stripQuotes(head.etag)) {
        throw new CopyError(
          "ETagMismatch",
          `multipart ETag ${finalEtag} differs from the source's ${head.etag}`,
          {
            retryable: false,
          },
        );
      }
      if (whole) {
        const md5 = plainMd5OfEtag(head.etag);
        if (md5 && whole.digest("hex") !== md5) {
          throw new CopyError(
            "ETagMismatch",
            "MD5 of the copied bytes differs from the source ETag",
            {
              retryable: false,
            },
          );
        }
      }
      counters.upld++;
      return { kind: "copied", bytes: total };
    } catch (err) {
      if (err instanceof S3ClientError && err.status === 412) {
        if (uploadId) await this.abort(key, uploadId);
        uploadId = undefined;
        return { kind: "skipUp" };
      }
      throw err;
    } finally {
      if (pending && !pending.readableEnded) pending.destroy();
      if (uploadId) await this.abort(key, uploadId);
    }
  }

  /**
   * Copies the parts of one multipart upload: one lane, plus up to `partLanes - 1` more while
   * the copier-wide pool of spare lanes has room (so a lone 2 GiB object moves several parts at
   * once, while many objects in flight do not multiply the streams). A non-multipart source
   * hashed whole (`whole`) needs its bytes in order and keeps one lane. The first failure
   * aborts the other lanes' requests and is thrown once all have settled; a part GET that
   * finds the object gone returns undefined (`skip(dn)`).
   */
  private async copyParts(
    key: string,
    head: SourceHead,
    plan: {
      partCount: number;
      byParts: boolean;
      first: GetObjectOutput;
      uploadId: string;
      whole: Hash | undefined;
    },
    ctx: CopyContext,
  ): Promise<{ parts: CompletedPart[]; total: number; allVerified: boolean } | undefined> {
    // Hashing every byte is a third of a large copy's CPU. When the source's ETag is the
    // composite MD5 of exactly these parts and the target is known to answer part ETags that
    // are MD5s, copyMultipart checks all parts at once before Complete instead.
    const hashLocally = !(
      plan.byParts &&
      this.partEtagsAreMd5 &&
      compositeEtagParts(head.etag) === plan.partCount
    );
    let allVerified = true;
    const stopLanes = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stopLanes.signal]);
    const parts: CompletedPart[] = [];
    let total = 0;
    let next = 1;
    let failure: { err: unknown } | undefined;
    let vanished = false;
    const lane = async (): Promise<void> => {
      while (failure === undefined && !vanished && next <= plan.partCount) {
        const n = next++;
        try {
          const part = await this.copyPart(key, head, n, n === 1 ? plan.first : undefined, {
            uploadId: plan.uploadId,
            byParts: plan.byParts,
            whole: plan.whole,
            hashLocally,
            signal,
            counters: ctx.counters,
          });
          if (part === undefined) {
            vanished = true;
            stopLanes.abort(new Error("the source object vanished"));
            return;
          }
          parts[n - 1] = { partNumber: n, etag: part.etag };
          total += part.len;
          if (!part.verified) allVerified = false;
        } catch (err) {
          if (failure === undefined) {
            failure = { err };
            stopLanes.abort(err);
          }
        }
      }
    };
    const width = plan.whole ? 1 : Math.min(this.o.partLanes ?? 1, plan.partCount);
    const lanes = [lane()];
    for (let i = 1; i < width && this.spareLanes > 0; i++) {
      this.spareLanes--;
      lanes.push(lane().finally(() => this.spareLanes++));
    }
    await Promise.all(lanes);
    if (failure !== undefined) throw failure.err;
    if (vanished) return undefined;
    return { parts, total, allVerified };
  }

  /** Copies part `n` (GET by part number or range → UploadPart), checked by MD5; undefined when the source is gone. */
  private async copyPart(
    key: string,
    head: SourceHead,
    n: number,
    opened: GetObjectOutput | undefined,
    o: {
      uploadId: string;
      byParts: boolean;
      whole: Hash | undefined;
      /**
       * Hash the part here and compare with the target's part ETag. Off when the source's
       * composite ETag will check every part's bytes before Complete (see copyMultipart).
       */
      hashLocally: boolean;
      signal: AbortSignal;
      counters: CopyContext["counters"];
    },
  ): Promise<{ etag: string; len: number; verified: boolean } | undefined> {
    let got = opened;
    if (got === undefined) {
      if (o.byParts) got = await this.getSource(key, o.signal, { partNumber: n });
      else {
        const start = (n - 1) * this.o.partSize;
        got = await this.getRange(
          key,
          start,
          Math.min(head.size, start + this.o.partSize),
          o.signal,
        );
      }
    }
    if (!got) return undefined;
    const body = got.body;
    try {
      // The object must not change under us: every part GET must show the HEAD's ETag.
      const partEtag = got.etag;
      if (partEtag !== "" && head.etag !== "" && partEtag !== head.etag) {
        throw new CopyError("SourceChanged", "the source object changed during the copy", {
          retryable: true,
        });
      }
      const len = got.contentLength;
      const { counters } = o;
      const meter = meterBody(body, {
        onBytes: (b) => (counters.dlBytes += b),
        limiter: this.o.limiter,
        signal: o.signal,
        extraHash: o.whole,
        hash: o.hashLocally,
      });
      const { etag } = await uploadPart(this.o.target, {
        bucket: this.o.destBucket,
        key,
        uploadId: o.uploadId,
        partNumber: n,
        body: meter.stream,
        contentLength: len,
        signal: o.signal,
      });
      const targetMd5 = plainMd5OfEtag(etag);
      const sent = meter.md5?.digest("hex");
      if (
        meter.bytes !== len ||
        (sent !== undefined && targetMd5 !== undefined && targetMd5 !== sent)
      ) {
        throw new CopyError(
          "ETagMismatch",
          `part ${n}: the target's part ETag does not match the bytes sent`,
          { retryable: true },
        );
      }
      // A target whose part ETags are the parts' MD5s lets later objects skip hashing here.
      if (sent !== undefined && targetMd5 === sent) this.partEtagsAreMd5 = true;
      counters.ulBytes += len;
      return { etag, len, verified: sent !== undefined && targetMd5 === sent };
    } finally {
      if (!body.readableEnded) body.destroy();
    }
  }

  /** GET of bytes [start, end) of the source; undefined when the key is gone. */
  private getRange(
    key: string,
    start: number,
    end: number,
    signal: AbortSignal,
  ): Promise<GetObjectOutput | undefined> {
    return this.getSource(key, signal, { range: { start, end: end - 1 } });
  }

  private async abort(key: string, uploadId: string): Promise<void> {
    try {
      await abortMultipartUpload(this.o.target, {
        bucket: this.o.destBucket,
        key,
        uploadId,
        signal: AbortSignal.timeout(30_000),
      });
    } catch {
      // Best effort: a lifecycle rule for incomplete uploads cleans up what is left.
    }
  }

  private async verifyOne(key: string, ctx: CopyContext): Promise<CopyOutcome> {
    const src = await this.headSource(key, ctx.signal);
    if (!src) return { kind: "skipDn" };
    let res: ObjectInfo;
    try {
      res = await headObject(this.o.target, { bucket: this.o.destBucket, key, signal: ctx.signal });
    } catch (err) {
      if (isNotFound(err)) return { kind: "mismatch", problem: "missing on the target" };
      throw err;
    }
    ctx.counters.dnld++;
    // A HEAD without a Content-Length is a mismatch, never a size of 0.
    const size = res.headers["content-length"] === undefined ? -1 : res.contentLength;
    if (size !== src.size) return { kind: "mismatch", problem: `size ${size}, source ${src.size}` };
    const etag = res.etag;
    if (stripQuotes(etag) !== stripQuotes(src.etag)) {
      // A non-multipart source copied by parts has a different (multipart) ETag by design.
      const sourcePlain = plainMd5OfEtag(src.etag) !== undefined;
      const targetMultipart = /-\d+"?$/.test(etag);
      if (!(sourcePlain && targetMultipart && src.size > this.o.multipartThreshold)) {
        return { kind: "mismatch", problem: `ETag ${etag}, source ${src.etag}` };
      }
    }
    const tmeta = metadataToHeaders(res.metadata);
    const smeta = metadataToHeaders(src.metadata);
    for (const [name, value] of Object.entries(smeta)) {
      if (tmeta[name] !== value) return { kind: "mismatch", problem: `${name} differs` };
    }
    for (const name of Object.keys(tmeta)) {
      if (name.startsWith("x-amz-meta-") && smeta[name] === undefined) {
        return { kind: "mismatch", problem: `${name} only on the target` };
      }
    }
    return { kind: "verified" };
  }

  /** Classifies an error for the retry loop. */
  describeError(err: unknown): {
    code: string;
    message: string;
    retryable: boolean;
    slowDown: boolean;
  } {
    if (err instanceof CopyError) {
      return { code: err.code, message: err.message, retryable: err.retryable, slowDown: false };
    }
    if (err instanceof S3ClientError) {
      const slowDown = err.status === 429 || err.status === 503 || err.code === "SlowDown";
      const retryable =
        slowDown ||
        err.status >= 500 ||
        err.status === 409 ||
        [
          "BadDigest",
          "RequestTimeout",
          "IncompleteBody",
          "ExpiredToken",
          "RequestTimeTooSkewed",
          "InvalidPart",
          "NoSuchUpload",
        ].includes(err.code);
      return { code: err.code, message: oneLine(err.message), retryable, slowDown };
    }
    const e = err as { code?: unknown; message?: unknown; name?: unknown };
    const code =
      typeof e.code === "string" ? e.code : typeof e.name === "string" ? e.name : "Error";
    return { code, message: oneLine(String(e.message ?? err)), retryable: true, slowDown: false };
  }

  /** Waits before another attempt; 503/429 push back every worker (full jitter, capped). */
  async backoff(attempt: number, slowDown: boolean, signal: AbortSignal): Promise<void> {
    const cap = Math.min(slowDown ? 30_000 : 10_000, 250 * 2 ** attempt);
    const wait = Math.random() * cap;
    if (slowDown) this.throttleUntil = Math.max(this.throttleUntil, Date.now() + wait);
    await sleep(wait, signal);
  }

  private async waitThrottle(signal: AbortSignal): Promise<void> {
    const left = this.throttleUntil - Date.now();
    if (left > 0) await sleep(left, signal);
  }

  /**
   * Pages the source bucket with ListObjectsV2, in key order, after `startAfter`, through the
   * checked pager: a truncated page without a new continuation token fails the listing
   * instead of ending it early (which would leave the rest of the bucket uncopied, silently).
   * Each page's wait is bounded by the client's header and body timeouts.
   */
  async *listSource(startAfter: string | undefined): AsyncIterable<string> {
    const pages = listObjectsV2(this.o.source, {
      bucket: this.o.srcBucket,
      maxKeys: 1000,
      ...(startAfter === undefined ? {} : { startAfter }),
    });
    for await (const page of pages) for (const entry of page.contents) yield entry.key;
  }

  /**
   * The start-up probe: PUT one key twice with `If-None-Match: *`; the second must be refused
   * with 412, else the target would let us overwrite newer objects. Returns whether it was.
   */
  async probeConditional(): Promise<boolean> {
    const key = `.s3migrate-probe/${Date.now()}-${randomBytes(6).toString("hex")}`;
    const put = async (): Promise<boolean> =>
      (
        await putObjectConditionally(this.o.target, {
          bucket: this.o.destBucket,
          key,
          ifNoneMatch: "*",
          body: Buffer.from("s3migrate probe\n"),
          signal: AbortSignal.timeout(30_000),
        })
      ).written;
    try {
      await put();
      return !(await put());
    } finally {
      await deleteObject(this.o.target, {
        bucket: this.o.destBucket,
        key,
        signal: AbortSignal.timeout(30_000),
      }).catch(() => undefined);
    }
  }
}

function stripQuotes(etag: string): string {
  return etag.replace(/^"|"$/g, "");
}

function oneLine(text: string): string {
  return text.split("\n")[0]?.slice(0, 300) ?? "";
}
