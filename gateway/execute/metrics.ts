/**
 * Metrics of migrate mode's plans (DESIGN 8): fallbacks to the source by operation and outcome,
 * copies across clusters, deletes applied to both sides, and the latency of source calls.
 * Registered beside the request metrics (front/request-metrics.ts); labels stay bounded
 * (operation names, fixed outcome words).
 */
import { Counter, Histogram, type Registry } from "prom-client";

/** How a fallback read ended. */
export type FallbackOutcome = "target" | "source" | "not_found" | "source_error";

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
  return {
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
