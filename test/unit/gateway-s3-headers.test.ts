import { describe, expect, it } from "vitest";
import {
  relayedResponseHeaders,
  stripAwsChunked,
  upstreamQuery,
  upstreamRequestHeaders,
} from "../../gateway/upstream/headers.js";
import { parseRawQuery } from "../../s3/sigv4-canonical.js";

describe("upstreamRequestHeaders", () => {
  it("drops hop-by-hop, Connection-named, auth, framing and forwarding headers", () => {
    const out = upstreamRequestHeaders([
      "Host",
      "gw.example.com",
      "Connection",
      "keep-alive, X-Secret-Hop",
      "X-Secret-Hop",
      "1",
      "Keep-Alive",
      "timeout=5",
      "Transfer-Encoding",
      "chunked",
      "TE",
      "trailers",
      "Upgrade",
      "h2c",
      "Authorization",
      "AWS4-HMAC-SHA256 Credential=...",
      "X-Amz-Date",
      "20240101T000000Z",
      "X-Amz-Content-Sha256",
      "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
      "X-Amz-Security-Token",
      "tok",
      "Expect",
      "100-continue",
      "Content-Length",
      "123",
      "X-Amz-Decoded-Content-Length",
      "100",
      "X-Amz-Trailer",
      "x-amz-checksum-crc32",
      "X-Amz-Sdk-Checksum-Algorithm",
      "CRC32",
      "X-Forwarded-Host",
      "other.s3.example.com",
      "Forwarded",
      "host=other",
      "Content-Type",
      "text/plain",
      "X-Amz-Meta-A",
      "1",
      "X-Amz-Meta-A",
      "2",
      "Content-MD5",
      "abc==",
      "X-Amz-Copy-Source",
      "/b/k",
    ]);
    expect(out).toEqual({
      "content-type": "text/plain",
      "x-amz-meta-a": "1,2",
      "content-md5": "abc==",
      "x-amz-copy-source": "/b/k",
    });
  });

  it("keeps x-amz-sdk-checksum-algorithm and x-amz-checksum-* when there is no trailer", () => {
    expect(
      upstreamRequestHeaders([
        "x-amz-sdk-checksum-algorithm",
        "CRC32",
        "x-amz-checksum-crc32",
        "AAAAAA==",
      ]),
    ).toEqual({ "x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": "AAAAAA==" });
  });

  it("takes aws-chunked out of Content-Encoding and drops the header when nothing is left", () => {
    expect(upstreamRequestHeaders(["Content-Encoding", "aws-chunked"])).toEqual({});
    expect(upstreamRequestHeaders(["Content-Encoding", "aws-chunked,gzip"])).toEqual({
      "content-encoding": "gzip",
    });
    expect(stripAwsChunked("gzip, AWS-CHUNKED ,br")).toBe("gzip,br");
  });
});

describe("upstreamQuery", () => {
  it("passes every parameter through except presigned authentication", () => {
    const params = parseRawQuery(
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-Date=1&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ff&X-Amz-Security-Token=t&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&uploads&prefix=a%2Bb&prefix=c&response-content-type=text%2Fplain",
    );
    expect(upstreamQuery(params)).toEqual([
      ["uploads", ""],
      ["prefix", "a+b"],
      ["prefix", "c"],
      ["response-content-type", "text/plain"],
    ]);
  });
});

describe("relayedResponseHeaders", () => {
  it("drops hop-by-hop headers, Connection-named ones and the backend's identity", () => {
    expect(
      relayedResponseHeaders({
        connection: "keep-alive, x-hop",
        "x-hop": "1",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        "x-amz-request-id": "BACKEND",
        "x-amz-id-2": "host-id",
        server: "MinIO",
        "content-length": "5",
        etag: '"abc"',
        "x-amz-meta-x": "y",
        "set-cookie": ["a=1", "b=2"],
        vary: undefined,
      }),
    ).toEqual({
      "content-length": "5",
      etag: '"abc"',
      "x-amz-meta-x": "y",
      "set-cookie": ["a=1", "b=2"],
    });
  });
});
