import { defineConfig } from "vitest/config";

// Two projects: `unit` (pure logic, no servers) and `integration` (real S3 servers from the
// rig, started once by the global setup; a server that cannot start fails the run).

export default defineConfig({
  test: {
    reporters: ["default", "./test/rig/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          pool: "threads",
          // vitest 4 requires distinct group orders for projects with different maxWorkers:
          // unit tests run first, then the integration tests.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/rig/global-setup.ts"],
          pool: "forks",
          sequence: { groupOrder: 1 },
          // Two cores on CI and shared servers: modest parallelism.
          maxWorkers: 2,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
