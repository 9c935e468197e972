/**
 * Metrics of migrate mode's plans (DESIGN 8): fallbacks to the source by operation and outcome,
 * copies across clusters, deletes applied to both sides, and the latency of source calls.
 * Registered beside the request metrics (front/request-metrics.ts); labels stay bounded
 * (operation names, fixed outcome words).
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { ListingMetrics } from "../listing/listing-types.js";

/** How a fallback read ended. */
export type FallbackOutcome = "target" | "source" | "not_found" | "source_error";

/** How a copy-on-read write-back ended (docs/gateway.md, "Copy-on-read"). */
export type CopyOnReadOutcome = "written" | "exists" | "tombstoned" | "skipped" | "failed";

/** Why copy-on-read did not write an object back although it was enabled. */
export type CopyOnReadSkip =
  | "too_large"
  | "unknown_length"
  | "multipart_etag"
  | "not_md5_etag"
  | "encrypted"
  | "tagged"
  | "in_flight"
  | "recent"
  | "busy";

/** Why a copy-on-read write-back failed (the client's GET is never failed by it). */
export type CopyOnReadFailure =
  | "source_error"
  | "digest_mismatch"
  | "target_rejected"
  | "target_error"
  | "claim_lost"
  | "store_error";

/** The hooks executors call. */
export interface MigrateMetrics {
  /** A fallback plan finished: served by the target, by the source, by neither, or failed. */
  fallback(operation: string, outcome: FallbackOutcome): void;
  /** A copy the gateway streamed from one cluster to the other. */
  crossCopy(operation: string, outcome: "ok" | "error", bytes: number): void;
  /** A delete applied to both sides. */
  deleteBoth(operation: string, outcome: "ok" | "error"): void;
  /** One call to a source backend made by a migrate-mode plan, in seconds. */
  sourceCall(operation: string, seconds: number): void;
  /** A migration write ended: written, exists (412 from the target), tombstoned, or error. */
  migrationWrite(outcome: "written" | "exists" | "tombstoned" | "error"): void;
  /** Tombstones written for client deletes. */
  tombstones(count: number): void;
  /** The merged listings' hooks. */
  readonly listing: ListingMetrics;
  /** A copy-on-read write-back ended; `bytes` were written to the target when `written`. */
  copyOnRead(outcome: CopyOnReadOutcome, bytes: number): void;
  /** Copy-on-read passed an object by (enabled, but not written back). */
  copyOnReadSkipped(reason: CopyOnReadSkip): void;
  /** A copy-on-read write-back failed. */
  copyOnReadFailed(reason: CopyOnReadFailure): void;
}

/** Registers the migrate-mode metrics in `registry`. */
export function createMigrateMetrics(registry: Registry): MigrateMetrics {
  const fallbacks = new Counter({
    name: "s3gw_migrate_fallbacks_total",
    help: "Migrate-mode reads that missed on the target and were asked of the source, by operation and outcome",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const copies = new Counter({
    name: "s3gw_migrate_cross_copies_total",
    help: "Copies streamed by the gateway from one cluster to the other, by operation and outcome",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const copyBytes = new Counter({
    name: "s3gw_migrate_cross_copy_bytes_total",
    help: "Bytes streamed by cross-cluster copies",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  const deletes = new Counter({
    name: "s3gw_migrate_deletes_both_total",
    help: "Deletes applied to both the target and the source, by operation and outcome",
    labelNames: ["operation", "outcome"] as const,
    registers: [registry],
  });
  const sourceLatency = new Histogram({
    name: "s3gw_migrate_source_call_duration_seconds",
    help: "Time to the response headers of calls to the source made by migrate-mode plans, by operation",
    labelNames: ["operation"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const writes = new Counter({
    name: "s3gw_migrate_migration_writes_total",
    help: "Writes by the migrator credential in migrate mode, by outcome (written, exists, tombstoned, error)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const tombstoned = new Counter({
    name: "s3gw_migrate_tombstones_written_total",
    help: "Tombstones written for client deletes in migrate mode",
    registers: [registry],
  });
  const listings = new Counter({
    name: "s3gw_migrate_merged_listings_total",
    help: "Merged listing pages answered, by operation",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  const listPages = new Counter({
    name: "s3gw_migrate_listing_pages_total",
    help: "Backend listing pages fetched for merged listings, by side",
    labelNames: ["side"] as const,
    registers: [registry],
  });
  const listPagesReused = new Counter({
    name: "s3gw_migrate_listing_pages_reused_total",
    help: "Backend listing pages a merged listing's previous page had fetched, used again, by side",
    labelNames: ["side"] as const,
    registers: [registry],
  });
  const listEntries = new Counter({
    name: "s3gw_migrate_listing_entries_total",
    help: "Entries (keys, prefixes, uploads, versions) read from each side by merged listings",
    labelNames: ["side"] as const,
    registers: [registry],
  });
  const duplicates = new Counter({
    name: "s3gw_migrate_listing_duplicates_total",
    help: "Entries present on both sides folded into the target's by merged listings",
    registers: [registry],
  });
  const corObjects = new Counter({
    name: "s3gw_migrate_copy_on_read_total",
    help: "Copy-on-read write-backs by outcome (written, exists, tombstoned, skipped, failed)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const corBytes = new Counter({
    name: "s3gw_migrate_copy_on_read_bytes_total",
    help: "Bytes written to the target by copy-on-read",
    registers: [registry],
  });
  const corSkipped = new Counter({
    name: "s3gw_migrate_copy_on_read_skipped_total",
    help: "Fallback reads copy-on-read did not write back, by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const corFailed = new Counter({
    name: "s3gw_migrate_copy_on_read_failures_total",
    help: "Copy-on-read write-backs that failed (the client's read was still answered), by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  return {
    listing: {
      listing: (operation) => listings.inc({ operation }),
      pageFetched: (side) => listPages.inc({ side }),
      pageReused: (side) => listPagesReused.inc({ side }),
      entriesRead: (side, count) => {
        if (count > 0) listEntries.inc({ side }, count);
      },
      duplicatesFolded: (count) => {
        if (count > 0) duplicates.inc(count);
      },
    },
    copyOnRead(outcome, bytes) {
      corObjects.inc({ outcome });
      if (bytes > 0) corBytes.inc(bytes);
    },
    copyOnReadSkipped(reason) {
      corObjects.inc({ outcome: "skipped" });
      corSkipped.inc({ reason });
    },
    copyOnReadFailed(reason) {
      corObjects.inc({ outcome: "failed" });
      corFailed.inc({ reason });
    },
    migrationWrite(outcome) {
      writes.inc({ outcome });
    },
    tombstones(count) {
      if (count > 0) tombstoned.inc(count);
    },
    fallback(operation, outcome) {
      fallbacks.inc({ operation, outcome });
    },
    crossCopy(operation, outcome, bytes) {
      copies.inc({ operation, outcome });
      if (bytes > 0) copyBytes.inc({ operation }, bytes);
    },
    deleteBoth(operation, outcome) {
      deletes.inc({ operation, outcome });
    },
    sourceCall(operation, seconds) {
      sourceLatency.observe({ operation }, seconds);
    },
  };
}
