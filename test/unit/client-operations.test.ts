/**
 * The typed operations' own paging and outcome mapping, against a loopback server that answers
 * crafted documents (client-loopback.ts): our code under test, not S3 behaviour.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ClientError } from "../../s3/client.js";
import {
  completeMultipartUploadConditionally,
  listObjectsV2,
  putObjectConditionally,
} from "../../s3/client-operations.js";
import { listPage, startLoopback, type Loopback } from "./client-loopback.js";

let lb: Loopback;
beforeAll(async () => {
  lb = await startLoopback();
});
afterAll(async () => {
  await lb.close();
});

async function keysOf(pages: AsyncIterable<{ contents: { key: string }[] }>): Promise<string[]> {
  const out: string[] = [];
  for await (const page of pages) for (const c of page.contents) out.push(c.key);
  return out;
}

describe("listObjectsV2 (the checked pager)", () => {
  it("follows continuation tokens to the last page and decodes keys", async () => {
    lb.seen.length = 0;
    lb.answer = (_req, url) =>
      url.searchParams.get("continuation-token") === "t1"
        ? { status: 200, body: listPage({ keys: ["c d"], truncated: false }) }
        : { status: 200, body: listPage({ keys: ["a", "b+"], truncated: true, next: "t1" }) };
    expect(await keysOf(listObjectsV2(lb.client, { bucket: "b" }))).toEqual(["a", "b+", "c d"]);
    expect(lb.seen.map((u) => u.searchParams.get("continuation-token"))).toEqual([null, "t1"]);
  });

  it("a truncated ListObjectsV2 page without a continuation token fails loudly instead of ending the listing", async () => {
    lb.answer = () => ({ status: 200, body: listPage({ keys: ["a", "b"], truncated: true }) });
    const got: string[] = [];
    const err = await (async () => {
      for await (const page of listObjectsV2(lb.client, { bucket: "b" }))
        for (const c of page.contents) got.push(c.key);
    })().catch((e: unknown) => e);
    expect(got).toEqual(["a", "b"]);
    expect(err).toBeInstanceOf(S3ClientError);
    expect((err as S3ClientError).message).toMatch(/truncated but has no new continuation token/);
  });

  it("a truncated page that repeats its own continuation token fails instead of looping", async () => {
    lb.answer = () => ({
      status: 200,
      body: listPage({ keys: ["a"], truncated: true, next: "same" }),
    });
    await expect(
      keysOf(listObjectsV2(lb.client, { bucket: "b", continuationToken: "same" })),
    ).rejects.toThrow(/no new continuation token/);
  });
});

describe("conditional writes", () => {
  it("putObjectConditionally: 412 is { written: false }, 200 carries the ETag", async () => {
    lb.answer = (req) =>
      req.headers["if-none-match"] === "*" && req.url?.includes("exists") === true
        ? { status: 412, body: "<Error><Code>PreconditionFailed</Code></Error>" }
        : { status: 200, headers: { etag: '"abc"' } };
    const refused = await putObjectConditionally(lb.client, {
      bucket: "b",
      key: "exists",
      body: "x",
      ifNoneMatch: "*",
    });
    expect(refused).toEqual({ written: false });
    const put = await putObjectConditionally(lb.client, {
      bucket: "b",
      key: "new",
      body: "x",
      ifNoneMatch: "*",
    });
    expect(put.written && put.etag).toBe('"abc"');
  });

  const complete = (): ReturnType<typeof completeMultipartUploadConditionally> =>
    completeMultipartUploadConditionally(lb.client, {
      bucket: "b",
      key: "k",
      uploadId: "u",
      parts: [{ partNumber: 1, etag: '"e"' }],
      ifNoneMatch: "*",
    });

  it("completeMultipartUploadConditionally: a 412 and a PreconditionFailed document in a 200 are both { written: false }", async () => {
    lb.answer = () => ({ status: 412, body: "<Error><Code>PreconditionFailed</Code></Error>" });
    expect(await complete()).toEqual({ written: false });
    lb.answer = () => ({
      status: 200,
      body: '<?xml version="1.0"?>\n<Error><Code>PreconditionFailed</Code><Message>m</Message></Error>',
    });
    expect(await complete()).toEqual({ written: false });
  });

  it("completeMultipartUploadConditionally: another Error document in a 200 throws (retryable 500)", async () => {
    lb.answer = () => ({
      status: 200,
      body: "<Error><Code>InternalError</Code><Message>try again</Message></Error>",
    });
    const err = await complete().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ClientError);
    expect([(err as S3ClientError).code, (err as S3ClientError).status]).toEqual([
      "InternalError",
      500,
    ]);
  });

  it("completeMultipartUploadConditionally: a result document is { written: true } with its ETag", async () => {
    lb.answer = () => ({
      status: 200,
      body:
        '<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        "<Location>l</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;abc-1&quot;</ETag>" +
        "</CompleteMultipartUploadResult>",
    });
    const done = await complete();
    expect(done.written && done.etag).toBe('"abc-1"');
  });
});
