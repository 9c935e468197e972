/**
 * `--list-source` pages the source through the checked ListObjectsV2 pager. Regression: the
 * copier's own raw pager ended the listing silently when a truncated page carried no
 * continuation token, so a run "finished" with the rest of the bucket never copied. A loopback
 * server (client-loopback.ts) answers crafted pages: this tests our pager, not S3 behaviour.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ClientError } from "../../s3/client.js";
import { S3Copier } from "../../s3migrate/copier.js";
import { exitCodeOf, runMigrate } from "../../s3migrate/main.js";
import { resolveOptions } from "../../s3migrate/options.js";
import { listPage, startLoopback, type Loopback } from "./client-loopback.js";

let lb: Loopback;
beforeAll(async () => {
  lb = await startLoopback();
});
afterAll(async () => {
  await lb.close();
});

function copierOn(loopback: Loopback): S3Copier {
  return new S3Copier({
    source: loopback.client,
    target: loopback.client,
    srcBucket: "b",
    destBucket: "b",
    multipartThreshold: 64 * 1024 * 1024,
    partSize: 16 * 1024 * 1024,
  });
}

async function collect(keys: AsyncIterable<string>): Promise<{ keys: string[]; err?: unknown }> {
  const out: string[] = [];
  try {
    for await (const key of keys) out.push(key);
  } catch (err) {
    return { keys: out, err };
  }
  return { keys: out };
}

describe("s3migrate --list-source", () => {
  it("pages with continuation tokens, after --start-after, and decodes keys", async () => {
    lb.seen.length = 0;
    lb.answer = (_req, url) =>
      url.searchParams.get("continuation-token") === "t1"
        ? { status: 200, body: listPage({ keys: ["d\ne", "f"], truncated: false }) }
        : { status: 200, body: listPage({ keys: ["b c", "c+"], truncated: true, next: "t1" }) };
    expect(await collect(copierOn(lb).listSource("a"))).toEqual({
      keys: ["b c", "c+", "d\ne", "f"],
    });
    expect(lb.seen[0]?.searchParams.get("start-after")).toBe("a");
    expect(lb.seen[0]?.searchParams.get("max-keys")).toBe("1000");
    expect(lb.seen[1]?.searchParams.get("continuation-token")).toBe("t1");
  });

  it("a truncated listing page without a continuation token fails loudly instead of ending the listing", async () => {
    lb.answer = () => ({ status: 200, body: listPage({ keys: ["a", "b"], truncated: true }) });
    const got = await collect(copierOn(lb).listSource(undefined));
    expect(got.keys).toEqual(["a", "b"]);
    expect(got.err).toBeInstanceOf(S3ClientError);
    expect((got.err as Error).message).toMatch(/truncated but has no new continuation token/);
  });

  it("a run over such a listing fails with a one-line message and exit code 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "s3migrate-list-source-"));
    try {
      lb.answer = (req) =>
        req.method === "HEAD"
          ? { status: 200 }
          : { status: 200, body: listPage({ keys: ["a"], truncated: true }) };
      const opts = resolveOptions({
        cli: {
          srcUrl: lb.client.origin,
          srcBucket: "b",
          srcKey: "ak",
          srcSecret: "sk",
          destUrl: lb.client.origin,
          destBucket: "b",
          destKey: "ak",
          destSecret: "sk",
          destFolder: join(dir, "dst"),
          listSource: true,
          dryRun: true,
          timeout: 5,
        },
        env: {},
      });
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      const never = new AbortController().signal;
      const err = await runMigrate(opts, {
        stop: never,
        abort: never,
        out: sink,
        summaryOut: sink,
        tty: false,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(S3ClientError);
      expect((err as Error).message).not.toContain("\n");
      expect((err as Error).message).toMatch(/truncated but has no new continuation token/);
      expect(exitCodeOf(err)).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
