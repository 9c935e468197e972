// PostObject policies (s3/post-policy): signature verification (SigV4 and SigV2) and the
// conditions, as named tables of accepted and refused forms.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import {
  checkPolicy,
  contentLengthOutOfRange,
  parsePolicy,
  verifyPostSignature,
} from "../../s3/post-policy.js";
import { signingKey } from "../../s3/signing-key.js";

const SECRET = "post-secret-0123456789";
const lookupSecret = (id: string): string | undefined => (id === "AKPOST" ? SECRET : undefined);
const NOW = new Date("2026-12-02T03:00:00Z");

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return "ok";
}

function b64(doc: unknown): string {
  return Buffer.from(JSON.stringify(doc)).toString("base64");
}

function v4Fields(policy: string, extra: Record<string, string> = {}): Map<string, string> {
  const key = signingKey(SECRET, "20261202", "us-east-1", "s3");
  const sig = createHmac("sha256", key).update(policy).digest("hex");
  return new Map(
    Object.entries({
      policy,
      "x-amz-algorithm": "AWS4-HMAC-SHA256",
      "x-amz-credential": "AKPOST/20261202/us-east-1/s3/aws4_request",
      "x-amz-date": "20261202T030000Z",
      "x-amz-signature": sig,
      ...extra,
    }),
  );
}

function v2Fields(policy: string, extra: Record<string, string> = {}): Map<string, string> {
  const sig = createHmac("sha1", SECRET).update(policy).digest("base64");
  return new Map(Object.entries({ policy, awsaccesskeyid: "AKPOST", signature: sig, ...extra }));
}

const opts = { lookupSecret, region: "us-east-1", sigv2: true };
const policy = b64({
  expiration: "2026-12-02T04:00:00Z",
  conditions: [{ bucket: "b" }, ["starts-with", "$key", "up/"], ["content-length-range", 1, 100]],
});

