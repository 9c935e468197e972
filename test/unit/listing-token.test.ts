// Continuation tokens of the merged listing: they round-trip the position, and a forged,
// altered or foreign one (another bucket, operation, prefix, delimiter or secret) is
// InvalidArgument; a token sealed by another gateway with the same secret works.
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import {
  openContinuation,
  openContinuationToken,
  sealContinuationToken,
  type TokenBinding,
} from "../../gateway/listing/continuation-token.js";
import { mergedListing } from "../../gateway/listing/merged-listing.js";
import { MemoryListSide } from "../helpers/listing-model.js";

const key = randomBytes(32);
const binding: TokenBinding = {
  bucket: "b",
  operation: "ListObjectsV2",
  prefix: "p/",
  delimiter: "/",
};

function invalid(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(S3Error);
  expect((err as S3Error).code).toBe("InvalidArgument");
  expect((err as S3Error).status).toBe(400);
}

describe("continuation tokens", () => {
  it("round-trip any key, including unicode and a 1,024-byte key", () => {
    for (const after of [
      "p/a",
      "p/caf\u00e9",
      "p/\u{1f600}",
      "p/" + "x".repeat(1022),
      "p/a b+c%",
    ]) {
      const token = sealContinuationToken(key, binding, after);
      expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(openContinuationToken(key, binding, token)).toBe(after);
    }
  });

  it("carry the listing id and where each side can be read again; altered, they do not open", () => {
    const listing = "0123456789abcdef";
    const sides = {
      target: { startAfter: "p/a", token: "YS9pNXdwdjF6LmJpblttaW5pb19jYWNoZTp2Mn0=" },
      source: {},
    };
    const token = sealContinuationToken(key, binding, "p/\u00e9", listing, sides);
    expect(openContinuation(key, binding, token)).toEqual({
      after: "p/\u00e9",
      listing,
      sides,
    });
    expect(
      openContinuation(key, binding, sealContinuationToken(key, binding, "p/x", listing)),
    ).toEqual({
      after: "p/x",
      listing,
    });
    const [payload, mac] = token.split(".") as [string, string];
    const bytes = Buffer.from(payload, "base64url");
    for (let i = 0; i < bytes.length; i += 7) {
      const altered = Buffer.from(bytes);
      altered[i] = (altered[i] as number) ^ 1;
      invalid(() => openContinuation(key, binding, `${altered.toString("base64url")}.${mac}`));
    }
  });

  it("a token from another gateway with the same secret opens", () => {
    const shared = Buffer.from(key);
    const token = sealContinuationToken(shared, binding, "p/x");
    expect(openContinuationToken(Buffer.from(key), binding, token)).toBe("p/x");
  });

  it("forged tokens are InvalidArgument", () => {
    for (const forged of [
      "",
      "abc",
      "a.b",
      "...",
      "cA.",
      Buffer.from("\x01p/zzz").toString("base64url") + ".AAAAAAAAAAAAAAAAAAAAAA",
      "p/x",
    ]) {
      invalid(() => openContinuationToken(key, binding, forged));
    }
  });

  it("altered tokens are InvalidArgument (every single-character change)", () => {
    const token = sealContinuationToken(key, binding, "p/abc");
    const alphabet = "AQgw_-9";
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (token[i] === c) continue;
        const altered = token.slice(0, i) + c + token.slice(i + 1);
        invalid(() => openContinuationToken(key, binding, altered));
      }
    }
  });

  it("foreign tokens (bucket, operation, prefix, delimiter, secret) are InvalidArgument", () => {
    const token = sealContinuationToken(key, binding, "p/abc");
    const others: TokenBinding[] = [
      { ...binding, bucket: "c" },
      { ...binding, operation: "ListObjects" },
      { ...binding, prefix: "p" },
      { bucket: "b", operation: "ListObjectsV2", prefix: "p/" },
      { ...binding, delimiter: "!" },
    ];
    for (const other of others) invalid(() => openContinuationToken(key, other, token));
    invalid(() => openContinuationToken(randomBytes(32), binding, token));
  });

  it("the engine answers InvalidArgument for a token of another query, and resumes with its own", async () => {
    const sides = {
      target: new MemoryListSide(
        "target",
        new Map([
          ["p/a", 1],
          ["p/b", 1],
          ["q/c", 1],
        ]),
      ),
      source: new MemoryListSide("source", new Map([["p/c", 1]])),
    };
    const run = async (rawQuery: string, tokenKey = key): Promise<string> => {
      const r = await mergedListing({
        operation: "ListObjectsV2",
        bucket: "b",
        rawQuery,
        sides,
        tokenKey,
        signal: new AbortController().signal,
      });
      return await text(r.body);
    };
    const first = await run("list-type=2&prefix=p%2F&max-keys=1");
    const token = /<NextContinuationToken>([^<]+)</.exec(first)?.[1] as string;
    expect(token).toBeDefined();
    const second = await run(`list-type=2&prefix=p%2F&max-keys=1&continuation-token=${token}`);
    expect(second).toContain("<Key>p/b</Key>");
    expect(second).toContain(`<ContinuationToken>${token}</ContinuationToken>`);
    for (const q of [
      `list-type=2&prefix=q%2F&continuation-token=${token}`,
      `list-type=2&prefix=p%2F&delimiter=%2F&continuation-token=${token}`,
    ]) {
      await expect(run(q)).rejects.toMatchObject({ code: "InvalidArgument" });
    }
    await expect(
      run(`list-type=2&prefix=p%2F&continuation-token=${token}`, randomBytes(32)),
    ).rejects.toMatchObject({ code: "InvalidArgument" });
  });
});
