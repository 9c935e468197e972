import { describe, expect, it } from "vitest";
import { parseConfig } from "../../gateway/config.js";
import {
  authenticate,
  authorize,
  credentialIndex,
  isWriteRequest,
  parseCopySource,
  type CopySource,
} from "../../gateway/front/auth.js";
import { S3Error } from "../../s3/errors.js";
import { EMPTY_SHA256 } from "../../s3/sigv4-canonical.js";
import { signRequest } from "../../s3/sigv4-sign.js";

const config = parseConfig(
  [
    "listen: 127.0.0.1:0",
    "target: { endpoint: http://127.0.0.1:9000, accessKey: t, secretKey: tsecret12 }",
    "credentials:",
    "  - { accessKey: alice, secretKey: alice-secret }",
    "  - { accessKey: reader, secretKey: reader-secret, readOnly: true }",
    "  - { accessKey: limited, secretKey: limited-secret, buckets: [team-*, logs] }",
    "  - { accessKey: mig, secretKey: mig-secret-1, role: migrator }",
    "  - { accessKey: boss, secretKey: boss-secret, role: admin }",
    "state: { path: /tmp/unused.json }",
  ].join("\n"),
  { env: {}, baseDir: "/tmp" },
);
const index = credentialIndex(config);
const principal = (id: string) => {
  const p = index.byAccessKey.get(id);
  if (p === undefined) throw new Error(id);
  return p;
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof S3Error ? err.code : "not an S3Error";
  }
}

function signedGet(accessKeyId: string, secretAccessKey: string) {
  const headers = { host: "gw.example.com" };
  const auth = signRequest(
    { method: "GET", path: "/bkt/key", headers, payloadHash: EMPTY_SHA256 },
    { accessKeyId, secretAccessKey },
    { region: "us-east-1" },
  );
  const all: Record<string, string> = { ...headers, ...auth };
  return { method: "GET", rawUrl: "/bkt/key", rawHeaders: Object.entries(all).flat() };
}

describe("authenticate", () => {
  it("returns the principal of a valid signature", () => {
    const a = authenticate(signedGet("alice", "alice-secret"), index);
    expect(a.principal.credential.accessKey).toBe("alice");
    expect(a.verified.payload).toBe("hex");
  });

  it("refuses admin credentials even with a valid signature", () => {
    expect(code(() => authenticate(signedGet("boss", "boss-secret"), index))).toBe("AccessDenied");
  });

  it("refuses unknown keys and bad signatures with S3 codes", () => {
    expect(code(() => authenticate(signedGet("nobody", "whatever-1"), index))).toBe(
      "InvalidAccessKeyId",
    );
    expect(code(() => authenticate(signedGet("alice", "not-alice"), index))).toBe(
      "SignatureDoesNotMatch",
    );
  });
});

describe("isWriteRequest", () => {
  it.each([
    ["GET", "GetObject", false],
    ["HEAD", "HeadObject", false],
    ["POST", "SelectObjectContent", false],
    ["POST", "DeleteObjects", true],
    ["POST", "RestoreObject", true],
    ["POST", "CreateMultipartUpload", true],
    ["PUT", "PutObject", true],
    ["DELETE", "DeleteObject", true],
    ["OPTIONS", "UnknownObjectOperation", true],
    ["PATCH", "UnknownObjectOperation", true],
  ] as const)("%s %s → %s", (method, operation, write) => {
    expect(isWriteRequest(method, operation)).toBe(write);
  });
});

describe("parseCopySource", () => {
  it.each([
    ["src/key", { bucket: "src", rawRest: "key" }],
    ["/src/a%20b/c?versionId=1", { bucket: "src", rawRest: "a%20b/c?versionId=1" }],
    ["src%2Dx/k", { bucket: "src-x", rawRest: "k" }],
  ])("%s", (value, expected) => {
    expect(parseCopySource(value)).toEqual(expected);
  });

  it.each(["src", "src/", "/k", "%zz/k", "a%2Fb/k"])("%s is InvalidArgument", (value) => {
    expect(code(() => parseCopySource(value))).toBe("InvalidArgument");
  });
});

describe("authorize", () => {
  const check = (
    id: string,
    method: string,
    operation: string,
    bucket: string | undefined,
    copySource?: CopySource,
  ) => code(() => authorize({ principal: principal(id), method, operation, bucket, copySource }));

  it("lets an unrestricted user do anything on any bucket", () => {
    expect(check("alice", "PUT", "PutObject", "any")).toBeUndefined();
    expect(
      check("alice", "PUT", "CopyObject", "any", { bucket: "other", rawRest: "k" }),
    ).toBeUndefined();
  });

  it("keeps a read-only user to reads", () => {
    expect(check("reader", "GET", "GetObject", "b")).toBeUndefined();
    expect(check("reader", "GET", "ListBuckets", undefined)).toBeUndefined();
    expect(check("reader", "PUT", "PutObject", "b")).toBe("AccessDenied");
    expect(check("reader", "POST", "DeleteObjects", "b")).toBe("AccessDenied");
    expect(check("reader", "DELETE", "DeleteObject", "b")).toBe("AccessDenied");
  });

  it("keeps a bucket-limited user to its globs, copy sources included", () => {
    expect(check("limited", "PUT", "PutObject", "team-a")).toBeUndefined();
    expect(check("limited", "GET", "GetObject", "logs")).toBeUndefined();
    expect(check("limited", "GET", "GetObject", "logs2")).toBe("AccessDenied");
    expect(check("limited", "GET", "GetObject", "other")).toBe("AccessDenied");
    expect(
      check("limited", "PUT", "CopyObject", "team-a", { bucket: "team-b", rawRest: "k" }),
    ).toBeUndefined();
    expect(
      check("limited", "PUT", "CopyObject", "team-a", { bucket: "secret", rawRest: "k" }),
    ).toBe("AccessDenied");
    expect(
      check("limited", "PUT", "UploadPartCopy", "team-a", { bucket: "secret", rawRest: "k" }),
    ).toBe("AccessDenied");
    expect(check("limited", "GET", "ListBuckets", undefined)).toBeUndefined();
    expect(check("limited", "GET", "UnknownServiceOperation", undefined)).toBe("AccessDenied");
  });
});
