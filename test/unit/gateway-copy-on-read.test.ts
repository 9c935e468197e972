// Copy-on-read's pure parts (docs/gateway.md, "Copy-on-read"): which source answers are written
// back, and the per-bucket setting in the state (old states without it read as off; updates
// record it by name; bad values are refused).

import { describe, expect, it } from "vitest";
import { judgeSourceAnswer } from "../../gateway/execute/copy-on-read.js";
import {
  applyAttach,
  applyUpdate,
  MigrationStateError,
  parseStoredState,
  type AttachInput,
  type BucketMap,
} from "../../gateway/state/store.js";

const MD5 = "9e107d9d372bb6826bd81d3542a419d6";

describe("judgeSourceAnswer", () => {
  const ok = { "content-length": "43", etag: `"${MD5}"` };
  const cases: [string, Record<string, string>, number, string][] = [
    ["a single-part object", ok, 100, "write"],
    ["one byte over the limit", { ...ok, "content-length": "101" }, 100, "too_large"],
    ["no length", { etag: `"${MD5}"` }, 100, "unknown_length"],
    ["a multipart ETag", { ...ok, etag: `"${MD5}-3"` }, 100, "multipart_etag"],
    ["an ETag that is no MD5", { ...ok, etag: '"abc"' }, 100, "not_md5_etag"],
    ["SSE-KMS", { ...ok, "x-amz-server-side-encryption": "aws:kms" }, 100, "encrypted"],
    [
      "SSE-S3 (its ETag is the MD5)",
      { ...ok, "x-amz-server-side-encryption": "AES256" },
      100,
      "write",
    ],
    ["tags", { ...ok, "x-amz-tagging-count": "2" }, 100, "tagged"],
  ];
  for (const [name, headers, max, want] of cases) {
    it(name, () => {
      const got = judgeSourceAnswer(headers, max);
      expect("skip" in got ? got.skip : "write").toBe(want);
    });
  }

  it("carries the object's metadata and the Content-MD5 of its ETag, create-only", () => {
    const got = judgeSourceAnswer(
      {
        ...ok,
        "content-type": "image/png",
        "content-encoding": "gzip,aws-chunked",
        "x-amz-meta-owner": "ana",
        "x-amz-request-id": "R1",
        "last-modified": "Tue, 01 Dec 2026 00:00:00 GMT",
      },
      100,
    );
    if ("skip" in got) throw new Error(got.skip);
    expect(got.size).toBe(43);
    expect(got.headers).toEqual({
      "if-none-match": "*",
      "content-type": "image/png",
      "content-encoding": "gzip",
      "x-amz-meta-owner": "ana",
      "content-md5": Buffer.from(MD5, "hex").toString("base64"),
    });
  });
});

describe("the copy-on-read setting in the bucket state", () => {
  const input: AttachInput = {
    bucket: "photos",
    sourceUrl: "http://127.0.0.1:7070",
    sourceBucket: "photos",
    sourceAccessKey: "k",
    sourceSecretKey: "s",
    sourceRegion: "us-east-1",
    sourceCa: "system",
  };
  const at = "2026-12-02T00:00:00.000Z";

  it("is absent (off) in a state saved before it existed", () => {
    const old = JSON.stringify({ ...input, mode: "migrate", history: [] });
    const state = parseStoredState("photos", old);
    expect(state.copyOnRead).toBeUndefined();
    expect(state.copyOnReadMaxSize).toBeUndefined();
  });

  it("is kept through attach, update and a stored round-trip, and named in the history", () => {
    const buckets: BucketMap = new Map();
    applyAttach(buckets, { ...input, copyOnRead: true }, { by: "a", at });
    const [updated] = applyUpdate(
      buckets,
      { bucket: "photos" },
      { copyOnReadMaxSize: 1024 },
      { by: "a", at },
    );
    expect(updated?.history.at(-1)?.changed).toEqual(["copyOnReadMaxSize"]);
    const back = parseStoredState("photos", JSON.stringify(updated));
    expect(back).toMatchObject({ copyOnRead: true, copyOnReadMaxSize: 1024 });
    const [off] = applyUpdate(
      buckets,
      { bucket: "photos" },
      { copyOnRead: false },
      { by: "a", at },
    );
    expect(off?.copyOnRead).toBe(false);
  });

  it("refuses a size outside 1 byte..5 GiB", () => {
    for (const bad of [0, -1, 1.5, 5 * 1024 ** 3 + 1]) {
      expect(() =>
        applyAttach(new Map(), { ...input, copyOnReadMaxSize: bad }, { by: "a", at }),
      ).toThrow(MigrationStateError);
    }
  });
});
