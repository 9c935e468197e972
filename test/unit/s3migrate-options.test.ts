import { describe, it, expect } from "vitest";
import {
  OPTION_TABLE,
  UsageError,
  expandEnv,
  parseBytes,
  parseConfigText,
  redactOptions,
  renderOptionsMarkdown,
  resolveOptions,
  type RawOptions,
} from "../../s3migrate/options.js";

const BASIC: RawOptions = {
  srcUrl: "http://src:9000",
  srcBucket: "b",
  srcKey: "ak",
  srcSecret: "sk",
  srcFolder: "/lists/src",
  destUrl: "https://dst:9000/",
  destBucket: "b",
  destKey: "ak2",
  destSecret: "sk2",
  destFolder: "/lists/dst",
};

describe("s3migrate options", () => {
  it("resolves the basic form with defaults", () => {
    const o = resolveOptions({ cli: BASIC, env: {} });
    expect(o.threads).toBe(16);
    expect(o.hashCount).toBe(1);
    expect(o.hashValue).toBe(0);
    expect(o.region).toBe("us-east-1");
    expect(o.dryRun).toBe(false);
    expect(o.destUrl).toBe("https://dst:9000");
    expect(o.partSize).toBe(16 * 1024 * 1024);
  });

  it("takes secrets from the environment variables named in the table", () => {
    const { srcSecret: _s, destSecret: _d, ...rest } = BASIC;
    const o = resolveOptions({
      cli: rest,
      env: { S3MIGRATE_SRC_SECRET: "from-env", S3MIGRATE_DEST_SECRET: "dest-env" },
    });
    expect(o.srcSecret).toBe("from-env");
    expect(o.destSecret).toBe("dest-env");
  });

  it("names the missing options and their env variables in one line", () => {
    const { srcSecret: _s, destUrl: _d, ...rest } = BASIC;
    expect(() => resolveOptions({ cli: rest, env: {} })).toThrowError(
      /^missing required options: --src-secret \(or S3MIGRATE_SRC_SECRET\), --dest-url/,
    );
    try {
      resolveOptions({ cli: rest, env: {} });
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).not.toContain("\n");
      expect((err as Error).message).toContain("--src-secret (or S3MIGRATE_SRC_SECRET)");
    }
  });

  it("lets command-line flags override the config file, and the file override env and defaults", () => {
    const file = parseConfigText(
      "threads: 4\nregion: eu-west-1\nsrc-secret: ${SECRET}\nhash-count: 3\nhash-value: 2\n",
      { SECRET: "file-secret" },
    );
    const o = resolveOptions({
      cli: { ...BASIC, srcSecret: undefined, threads: "8" },
      file,
      env: { S3MIGRATE_REGION: "ap-south-1", S3MIGRATE_SRC_SECRET: "env-secret" },
    });
    expect(o.threads).toBe(8);
    expect(o.region).toBe("eu-west-1");
    expect(o.srcSecret).toBe("file-secret");
    expect(o.hashCount).toBe(3);
    expect(o.hashValue).toBe(2);
  });

  it("fails on a config variable that is not set, naming it", () => {
    expect(() => parseConfigText("src-secret: ${NOPE_NOT_SET}\n", {})).toThrowError(
      "config: environment variable NOPE_NOT_SET is not set",
    );
    expect(expandEnv("a $${X} b", {})).toBe("a ${X} b");
  });

  it("rejects unknown config keys and non-mapping documents", () => {
    expect(() => parseConfigText("src-urll: x\n", {})).toThrowError(/unknown option "src-urll"/);
    expect(() => parseConfigText("- a\n- b\n", {})).toThrowError(/expected a mapping/);
    expect(() => parseConfigText("a: [\n", {})).toThrowError(/not valid YAML/);
  });

  it.each([
    [{ threads: "0" }, /--threads/],
    [{ threads: "abc" }, /--threads: expected an integer/],
    [{ hashCount: "3", hashValue: "3" }, /--hash-value: must be between 0 and 2/],
    [{ first: "0" }, /--first/],
    [{ srcUrl: "ftp://x" }, /--src-url: expected an http/],
    [{ srcUrl: "not a url" }, /--src-url: not a URL/],
    [{ partSize: "1M" }, /--part-size/],
    [{ maxBps: "fast" }, /--max-bps: expected a byte size/],
    [{ metricsAddr: "nowhere" }, /--metrics-addr: expected HOST:PORT/],
    [{ resume: true, startAfter: "k" }, /exclusive/],
    [{ srcFolder: undefined }, /--src-folder \(or --list-source/],
  ] as [RawOptions, RegExp][])("rejects %o", (patch, re) => {
    expect(() => resolveOptions({ cli: { ...BASIC, ...patch }, env: {} })).toThrowError(re);
  });

  it("needs only --dest-folder to convert failed.log", () => {
    const o = resolveOptions({ cli: { failedToFolder: "/x", destFolder: "/d" }, env: {} });
    expect(o.failedToFolder).toBe("/x");
  });

  it("parses byte sizes with binary suffixes", () => {
    expect(parseBytes("5242880")).toBe(5242880);
    expect(parseBytes("64M")).toBe(64 * 1024 ** 2);
    expect(parseBytes("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseBytes("16MiB")).toBe(16 * 1024 ** 2);
    expect(parseBytes("10KB")).toBe(10240);
    expect(parseBytes("x")).toBeUndefined();
  });

  it("derives docs from the table and never prints secrets", () => {
    const md = renderOptionsMarkdown();
    for (const spec of OPTION_TABLE) expect(md).toContain(`\`--${spec.flag}\``);
    expect(md).toContain("`S3MIGRATE_SRC_SECRET`");
    const shown = JSON.stringify(redactOptions(resolveOptions({ cli: BASIC, env: {} })));
    expect(shown).not.toContain('"sk"');
    expect(shown).not.toContain('"sk2"');
    expect(shown).toContain('"ak"');
  });

  it("has unique flags and property names", () => {
    expect(new Set(OPTION_TABLE.map((s) => s.flag)).size).toBe(OPTION_TABLE.length);
    expect(new Set(OPTION_TABLE.map((s) => s.name)).size).toBe(OPTION_TABLE.length);
  });
});
