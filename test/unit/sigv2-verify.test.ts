// SigV2 verification: the AWS documentation's example, vectors signed by a real client
// (botocore 1.43's HmacV1Auth and HmacV1QueryAuth, recorded once), and the refusal table that
// SigV4 has (each case named).
import { describe, expect, it } from "vitest";
import { S3Error } from "../../s3/errors.js";
import { isSigV2Request, signV2, verifySigV2 } from "../../s3/sigv2-verify.js";
import { authenticate, credentialIndex } from "../../gateway/front/auth.js";
import { parseConfig } from "../../gateway/config.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const secrets: Record<string, string> = { AKIAIOSFODNN7EXAMPLE: SECRET, AKIDEXAMPLE: SECRET };
const lookupSecret = (id: string): string | undefined => secrets[id];
const NOW = new Date("2026-12-02T03:00:20Z");

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return "ok";
}

describe("verifySigV2: known signatures", () => {
  it("accepts the AWS documentation's virtual-hosted GET example", () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html
    const v = verifySigV2(
      {
        method: "GET",
        rawUrl: "/photos/puppy.jpg",
        rawHeaders: [
          "Host",
          "awsexamplebucket1.us-west-1.s3.amazonaws.com",
          "Date",
          "Tue, 27 Mar 2007 19:36:42 +0000",
          "Authorization",
          "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
        ],
      },
      {
        lookupSecret,
        region: "us-east-1",
        virtualHostBucket: "awsexamplebucket1",
        now: new Date("2007-03-27T19:40:00Z"),
      },
    );
    expect(v).toMatchObject({
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      authType: "header",
      payload: "unsigned",
    });
  });

  it("accepts botocore's PUT with Content-MD5, Content-Type, x-amz-meta and ?tagging", () => {
    const v = verifySigV2(
      {
        method: "PUT",
        rawUrl: "/bucket/a%20b%2Bc.txt?tagging",
        rawHeaders: [
          "Host",
          "127.0.0.1:9000",
          "Content-Type",
          "text/plain",
          "Content-MD5",
          "1B2M2Y8AsgTpgAmY7PhCfg==",
          "x-amz-meta-Foo",
          "  bar  baz ",
          "Date",
          "Wed, 02 Dec 2026 03:00:16 GMT",
          "Authorization",
          "AWS AKIDEXAMPLE:v9nZzNsNxMhk7WNHA4ATnRgzzF4=",
        ],
      },
      { lookupSecret, region: "us-east-1", now: NOW },
    );
    expect(v.signedHeaders).toEqual(["content-md5", "content-type", "x-amz-meta-foo"]);
  });

  it("signs only sub-resources, sorted, with decoded values (botocore's GET)", () => {
    expect(
      codeOf(() =>
        verifySigV2(
          {
            method: "GET",
            rawUrl: "/bucket/key?versionId=v1&response-content-type=text/html&prefix=x&uploads",
            rawHeaders: [
              "Date",
              "Wed, 02 Dec 2026 03:00:16 GMT",
              "Authorization",
              "AWS AKIDEXAMPLE:59PN0C+POeOMfPBTXaxnt8Ld1Rs=",
            ],
          },
          { lookupSecret, region: "us-east-1", now: NOW },
        ),
      ),
    ).toBe("ok");
  });

  it("accepts botocore's presigned URL with an encoded response override", () => {
    const rawUrl =
      "/bucket/k%2Fy?response-content-disposition=attachment%3B%20filename%3D%22x%22&AWSAccessKeyId=AKIDEXAMPLE&Signature=nszU4b6rQQqnAMRwIRAyLRZp%2B34%3D&Expires=1700003600";
    const v = verifySigV2(
      { method: "GET", rawUrl, rawHeaders: ["Host", "127.0.0.1:9000"] },
      { lookupSecret, region: "us-east-1", now: new Date(1_700_000_000_000) },
    );
    expect(v.authType).toBe("presigned");
  });

  it("accepts an empty Date line when x-amz-date is set (the AWS documentation's form)", () => {
    const date = "Wed, 02 Dec 2026 03:00:16 GMT";
    const sig = signV2(SECRET, `DELETE\n\n\n\nx-amz-date:${date}\n/bucket/k`);
    const req = (extra: string[]) => ({
      method: "DELETE",
      rawUrl: "/bucket/k",
      rawHeaders: ["x-amz-date", date, ...extra, "Authorization", `AWS AKIDEXAMPLE:${sig}`],
    });
    const opts = { lookupSecret, region: "us-east-1", now: NOW };
    expect(codeOf(() => verifySigV2(req([]), opts))).toBe("ok");
    // A proxy that added its own Date does not break it.
    expect(codeOf(() => verifySigV2(req(["Date", "Wed, 02 Dec 2026 03:00:17 GMT"]), opts))).toBe(
      "ok",
    );
  });
});

