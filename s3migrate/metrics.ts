/**
 * Prometheus metrics of s3migrate (prom-client), served on `--metrics-addr`: the progress-line
 * counters as `_total` counters over the whole run, throughput and ETA gauges, and the current
 * pass. Values are read from the live counters at scrape time, so the copy path does no
 * metrics work of its own. Reference: docs/s3migrate.md, "Metrics".
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import { estimate, type Counters, type ProgressSnapshot } from "./progress.js";

/** What the metrics read at each scrape. */
export interface MetricsSource {
  /** Counters summed over finished passes plus the current one. */
  readonly runTotals: () => Readonly<Counters>;
  /** The current pass's snapshot (for rates and ETA), if a pass is running. */
  readonly snapshot: () => ProgressSnapshot | undefined;
  /** The current pass number. */
  readonly pass: () => number;
  /** Failed keys by error code over the run. */
  readonly errors: () => ReadonlyMap<string, number>;
}

const STATES: readonly [keyof Counters, string][] = [
  ["obj", "read"],
  ["ign", "ign"],
  ["exist", "exist"],
  ["work", "work"],
  ["fail", "fail"],
  ["skipDn", "skip_dn"],
  ["skipUp", "skip_up"],
  ["dnld", "downloaded"],
  ["upld", "uploaded"],
];

/** Builds the registry for a run. */
export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const reported = new Map<string, number>();
  // Counters only go up: at scrape time add the difference since the last scrape.
  const catchUp = (
    c: Counter<string>,
    id: string,
    labels: Record<string, string>,
    value: number,
  ): void => {
    const before = reported.get(id) ?? 0;
    if (value > before) {
      c.inc(labels, value - before);
      reported.set(id, value);
    }
  };
  new Counter({
    name: "s3migrate_objects_total",
    help: "Keys by outcome over the run (the progress-line counters).",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const t = source.runTotals();
      for (const [field, state] of STATES) catchUp(this, `o:${state}`, { state }, t[field]);
    },
  });
  new Counter({
    name: "s3migrate_bytes_total",
    help: "Bytes moved over the run, by direction.",
    labelNames: ["direction"],
    registers: [registry],
    collect() {
      const t = source.runTotals();
      catchUp(this, "b:download", { direction: "download" }, t.dlBytes);
      catchUp(this, "b:upload", { direction: "upload" }, t.ulBytes);
    },
  });
  new Counter({
    name: "s3migrate_errors_total",
    help: "Failed keys by error code over the run.",
    labelNames: ["code"],
    registers: [registry],
    collect() {
      for (const [code, n] of source.errors()) catchUp(this, `e:${code}`, { code }, n);
    },
  });
  new Gauge({
    name: "s3migrate_objects_per_second",
    help: "Objects uploaded per second over the last seconds.",
    registers: [registry],
    collect() {
      this.set(source.snapshot()?.rates.upld ?? 0);
    },
  });
  new Gauge({
    name: "s3migrate_bytes_per_second",
    help: "Bytes per second over the last seconds, by direction.",
    labelNames: ["direction"],
    registers: [registry],
    collect() {
      const r = source.snapshot()?.rates;
      this.set({ direction: "download" }, r?.dlBytes ?? 0);
      this.set({ direction: "upload" }, r?.ulBytes ?? 0);
    },
  });
  new Gauge({
    name: "s3migrate_eta_seconds",
    help: "Estimated seconds left in the current pass (-1 when unknown).",
    registers: [registry],
    collect() {
      const snap = source.snapshot();
      this.set(snap ? (estimate(snap).etaSeconds ?? -1) : -1);
    },
  });
  new Gauge({
    name: "s3migrate_progress_ratio",
    help: "Fraction of the current pass's keys finished (-1 when unknown).",
    registers: [registry],
    collect() {
      const snap = source.snapshot();
      const p = snap ? estimate(snap).percent : undefined;
      this.set(p === undefined ? -1 : p / 100);
    },
  });
  new Gauge({
    name: "s3migrate_pass",
    help: "Number of the current pass (1-based).",
    registers: [registry],
    collect() {
      this.set(source.pass());
    },
  });
  return registry;
}

/** Serves `GET /metrics` from a registry on `host:port`; resolves once listening. */
export async function serveMetrics(registry: Registry, addr: string): Promise<Server> {
  const m = /^(.*):(\d+)$/.exec(addr);
  const host = (m?.[1] ?? "").replace(/^\[(.*)\]$/, "$1") || "0.0.0.0";
  const port = Number(m?.[2] ?? 0);
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.unref();
  return server;
}