describe("verifyPostSignature", () => {
  const cases: [string, Map<string, string>, typeof opts, string][] = [
    ["SigV4 good", v4Fields(policy), opts, "ok"],
    ["SigV2 good", v2Fields(policy), opts, "ok"],
    ["SigV2 when auth.sigv2 is off", v2Fields(policy), { ...opts, sigv2: false }, "InvalidRequest"],
    [
      "SigV4 bad signature",
      v4Fields(policy, { "x-amz-signature": "0".repeat(64) }),
      opts,
      "SignatureDoesNotMatch",
    ],
    [
      "SigV4 policy changed after signing",
      new Map([
        ...v4Fields(policy),
        ["policy", b64({ expiration: "2030-01-01T00:00:00Z", conditions: [] })],
      ]),
      opts,
      "SignatureDoesNotMatch",
    ],
    [
      "SigV4 unknown key",
      v4Fields(policy, { "x-amz-credential": "NOBODY/20261202/us-east-1/s3/aws4_request" }),
      opts,
      "InvalidAccessKeyId",
    ],
    [
      "SigV4 other region",
      v4Fields(policy, { "x-amz-credential": "AKPOST/20261202/eu-west-1/s3/aws4_request" }),
      opts,
      "AuthorizationHeaderMalformed",
    ],
    [
      "SigV4 malformed credential",
      v4Fields(policy, { "x-amz-credential": "AKPOST" }),
      opts,
      "InvalidArgument",
    ],
    [
      "SigV4 other algorithm",
      v4Fields(policy, { "x-amz-algorithm": "AWS4-ECDSA-P256-SHA256" }),
      opts,
      "InvalidArgument",
    ],
    [
      "SigV4 missing date",
      new Map([...v4Fields(policy)].filter(([k]) => k !== "x-amz-date")),
      opts,
      "InvalidArgument",
    ],
    [
      "SigV4 missing policy",
      new Map([...v4Fields(policy)].filter(([k]) => k !== "policy")),
      opts,
      "InvalidArgument",
    ],
    [
      "SigV2 bad signature",
      v2Fields(policy, { signature: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
      opts,
      "SignatureDoesNotMatch",
    ],
    [
      "SigV2 unknown key",
      v2Fields(policy, { awsaccesskeyid: "NOBODY" }),
      opts,
      "InvalidAccessKeyId",
    ],
    ["anonymous", new Map([["key", "x"]]), opts, "AccessDenied"],
  ];
  it.each(cases)("%s → %s", (_name, fields, o, code) => {
    expect(codeOf(() => verifyPostSignature(fields, o))).toBe(code);
  });
});

describe("checkPolicy", () => {
  const fields = (extra: Record<string, string>): Map<string, string> =>
    new Map(Object.entries({ bucket: "b", key: "up/photo.jpg", policy, ...extra }));
  const p = (conditions: unknown[], expiration = "2026-12-02T04:00:00Z") =>
    parsePolicy(b64({ expiration, conditions }));
  const base = [{ bucket: "b" }, ["starts-with", "$key", "up/"]];
  const cases: [string, ReturnType<typeof p>, Map<string, string>, string][] = [
    ["all conditions met", p(base), fields({}), "ok"],
    ["expired", p(base, "2026-12-02T02:59:59Z"), fields({}), "AccessDenied"],
    ["other bucket", p(base), fields({ bucket: "c" }), "AccessDenied"],
    ["key outside starts-with", p(base), fields({ key: "down/x" }), "AccessDenied"],
    [
      "eq on a field",
      p([...base, ["eq", "$Content-Type", "image/jpeg"]]),
      fields({ "content-type": "image/jpeg" }),
      "ok",
    ],
    [
      "eq violated",
      p([...base, ["eq", "$Content-Type", "image/jpeg"]]),
      fields({ "content-type": "text/html" }),
      "AccessDenied",
    ],
    ["extra field not in the policy", p(base), fields({ "x-amz-meta-a": "1" }), "AccessDenied"],
    ["x-ignore- field needs no condition", p(base), fields({ "x-ignore-me": "1" }), "ok"],
    [
      "bucket not named by the policy",
      p([["starts-with", "$key", "up/"]]),
      fields({}),
      "AccessDenied",
    ],
    [
      "starts-with empty matches anything",
      p([...base, ["starts-with", "$x-amz-meta-a", ""]]),
      fields({ "x-amz-meta-a": "zz" }),
      "ok",
    ],
    [
      "content-type list, each must match",
      p([...base, ["starts-with", "$content-type", "image/"]]),
      fields({ "content-type": "image/png, text/plain" }),
      "AccessDenied",
    ],
  ];
  it.each(cases)("%s → %s", (_name, pol, f, code) => {
    expect(codeOf(() => checkPolicy(pol, { fields: f, now: NOW }))).toBe(code);
  });

  it("returns the content-length-range to enforce while the file streams", () => {
    const range = checkPolicy(p([...base, ["content-length-range", "10", "20"]]), {
      fields: fields({}),
      now: NOW,
    });
    expect(range).toEqual({ min: 10, max: 20 });
    expect(contentLengthOutOfRange(21, range).code).toBe("EntityTooLarge");
    expect(contentLengthOutOfRange(9, range).code).toBe("EntityTooSmall");
  });

  it.each([
    ["not base64 JSON", "%%%"],
    ["no expiration", b64({ conditions: [] })],
    ["no conditions", b64({ expiration: "2026-12-02T04:00:00Z" })],
    [
      "bad condition",
      b64({ expiration: "2026-12-02T04:00:00Z", conditions: [["gt", "$key", "a"]] }),
    ],
    [
      "inverted range",
      b64({ expiration: "2026-12-02T04:00:00Z", conditions: [["content-length-range", 5, 1]] }),
    ],
  ])("refuses a malformed policy: %s", (_name, text) => {
    expect(codeOf(() => parsePolicy(text))).toBe("InvalidPolicyDocument");
  });
});