describe("verifySigV2: refusals", () => {
  const date = "Wed, 02 Dec 2026 03:00:16 GMT";
  const good = signV2(SECRET, `GET\n\n\n${date}\n/bucket/k`);
  const header = (auth: string, d = date) => ({
    method: "GET",
    rawUrl: "/bucket/k",
    rawHeaders: ["Date", d, "Authorization", auth],
  });
  const presigned = (query: string) => ({
    method: "GET",
    rawUrl: `/bucket/k?${query}`,
    rawHeaders: [],
  });
  const expires = Math.floor(NOW.getTime() / 1000) + 60;
  const presig = signV2(SECRET, `GET\n\n\n${expires}\n/bucket/k`);
  const cases: [string, Parameters<typeof verifySigV2>[0], string][] = [
    ["good header", header(`AWS AKIDEXAMPLE:${good}`), "ok"],
    ["unknown key", header(`AWS NOBODY:${good}`), "InvalidAccessKeyId"],
    [
      "bad signature",
      header("AWS AKIDEXAMPLE:AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
      "SignatureDoesNotMatch",
    ],
    ["signature not base64", header("AWS AKIDEXAMPLE:not-a-signature"), "SignatureDoesNotMatch"],
    ["malformed header", header("AWS AKIDEXAMPLE"), "InvalidArgument"],
    [
      "no date",
      {
        method: "GET",
        rawUrl: "/bucket/k",
        rawHeaders: ["Authorization", `AWS AKIDEXAMPLE:${good}`],
      },
      "AccessDenied",
    ],
    [
      "skewed by an hour",
      header(
        `AWS AKIDEXAMPLE:${signV2(SECRET, "GET\n\n\nWed, 02 Dec 2026 02:00:16 GMT\n/bucket/k")}`,
        "Wed, 02 Dec 2026 02:00:16 GMT",
      ),
      "RequestTimeTooSkewed",
    ],
    [
      "other method",
      { ...header(`AWS AKIDEXAMPLE:${good}`), method: "DELETE" },
      "SignatureDoesNotMatch",
    ],
    [
      "added x-amz header",
      {
        ...header(`AWS AKIDEXAMPLE:${good}`),
        rawHeaders: [
          "Date",
          date,
          "x-amz-copy-source",
          "/other/k",
          "Authorization",
          `AWS AKIDEXAMPLE:${good}`,
        ],
      },
      "SignatureDoesNotMatch",
    ],
    [
      "both header and query",
      { ...header(`AWS AKIDEXAMPLE:${good}`), rawUrl: "/bucket/k?Signature=x" },
      "InvalidArgument",
    ],
    [
      "good presigned",
      presigned(
        `AWSAccessKeyId=AKIDEXAMPLE&Expires=${expires}&Signature=${encodeURIComponent(presig)}`,
      ),
      "ok",
    ],
    [
      "presigned expired",
      presigned(
        `AWSAccessKeyId=AKIDEXAMPLE&Expires=100&Signature=${encodeURIComponent(signV2(SECRET, "GET\n\n\n100\n/bucket/k"))}`,
      ),
      "AccessDenied",
    ],
    [
      "presigned Expires changed",
      presigned(
        `AWSAccessKeyId=AKIDEXAMPLE&Expires=${expires + 1}&Signature=${encodeURIComponent(presig)}`,
      ),
      "SignatureDoesNotMatch",
    ],
    [
      "presigned without Expires",
      presigned(`AWSAccessKeyId=AKIDEXAMPLE&Signature=${encodeURIComponent(presig)}`),
      "AccessDenied",
    ],
    [
      "presigned unknown key",
      presigned(`AWSAccessKeyId=NOBODY&Expires=${expires}&Signature=${encodeURIComponent(presig)}`),
      "InvalidAccessKeyId",
    ],
    [
      "presigned other key path",
      {
        ...presigned(
          `AWSAccessKeyId=AKIDEXAMPLE&Expires=${expires}&Signature=${encodeURIComponent(presig)}`,
        ),
        rawUrl: `/bucket/other?AWSAccessKeyId=AKIDEXAMPLE&Expires=${expires}&Signature=${encodeURIComponent(presig)}`,
      },
      "SignatureDoesNotMatch",
    ],
  ];
  it.each(cases)("%s → %s", (_name, req, code) => {
    expect(codeOf(() => verifySigV2(req, { lookupSecret, region: "us-east-1", now: NOW }))).toBe(
      code,
    );
  });

  it("detects SigV2 requests by header or query", () => {
    expect(
      isSigV2Request({ method: "GET", rawUrl: "/b", rawHeaders: ["authorization", "AWS a:b"] }),
    ).toBe(true);
    expect(isSigV2Request({ method: "GET", rawUrl: "/b?AWSAccessKeyId=a", rawHeaders: [] })).toBe(
      true,
    );
    expect(isSigV2Request({ method: "GET", rawUrl: "/b?X-Amz-Signature=a", rawHeaders: [] })).toBe(
      false,
    );
    expect(
      isSigV2Request({
        method: "GET",
        rawUrl: "/b",
        rawHeaders: ["Authorization", "AWS4-HMAC-SHA256 x"],
      }),
    ).toBe(false);
  });
});

describe("authenticate: auth.sigv2", () => {
  const date = new Date().toUTCString();
  const req = {
    method: "GET",
    rawUrl: "/bucket/k",
    rawHeaders: [
      "Date",
      date,
      "Authorization",
      `AWS AKIDEXAMPLE:${signV2(SECRET, `GET\n\n\n${date}\n/bucket/k`)}`,
    ],
  };
  const credentials = [
    {
      accessKey: "AKIDEXAMPLE",
      secretKey: SECRET,
      role: "user" as const,
      buckets: undefined,
      readOnly: false,
    },
  ];
  it("verifies SigV2 by default", () => {
    const index = credentialIndex({ credentials, region: "us-east-1" });
    expect(authenticate(req, index).principal.credential.accessKey).toBe("AKIDEXAMPLE");
  });
  it("refuses SigV2 as SigV4 does when auth.sigv2 is false", () => {
    const index = credentialIndex({ credentials, region: "us-east-1", auth: { sigv2: false } });
    expect(codeOf(() => authenticate(req, index))).toBe("InvalidRequest");
  });
});

describe("config: auth.sigv2", () => {
  const base = [
    "listen: 127.0.0.1:0",
    'target: { endpoint: "http://127.0.0.1:9000", accessKey: k, secretKey: "secret-secret" }',
    'credentials: [{ accessKey: user1, secretKey: "user-secret-1" }]',
    "state: { path: state.json }",
  ].join("\n");
  const parse = (extra: string) => parseConfig(`${base}\n${extra}`, { env: {}, baseDir: "/tmp" });
  it("defaults to on, and `auth.sigv2: false` turns it off", () => {
    expect(parse("").auth.sigv2).toBe(true);
    expect(parse("auth: { sigv2: false }").auth.sigv2).toBe(false);
  });
  it("refuses a value that is not a boolean and unknown auth keys", () => {
    expect(() => parse("auth: { sigv2: maybe }")).toThrow(/auth\.sigv2/);
    expect(() => parse("auth: { sigv3: true }")).toThrow(/auth/);
  });
});
