import { describe, it, expect } from "vitest";
import { PassThrough } from "node:stream";
import {
  RateMeter,
  estimate,
  formatBytes,
  formatDuration,
  formatProgressLine,
  formatSummary,
  newCounters,
  progressJson,
  summarize,
} from "../../s3migrate/progress.js";
import { ProgressReporter } from "../../s3migrate/reporter.js";

describe("progress line", () => {
  it("matches the DESIGN 4 example exactly", () => {
    const counters = {
      ...newCounters(),
      obj: 1234,
      ign: 56,
      exist: 89,
      work: 123,
      fail: 2,
      skipDn: 3,
      skipUp: 4,
      dnld: 567,
      dlBytes: 1.2e9,
      upld: 560,
      ulBytes: 1.1e9,
      done: 450,
    };
    const line = formatProgressLine({
      counters,
      total: 1000,
      rates: { dnld: 12.3, dlBytes: 45e6, upld: 12.1, ulBytes: 43e6, done: 550 / 9252 },
    });
    expect(line).toBe(
      "obj=1234 :: ign=56 exist=89 work=123 [45% ~2h:34m:12s] :: fail=2 skip(dn=3 up=4) dnld=567 (12.3/s) dl.byt=1.2GB (45MB/s) upld=560 (12.1/s) ul.byt=1.1GB (43MB/s)",
    );
  });

  it("shows ? when the total or the rate is unknown", () => {
    const rates = { dnld: 0, dlBytes: 0, upld: 0, ulBytes: 0, done: 0 };
    expect(formatProgressLine({ counters: newCounters(), rates })).toContain("[?% ~?]");
    expect(formatProgressLine({ counters: newCounters(), rates, total: 10 })).toContain("[0% ~?]");
  });

  it("counts keys before --start-after as done for the percentage", () => {
    const counters = { ...newCounters(), before: 50, done: 25 };
    const rates = { dnld: 0, dlBytes: 0, upld: 0, ulBytes: 0, done: 5 };
    expect(estimate({ counters, rates, total: 100 })).toEqual({ percent: 75, etaSeconds: 5 });
  });

  it.each([
    [0, "0B"],
    [999, "999B"],
    [1000, "1.0KB"],
    [1234, "1.2KB"],
    [45_000_000, "45MB"],
    [999_999, "1.0MB"],
    [1.2e9, "1.2GB"],
    [3.4e12, "3.4TB"],
  ])("formats %d bytes as %s", (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });

  it("formats durations as h:mm:ss", () => {
    expect(formatDuration(0)).toBe("0h:00m:00s");
    expect(formatDuration(9252)).toBe("2h:34m:12s");
    expect(formatDuration(100 * 3600 + 61)).toBe("100h:01m:01s");
  });

  it("has a JSON form with the same counters", () => {
    const counters = { ...newCounters(), obj: 7, work: 3, upld: 2, ulBytes: 10 };
    const rates = { dnld: 1, dlBytes: 2, upld: 3, ulBytes: 4, done: 0 };
    const j = progressJson({ counters, rates, total: 14 }, 2);
    expect(j).toMatchObject({
      type: "progress",
      pass: 2,
      obj: 7,
      work: 3,
      upld: 2,
      ulBytes: 10,
      percent: 0,
    });
    expect(j.etaSeconds).toBeNull();
  });
});

describe("RateMeter", () => {
  it("computes rates over the sliding window", () => {
    const m = new RateMeter(10_000);
    const c = newCounters();
    m.sample(0, c);
    c.upld = 50;
    c.ulBytes = 5000;
    expect(m.sample(5000, c)).toMatchObject({ upld: 10, ulBytes: 1000 });
    c.upld = 60;
    m.sample(10_000, c);
    c.upld = 80;
    // The sample at t=0 has left the 10 s window: rate over 15 s..5 s = (80-50)/10.
    expect(m.sample(15_000, c).upld).toBeCloseTo(3);
  });
});

describe("summary and reporter", () => {
  it("summarizes a pass with error counts by code", () => {
    const counters = {
      ...newCounters(),
      obj: 10,
      work: 8,
      upld: 5,
      ulBytes: 5e6,
      fail: 3,
      exist: 2,
    };
    const s = summarize({
      pass: 1,
      dryRun: false,
      seconds: 2,
      counters,
      errors: new Map([
        ["SlowDown", 1],
        ["BadDigest", 2],
      ]),
    });
    expect(s.rates).toEqual({ objects: 2.5, bytes: 2.5e6 });
    expect(Object.keys(s.errors)).toEqual(["BadDigest", "SlowDown"]);
    const text = formatSummary(s);
    expect(text).toContain("copied 5 objects, 5.0MB");
    expect(text).toContain("fail=3 errors: BadDigest=2 SlowDown=1");
  });

  it("a --verify pass says how many objects were checked and how many differ", () => {
    const counters = { ...newCounters(), obj: 10, work: 10, fail: 2 };
    const text = formatSummary(
      summarize({
        pass: 1,
        dryRun: false,
        verify: true,
        seconds: 1,
        counters,
        errors: new Map([["Mismatch", 2]]),
      }),
    );
    expect(text).toContain("pass 1 (verify) finished");
    expect(text).toContain("checked 10 objects, 2 differ (see verify.log)");
    expect(text).not.toContain("copied");
  });

  it("prints a final progress line and the summary when not on a terminal", async () => {
    const out = new PassThrough();
    let text = "";
    out.on("data", (d: Buffer) => (text += d.toString()));
    const r = new ProgressReporter({ out, tty: false, json: false, intervalSeconds: 60 });
    const c = { ...newCounters(), obj: 3, work: 3, upld: 3, done: 3 };
    r.start(1, c, () => 3);
    r.finish();
    expect(text).toMatch(/^obj=3 :: ign=0 exist=0 work=3 \[100% ~0h:00m:00s\] :: fail=0 /);
    expect(text.endsWith("\n")).toBe(true);
    const j = new PassThrough();
    let jt = "";
    j.on("data", (d: Buffer) => (jt += d.toString()));
    const rj = new ProgressReporter({ out: j, tty: false, json: true, intervalSeconds: 60 });
    rj.start(1, c, () => undefined);
    rj.finish();
    rj.summary(summarize({ pass: 1, dryRun: false, seconds: 1, counters: c, errors: new Map() }));
    const lines = jt
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(["progress", "summary"]);
  });
});
