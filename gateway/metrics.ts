/**
 * The gateway's Prometheus registry and its listener on `metrics.listen` (DESIGN 8): the
 * per-bucket mode, the state store's metrics and the process metrics; the S3 proxy adds its
 * request metrics to the same registry.
 */
import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ListenAddress } from "./config.js";
import type { MigrationStateSnapshot, MigrationStateStore } from "./state/store.js";
import { MIGRATION_MODES } from "./state/transitions.js";

/** The gateway's metrics registry and the gauges it maintains itself. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Stops following the state store. */
  stop(): void;
}

/**
 * Creates the registry and follows the state store: `s3gw_bucket_mode`, the store's latency
 * by operation, the state version applied, the age of the last confirmation and the live
 * gateways.
 */
export function createGatewayMetrics(store: MigrationStateStore): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "s3gw_" });
  const mode = new Gauge({
    name: "s3gw_bucket_mode",
    help: "1 for the migration mode each attached bucket is in, 0 for the other modes",
    labelNames: ["bucket", "mode"] as const,
    registers: [registry],
  });
  const publish = (snapshot: MigrationStateSnapshot): void => {
    mode.reset();
    for (const state of snapshot.buckets.values()) {
      for (const m of MIGRATION_MODES)
        mode.set({ bucket: state.bucket, mode: m }, state.mode === m ? 1 : 0);
    }
  };
  publish(store.snapshot());
  const unsubscribe = store.subscribe(publish);

  const latency = new Histogram({
    name: "s3gw_state_store_duration_seconds",
    help: "time of each state store operation (never on the request path: the state is cached)",
    labelNames: ["operation", "outcome"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const unobserve = store.observeOperations((operation, seconds, failed) =>
    latency.observe({ operation, outcome: failed ? "error" : "ok" }, seconds),
  );
  new Gauge({
    name: "s3gw_state_version_applied",
    help: "the state version this gateway has loaded and routes by",
    registers: [registry],
    collect() {
      this.set(store.snapshot().version);
    },
  });
  new Gauge({
    name: "s3gw_state_confirmed_age_seconds",
    help: "seconds since this gateway last confirmed its state with the store; above the lease, attached buckets answer 503",
    registers: [registry],
    collect() {
      this.set(store.secondsSinceConfirmed());
    },
  });
  new Gauge({
    name: "s3gw_state_live_gateways",
    help: "gateways sharing the state store whose heartbeat is within their lease (as of the last poll)",
    registers: [registry],
    collect() {
      this.set(store.knownGateways().length);
    },
  });
  return {
    registry,
    stop: () => {
      unsubscribe();
      unobserve();
    },
  };
}

/** A running metrics listener. */
export interface MetricsServer {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` from `registry` on `listen`. */
export async function startMetricsServer(
  listen: ListenAddress,
  registry: Registry,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n"),
    );
  });
  // Bounded waits: a scraper that stalls must not hold sockets forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolveListen());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
