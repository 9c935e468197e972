// docs/metrics.md lists every metric the gateway and s3migrate register, with its type and
// labels; this test fails when the code and the reference drift apart.

import { readFileSync } from "node:fs";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createGatewayMetrics } from "../../gateway/metrics.js";
import { createS3Metrics } from "../../gateway/front/request-metrics.js";
import type { MigrationStateStore } from "../../gateway/state/store.js";
import { createMetricsRegistry } from "../../s3migrate/metrics.js";
import { newCounters } from "../../s3migrate/progress.js";

interface Row {
  type: string;
  labels: string[];
}

/** The table between `<!-- name:begin -->` and `<!-- name:end -->` in docs/metrics.md. */
function documented(section: string): Map<string, Row> {
  const doc = readFileSync(new URL("../../docs/metrics.md", import.meta.url), "utf8");
  const begin = doc.indexOf(`<!-- ${section}:begin -->`);
  const end = doc.indexOf(`<!-- ${section}:end -->`);
  expect(begin).toBeGreaterThan(-1);
  const rows = new Map<string, Row>();
  for (const line of doc.slice(begin, end).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const name = /^`([a-z0-9_]+)`$/.exec(cells[1] ?? "")?.[1];
    if (name === undefined) continue;
    const labels = (cells[3] ?? "")
      .split(",")
      .map((l) => l.trim())
      .filter(Boolean);
    rows.set(name, { type: cells[2] ?? "", labels });
  }
  return rows;
}

/** Name → type and label names of what a registry holds (process metrics left out). */
async function registered(registry: Registry, prefix: string): Promise<Map<string, Row>> {
  const rows = new Map<string, Row>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const m = metric as unknown as { name: string; type: string };
    if (!m.name.startsWith(prefix)) continue;
    const inner = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
    rows.set(m.name, { type: m.type, labels: [...(inner.labelNames ?? [])] });
  }
  return rows;
}

describe("docs/metrics.md", () => {
  it("lists exactly the gateway's own metrics, with their types and labels", async () => {
    const store = {
      snapshot: () => ({ version: 0, buckets: new Map() }),
      subscribe: () => () => undefined,
      observeOperations: () => () => undefined,
      secondsSinceConfirmed: () => 0,
      knownGateways: () => [],
    } as unknown as MigrationStateStore;
    const gateway = createGatewayMetrics(store);
    createS3Metrics(gateway.registry);
    const ours = await registered(gateway.registry, "s3gw_");
    // Node's process metrics share the prefix; they are described in prose, not the table.
    for (const name of [...ours.keys()]) {
      if (/^s3gw_(process|nodejs)_/.test(name)) ours.delete(name);
    }
    expect(ours).toEqual(documented("s3gw"));
    gateway.stop();
  });

  it("lists exactly s3migrate's metrics, with their types and labels", async () => {
    const registry = createMetricsRegistry({
      runTotals: () => newCounters(),
      snapshot: () => undefined,
      pass: () => 1,
      errors: () => new Map(),
    });
    expect(await registered(registry, "s3migrate_")).toEqual(documented("s3migrate"));
  });
});
