/**
 * The `mergeList` plan (DESIGN 3.3): ListObjects, ListObjectsV2, ListMultipartUploads and
 * ListObjectVersions of a migrate-mode bucket as one merged view of the target and the source
 * bucket (gateway/listing/, docs/listing.md): UTF-8 byte order, the target winning on a key
 * held by both, S3's pagination with continuation tokens of our own, streamed, and a 503 —
 * never a partial listing — when either side fails.
 *
 * Both sides are listed through the gateway's own backends (re-signed, pooled, bounded by the
 * backend timeouts). Uploads are listed whole per side (wholeUploadsSide): MinIO's
 * ListMultipartUploads is not a listing, and a migration has few uploads in flight.
 */
import { S3Error } from "../../s3/errors.js";
import { mergedListing } from "../listing/merged-listing.js";
import { carryAcross } from "../listing/page-cache.js";
import { S3ClientListSide } from "../listing/s3-client-side.js";
import { wholeUploadsSide } from "../listing/whole-uploads-side.js";
import type { ListingOperation } from "../listing/listing-types.js";
import type { MergeListPlan } from "../routing/plan.js";
import { backendTransport } from "../upstream/backend-transport.js";
import type { ExecContext } from "./context.js";
import type { ExecResult } from "./result.js";

const LISTINGS: ReadonlySet<string> = new Set([
  "ListObjects",
  "ListObjectsV2",
  "ListMultipartUploads",
  "ListObjectVersions",
]);

/** Carries out a `mergeList` plan. */
export async function executeMergeList(ctx: ExecContext, plan: MergeListPlan): Promise<ExecResult> {
  if (!LISTINGS.has(ctx.operation)) {
    throw new S3Error("NotImplemented", { message: `${ctx.operation} is not a listing.` });
  }
  ctx.touch("target");
  ctx.touch("source");
  const target = new S3ClientListSide({
    name: "target",
    client: backendTransport(ctx.backends.target, ctx.signal),
    bucket: plan.bucket,
  });
  const source = new S3ClientListSide({
    name: "source",
    client: backendTransport(ctx.backends.source(plan.source), ctx.signal),
    bucket: plan.source.sourceBucket,
  });
  // Backend pages carried from one page of a listing to the next (listing/page-cache.ts).
  const carried = {
    target: ctx.listingPages.side(
      { bucket: plan.bucket, side: "target", backend: `target\n${plan.bucket}` },
      wholeUploadsSide(target),
    ),
    source: ctx.listingPages.side(
      {
        bucket: plan.bucket,
        side: "source",
        backend: `${plan.source.sourceUrl}\n${plan.source.sourceBucket}\n${plan.source.sourceAccessKey}`,
      },
      wholeUploadsSide(source),
    ),
  };
  const result = await mergedListing({
    operation: ctx.operation as ListingOperation,
    bucket: plan.bucket,
    rawQuery: ctx.rawQuery,
    sides: carried,
    carry: carryAcross([carried.target, carried.source]),
    tokenKey: ctx.listingTokenKey,
    signal: ctx.signal,
    metrics: ctx.metrics.listing,
  });
  return { kind: "document", status: result.status, headers: result.headers, body: result.body };
}
