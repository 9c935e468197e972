/**
 * The S3 worked examples of the Amazon S3 API Reference, asserted exactly:
 * "Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk"
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, GET object
 * with Range, PUT object, GET bucket lifecycle, GET bucket list) and "Authenticating Requests:
 * Using Query Parameters" (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html,
 * presigned GET). Each signed request also goes through our verifier.
 */
import { describe, expect, it } from "vitest";
import {
  EMPTY_SHA256,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  collectHeaders,
  credentialScope,
  sha256Hex,
  stringToSign,
} from "../../s3/sigv4-canonical.js";
import { presignUrl, signRequest } from "../../s3/sigv4-sign.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import { uriEncode } from "../../s3/uri-encode.js";

const CREDS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const HOST = "examplebucket.s3.amazonaws.com";
const NOW = new Date("2013-05-24T00:00:00Z");
const OPTS = { region: "us-east-1", now: NOW };
const VERIFY = {
  region: "us-east-1",
  now: NOW,
  lookupSecret: (ak: string) => (ak === CREDS.accessKeyId ? CREDS.secretAccessKey : undefined),
};

function signatureOf(authorization: string | undefined): string {
  return /Signature=([0-9a-f]{64})$/.exec(authorization ?? "")?.[1] ?? "";
}

/** Verifies a header-signed request built from our signer's output, as a server would see it. */
function verifySigned(
  method: string,
  rawUrl: string,
  headers: Record<string, string>,
  added: Record<string, string>,
) {
  const rawHeaders = Object.entries({ ...headers, ...added }).flat();
  return verifySigV4({ method, rawUrl, rawHeaders }, VERIFY);
}

describe("S3 API Reference worked examples (single chunk)", () => {
  it("GET Object with Range: canonical request, string to sign and signature", () => {
    const headers = { host: HOST, range: "bytes=0-9" };
    const added = signRequest(
      { method: "GET", path: "/test.txt", headers, payloadHash: EMPTY_SHA256 },
      CREDS,
      OPTS,
    );
    // The canonical request and string to sign as printed in the example.
    const names = ["host", "range", "x-amz-content-sha256", "x-amz-date"];
    const creq = canonicalRequest({
      method: "GET",
      canonicalUri: "/test.txt",
      canonicalQuery: "",
      canonicalHeaders: canonicalHeaders(
        collectHeaders(Object.entries({ ...headers, ...added })),
        names,
      ),
      signedHeaders: names,
      payloadHash: EMPTY_SHA256,
    });
    expect(creq).toBe(
      [
        "GET",
        "/test.txt",
        "",
        "host:examplebucket.s3.amazonaws.com",
        "range:bytes=0-9",
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date:20130524T000000Z",
        "",
        "host;range;x-amz-content-sha256;x-amz-date",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      ].join("\n"),
    );
    expect(
      stringToSign("20130524T000000Z", credentialScope("20130524", "us-east-1", "s3"), creq),
    ).toBe(
      [
        "AWS4-HMAC-SHA256",
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
      ].join("\n"),
    );
    expect(added.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    expect(added["x-amz-date"]).toBe("20130524T000000Z");
    expect(added["x-amz-content-sha256"]).toBe(EMPTY_SHA256);

    const v = verifySigned("GET", "/test.txt", headers, added);
    expect(v).toMatchObject({
      accessKeyId: CREDS.accessKeyId,
      payload: "hex",
      payloadSha256: EMPTY_SHA256,
    });
  });

  it("PUT Object: a $ in the key, a Date header and a storage class, signed payload", () => {
    const body = "Welcome to Amazon S3.";
    const payloadHash = sha256Hex(body);
    expect(payloadHash).toBe("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const path = "/" + uriEncode("test$file.text");
    expect(path).toBe("/test%24file.text");
    const headers = {
      date: "Fri, 24 May 2013 00:00:00 GMT",
      host: HOST,
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
    };
    const added = signRequest({ method: "PUT", path, headers, payloadHash }, CREDS, OPTS);
    expect(added.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, " +
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    // The client sends the $ raw; the verifier still canonicalizes it to %24.
    expect(verifySigned("PUT", "/test$file.text", headers, added).payloadSha256).toBe(payloadHash);
  });

  it("GET Bucket Lifecycle: a valueless subresource is lifecycle=", () => {
    expect(canonicalQuery([["lifecycle", ""]])).toBe("lifecycle=");
    const headers = { host: HOST };
    const added = signRequest(
      { method: "GET", path: "/", query: [["lifecycle", ""]], headers, payloadHash: EMPTY_SHA256 },
      CREDS,
      OPTS,
    );
    expect(signatureOf(added.authorization)).toBe(
      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    expect(() => verifySigned("GET", "/?lifecycle", headers, added)).not.toThrow();
  });

  it("GET Bucket (List Objects): query sorted by name", () => {
    expect(
      canonicalQuery([
        ["prefix", "J"],
        ["max-keys", "2"],
      ]),
    ).toBe("max-keys=2&prefix=J");
    const headers = { host: HOST };
    const added = signRequest(
      {
        method: "GET",
        path: "/",
        query: [
          ["prefix", "J"],
          ["max-keys", "2"],
        ],
        headers,
        payloadHash: EMPTY_SHA256,
      },
      CREDS,
      OPTS,
    );
    expect(signatureOf(added.authorization)).toBe(
      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    expect(() => verifySigned("GET", "/?prefix=J&max-keys=2", headers, added)).not.toThrow();
  });
});

describe("S3 API Reference worked example (query parameters)", () => {
  it("presigned GET of test.txt, 86400 seconds", () => {
    const url = presignUrl({ method: "GET", origin: `https://${HOST}`, path: "/test.txt" }, CREDS, {
      ...OPTS,
      expiresSeconds: 86400,
    });
    expect(url).toBe(
      "https://examplebucket.s3.amazonaws.com/test.txt" +
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
    );
    const u = new URL(url);
    const v = verifySigV4(
      { method: "GET", rawUrl: u.pathname + u.search, rawHeaders: ["Host", HOST] },
      VERIFY,
    );
    expect(v).toMatchObject({
      authType: "presigned",
      payload: "unsigned",
      signedHeaders: ["host"],
    });
  });
});
