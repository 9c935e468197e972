import { describe, it, expect } from "vitest";
import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";
import { OPTION_TABLE, renderOptionsMarkdown } from "../../s3migrate/options.js";

const root = new URL("../../", import.meta.url);

describe("s3migrate docs and deployment", () => {
  it("docs/s3migrate.md holds the option table generated from s3migrate/options.ts", async () => {
    const doc = await readFile(new URL("docs/s3migrate.md", root), "utf8");
    const m = /<!-- options:begin[^>]*-->\n([\s\S]*?)\n<!-- options:end -->/.exec(doc);
    expect(m, "options markers").not.toBeNull();
    expect(m?.[1]).toBe(renderOptionsMarkdown());
  });

  it("the Kubernetes Job is Indexed and passes the completion index as --hash-value with --hash-count = completions", async () => {
    const text = await readFile(new URL("deploy/k8s/s3migrate-job.yaml", root), "utf8");
    const docs = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
    const job = docs.find((d) => d.kind === "Job") as {
      spec: {
        completionMode: string;
        completions: number;
        parallelism: number;
        template: { spec: { containers: { args: string[] }[] } };
      };
    };
    const secret = docs.find((d) => d.kind === "Secret") as { stringData: Record<string, string> };
    expect(job.spec.completionMode).toBe("Indexed");
    expect(job.spec.parallelism).toBe(job.spec.completions);
    const args = job.spec.template.spec.containers[0]?.args.join(" ") ?? "";
    expect(args).toContain(`--hash-count ${job.spec.completions}`);
    expect(args).toContain('--hash-value "$JOB_COMPLETION_INDEX"');
    // The config in the Secret only uses known option names.
    const config = (await import("yaml")).parse(secret.stringData["config.yaml"] ?? "") as Record<
      string,
      unknown
    >;
    const flags = new Set(OPTION_TABLE.map((s) => s.flag));
    for (const key of Object.keys(config)) expect(flags.has(key), key).toBe(true);
  });
});
