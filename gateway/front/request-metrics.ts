/**
 * The S3 listener's Prometheus metrics (DESIGN 8), registered in the gateway's registry:
 * requests by bucket, mode, operation, backend and status; latency; bytes in and out; auth
 * failures by code.
 *
 * Label values must stay bounded whatever clients send: the `bucket` label is the bucket name
 * only for attached buckets (a list the operator controls) and `_other` for every other bucket,
 * and authentication failures are counted by error code only.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import { createMigrateMetrics, type MigrateMetrics } from "../execute/metrics.js";

/** The labels of one finished request. */
export interface RequestLabels {
  readonly bucket: string;
  readonly mode: string;
  readonly operation: string;
  readonly backend: string;
  readonly status: number;
}

/** The metrics the listener updates per request. */
export interface S3Metrics {
  /** Records one finished request. */
  observe(labels: RequestLabels, seconds: number, bytesIn: number, bytesOut: number): void;
  /** Counts one refused authentication. */
  authFailure(code: string): void;
  /** The migrate-mode plans' own metrics. */
  readonly migrate: MigrateMetrics;
}

/** Label value for buckets that are not attached. */
export const OTHER_BUCKET_LABEL = "_other";

/** Registers the S3 listener's metrics in `registry`. */
export function createS3Metrics(registry: Registry): S3Metrics {
  const requests = new Counter({
    name: "s3gw_s3_requests_total",
    help: "S3 requests answered, by bucket (attached ones; _other for the rest), mode, operation, backend and status",
    labelNames: ["bucket", "mode", "operation", "backend", "status"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "s3gw_s3_request_duration_seconds",
    help: "Time from the request's arrival to the end of its answer, by mode, operation and backend",
    labelNames: ["mode", "operation", "backend"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const bytesIn = new Counter({
    name: "s3gw_s3_bytes_in_total",
    help: "Request body bytes forwarded to backends, by bucket and backend",
    labelNames: ["bucket", "backend"] as const,
    registers: [registry],
  });
  const bytesOut = new Counter({
    name: "s3gw_s3_bytes_out_total",
    help: "Response body bytes relayed to clients, by bucket and backend",
    labelNames: ["bucket", "backend"] as const,
    registers: [registry],
  });
  const authFailures = new Counter({
    name: "s3gw_s3_auth_failures_total",
    help: "S3 requests refused by authentication or authorization, by S3 error code",
    labelNames: ["code"] as const,
    registers: [registry],
  });
  return {
    observe(l, seconds, inBytes, outBytes) {
      requests.inc({
        bucket: l.bucket,
        mode: l.mode,
        operation: l.operation,
        backend: l.backend,
        status: String(l.status),
      });
      latency.observe({ mode: l.mode, operation: l.operation, backend: l.backend }, seconds);
      if (inBytes > 0) bytesIn.inc({ bucket: l.bucket, backend: l.backend }, inBytes);
      if (outBytes > 0) bytesOut.inc({ bucket: l.bucket, backend: l.backend }, outBytes);
    },
    authFailure(code) {
      authFailures.inc({ code });
    },
    migrate: createMigrateMetrics(registry),
  };
}
