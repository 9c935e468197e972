/**
 * `s3gw serve`: opens the state store, then starts the admin API, the metrics listener and the
 * S3 listener. The S3 listener (the proxy) is built in the next round and plugs in through
 * {@link S3ListenerFactory}; until then the gateway serves admin and metrics only.
 */
import type { Logger } from "pino";
import { startAdminApi, type AdminServer, type AttachValidator } from "./admin/api.js";
import type { GatewayConfig } from "./config.js";
import { createGatewayMetrics, startMetricsServer, type MetricsServer } from "./metrics.js";
import type { Registry } from "prom-client";
import { openStateStore } from "./state/open.js";
import type { MigrationStateStore } from "./state/store.js";

/** What the S3 listener gets from the gateway. */
export interface S3ListenerContext {
  readonly config: GatewayConfig;
  /**
   * Read `store.snapshot()` per request: it is cached and swapped atomically on every change.
   * `store.isFresh()` false means the state could not be confirmed within the lease: attached
   * buckets must be refused (503), detached ones may be served.
   */
  readonly store: MigrationStateStore;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** A running listener. */
export interface RunningListener {
  /** The URL it serves. */
  readonly url: string;
  /** Stops accepting, drains in-flight requests, then resolves. */
  close(): Promise<void>;
}

/** The hook the S3 proxy plugs into: starts the S3 listener on `config.listen`. */
export type S3ListenerFactory = (context: S3ListenerContext) => Promise<RunningListener>;

/** Options for {@link startGateway}. */
export interface GatewayOptions {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  /** Checks attach requests; the S3-backed validator unless given. */
  readonly validator: AttachValidator;
  /** The S3 listener; when absent the gateway serves the admin API and metrics only. */
  readonly s3Listener?: S3ListenerFactory;
}

/** A running gateway. */
export interface RunningGateway {
  readonly store: MigrationStateStore;
  readonly admin: AdminServer;
  readonly metrics: MetricsServer | undefined;
  readonly s3: RunningListener | undefined;
  /** Stops every listener (S3 first, so in-flight S3 requests drain while admin still answers). */
  close(): Promise<void>;
}

/** Starts the gateway's listeners; a failure stops whatever had started and rejects. */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { config, logger } = options;
  const store = await openStateStore(config.state, { logger });
  logger.info(
    {
      engine: store.engine,
      ...(config.state.engine === "sqlite"
        ? { statePath: config.state.sqlitePath }
        : { stateUrl: config.state.url }),
      gatewayId: store.gatewayId,
      version: store.snapshot().version,
      buckets: store.list().length,
      leaseMs: config.state.leaseMs,
    },
    "migration state loaded",
  );
  const metricsState = createGatewayMetrics(store);
  const started: { close(): Promise<void> }[] = [store];
  try {
    const admin = await startAdminApi({ config, store, validator: options.validator, logger });
    started.push(admin);
    if (!config.admin.tls && !isLoopback(config.admin.listen.host)) {
      logger.warn(
        { listen: admin.url },
        "admin API is plain HTTP on a non-loopback address; set admin.tls: true",
      );
    }
    logger.info({ url: admin.url }, "admin API listening");

    let metrics: MetricsServer | undefined;
    if (config.metrics) {
      metrics = await startMetricsServer(config.metrics.listen, metricsState.registry);
      started.push(metrics);
      logger.info({ url: `${metrics.url}/metrics` }, "metrics listening");
    }

    let s3: RunningListener | undefined;
    if (options.s3Listener) {
      if (!config.tls) logger.warn("no tls configured: the S3 endpoint serves plain HTTP");
      s3 = await options.s3Listener({ config, store, logger, registry: metricsState.registry });
      started.push(s3);
      logger.info({ url: s3.url }, "S3 endpoint listening");
    } else {
      logger.warn(
        "S3 listener not available in this build: serving the admin API and metrics only",
      );
    }

    return {
      store,
      admin,
      metrics,
      s3,
      // The store closes last: in-flight S3 and admin requests may still need it.
      close: async () => {
        for (const l of [...started].reverse()) await l.close();
        metricsState.stop();
      },
    };
  } catch (err) {
    for (const l of started.reverse()) await l.close().catch(() => undefined);
    metricsState.stop();
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
