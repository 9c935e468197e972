import { describe, it, expect } from "vitest";
import { S3Error } from "../../s3/errors.js";
import {
  S3_XMLNS,
  buildCompleteMultipartUpload,
  buildCompleteMultipartUploadResult,
  buildCopyObjectResult,
  buildCopyPartResult,
  buildDeleteRequest,
  buildDeleteResult,
  buildInitiateMultipartUploadResult,
  buildListAllMyBucketsResult,
  buildListBucketResultV1,
  buildListBucketResultV2,
  buildListMultipartUploadsResult,
  buildListPartsResult,
  buildTagging,
  decodeXmlText,
  escapeXmlText,
  parseCompleteMultipartUpload,
  parseCompleteMultipartUploadResult,
  parseCopyObjectResult,
  parseCopyPartResult,
  parseDeleteRequest,
  parseDeleteResult,
  parseErrorDocument,
  parseInitiateMultipartUploadResult,
  parseListAllMyBucketsResult,
  parseListBucketResultV1,
  parseListBucketResultV2,
  parseListMultipartUploadsResult,
  parseListPartsResult,
  parseTagging,
  s3UrlDecode,
  s3UrlEncode,
  type DeleteRequest,
  type ListBucketResultV1,
  type ListBucketResultV2,
  type ListMultipartUploadsResult,
  type ListPartsResult,
} from "../../s3/xml.js";

/** Keys that break naive XML handling: coercion, trimming, escaping, unicode, controls. */
const TRICKY_KEYS = [
  "0001",
  "true",
  "1e3",
  " spaced ",
  "  ",
  "a&b<c>d\"e'f",
  "&amp;lt;",
  "caf\u00e9",
  "cafe\u0301",
  "\u{1F600}/x",
  "line\r\nbreak\ttab",
  "ctl\u0001\u001f",
  "a//b",
  "]]>",
];

function malformed(fn: () => unknown): S3Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(S3Error);
    expect((err as S3Error).code).toBe("MalformedXML");
    return err as S3Error;
  }
  throw new Error("expected MalformedXML");
}

describe("text escaping", () => {
  it("decodes predefined entities and character references exactly once", () => {
    expect(decodeXmlText("&amp;lt; &lt; &#13; &#x41; &#x1F600; &quot;&apos;&gt;")).toBe(
      "&lt; < \r A \u{1F600} \"'>",
    );
  });
  it("rejects unknown entities, bare ampersands and invalid references", () => {
    malformed(() => decodeXmlText("&b;"));
    malformed(() => decodeXmlText("a & b"));
    malformed(() => decodeXmlText("&#0;"));
    malformed(() => decodeXmlText("&#xD800;"));
    malformed(() => decodeXmlText("&#x110000;"));
  });
  it("escapes markup and control characters; a CR survives as a reference", () => {
    expect(escapeXmlText("a&<>\"'\r\n\t\u0001")).toBe("a&amp;&lt;&gt;&quot;&apos;&#13;\n\t&#1;");
    for (const key of TRICKY_KEYS) expect(decodeXmlText(escapeXmlText(key))).toBe(key);
  });
});

describe("ListBucketResult", () => {
  const v2: ListBucketResultV2 = {
    name: "bucket",
    prefix: "",
    delimiter: "/",
    maxKeys: 1000,
    keyCount: TRICKY_KEYS.length + 2,
    isTruncated: true,
    continuationToken: "tok+/=",
    nextContinuationToken: "next&token",
    startAfter: "0000",
    contents: TRICKY_KEYS.map((key, i) => ({
      key,
      lastModified: "2024-01-02T03:04:05.000Z",
      etag: `"${i}abc"`,
      size: i * 1_000_000_007,
      storageClass: "STANDARD",
      owner: { id: "owner-id", displayName: "minio" },
    })),
    commonPrefixes: ["dir/", " sp /"],
  };

  it("v2 round-trips every tricky key, size and field, with the S3 namespace", () => {
    const xml = buildListBucketResultV2(v2);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(xml).toContain(`<ListBucketResult xmlns="${S3_XMLNS}">`);
    expect(parseListBucketResultV2(xml)).toEqual(v2);
  });

  it("v1 round-trips with Marker and NextMarker", () => {
    const v1: ListBucketResultV1 = {
      name: "b",
      prefix: "p/",
      marker: "p/0001",
      nextMarker: "p/true",
      maxKeys: 2,
      isTruncated: true,
      contents: [{ key: "p/0001", lastModified: "x", etag: '"e"', size: 0 }],
      commonPrefixes: [],
      delimiter: "/",
      encodingType: "url",
    };
    expect(parseListBucketResultV1(buildListBucketResultV1(v1))).toEqual(v1);
  });

  it("keeps values as strings: no number or boolean coercion, no trimming", () => {
    const xml = `<ListBucketResult><Name>0001</Name><Prefix> true </Prefix><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated>
      <Contents><Key>0001</Key><Size>7</Size><ETag>"0001"</ETag></Contents></ListBucketResult>`;
    const r = parseListBucketResultV2(xml);
    expect(r.name).toBe("0001");
    expect(r.prefix).toBe(" true ");
    expect(r.contents[0]?.key).toBe("0001");
    expect(r.contents[0]?.etag).toBe('"0001"');
  });

  it("a single Contents or CommonPrefixes reads as an array, and so do none", () => {
    const one = `<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents><CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes></ListBucketResult>`;
    const r1 = parseListBucketResultV2(one);
    expect(r1.contents.map((c) => c.key)).toEqual(["a"]);
    expect(r1.commonPrefixes).toEqual(["d/"]);
    const two = `<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents><Contents><Key>b</Key><Size>2</Size></Contents></ListBucketResult>`;
    expect(parseListBucketResultV2(two).contents.map((c) => c.key)).toEqual(["a", "b"]);
    const none = `<ListBucketResult><Name>b</Name><Prefix/><KeyCount>0</KeyCount></ListBucketResult>`;
    const r0 = parseListBucketResultV2(none);
    expect(r0.contents).toEqual([]);
    expect(r0.commonPrefixes).toEqual([]);
    expect(r0.prefix).toBe("");
  });

  it("reads a key written as CDATA and as character references", () => {
    const xml = `<ListBucketResult><Contents><Key><![CDATA[a&amp;<b>]]></Key><Size>1</Size></Contents><Contents><Key>x&#13;y</Key><Size>1</Size></Contents></ListBucketResult>`;
    expect(parseListBucketResultV2(xml).contents.map((c) => c.key)).toEqual(["a&amp;<b>", "x\ry"]);
  });

  it("rejects a non-numeric Size and a repeated Key", () => {
    malformed(() =>
      parseListBucketResultV2(
        `<ListBucketResult><Contents><Key>a</Key><Size>1x</Size></Contents></ListBucketResult>`,
      ),
    );
    malformed(() =>
      parseListBucketResultV2(
        `<ListBucketResult><Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents></ListBucketResult>`,
      ),
    );
  });
});

describe("hostile documents", () => {
  it("refuses an entity-expansion (billion laughs) document without expanding it", () => {
    const bomb = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Delete><Object><Key>&lol3;</Key></Object></Delete>`;
    malformed(() => parseDeleteRequest(bomb));
  });

  it("refuses an external entity", () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>`;
    malformed(() => parseDeleteRequest(xxe));
  });

  it("an undeclared entity reference is not expanded into anything", () => {
    malformed(() => parseDeleteRequest(`<Delete><Object><Key>&x;</Key></Object></Delete>`));
  });

  it("refuses an oversized body before parsing it (even if it is not XML at all)", () => {
    const huge = "x".repeat(2 * 1024 * 1024 + 1);
    const err = malformed(() => parseDeleteRequest(huge));
    expect(err.message).toMatch(/larger than the maximum/);
    malformed(() => parseTagging(Buffer.alloc(65), { maxBytes: 64 }));
  });

  it("refuses ill-formed XML, a wrong root and trailing documents", () => {
    malformed(() => parseDeleteRequest("<Delete><Object><Key>a</Key></Delete>"));
    malformed(() => parseDeleteRequest("not xml"));
    malformed(() => parseDeleteRequest(""));
    malformed(() => parseDeleteRequest("<Remove><Object><Key>a</Key></Object></Remove>"));
    malformed(() => parseDeleteRequest("<Delete><Object><Key>a</Key></Object></Delete><Delete/>"));
  });
});

describe("Delete and DeleteResult", () => {
  it("round-trips a request, keeping whitespace and coercible keys", () => {
    const req: DeleteRequest = {
      quiet: true,
      objects: [...TRICKY_KEYS.map((key) => ({ key })), { key: "v", versionId: "null" }],
    };
    expect(parseDeleteRequest(buildDeleteRequest(req))).toEqual(req);
  });

  it("reads a request without Quiet and without namespace, as SDKs send it", () => {
    const r = parseDeleteRequest(
      `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="${S3_XMLNS}"><Object><Key> a </Key></Object></Delete>`,
    );
    expect(r).toEqual({ quiet: false, objects: [{ key: " a " }] });
  });

  it("refuses zero objects and more than 1,000", () => {
    malformed(() => parseDeleteRequest("<Delete><Quiet>true</Quiet></Delete>"));
    const many = buildDeleteRequest({
      quiet: false,
      objects: Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}` })),
    });
    malformed(() => parseDeleteRequest(many));
    expect(parseDeleteRequest(many, { maxObjects: 1001 }).objects).toHaveLength(1001);
  });

  it("round-trips a result with deleted entries and errors (Error is repeatable here)", () => {
    const one = {
      deleted: [{ key: "0001" }],
      errors: [{ key: "x", code: "AccessDenied", message: "Access Denied" }],
    };
    expect(parseDeleteResult(buildDeleteResult(one))).toEqual(one);
    const more = {
      deleted: [
        { key: " a ", versionId: "v1", deleteMarker: true, deleteMarkerVersionId: "dm" },
        { key: "b" },
      ],
      errors: [
        { key: "c", code: "InternalError", message: "m", versionId: "v" },
        { key: "d", code: "AccessDenied", message: "" },
      ],
    };
    expect(parseDeleteResult(buildDeleteResult(more))).toEqual(more);
  });
});

describe("multipart documents", () => {
  it("CompleteMultipartUpload round-trips parts in the order sent, with checksums", () => {
    const req = {
      parts: [
        { partNumber: 1, etag: '"a"', checksums: { ChecksumCRC32: "AAAAAA==" } },
        { partNumber: 3, etag: '"c"' },
        { partNumber: 2, etag: '"b"' },
      ],
    };
    expect(parseCompleteMultipartUpload(buildCompleteMultipartUpload(req))).toEqual(req);
  });

  it("CompleteMultipartUpload refuses a non-numeric PartNumber and an empty list", () => {
    malformed(() =>
      parseCompleteMultipartUpload(
        "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
      ),
    );
    malformed(() => parseCompleteMultipartUpload("<CompleteMultipartUpload/>"));
  });

  it("CompleteMultipartUpload with 10,000 parts fits the default cap", () => {
    const parts = Array.from({ length: 10_000 }, (_, i) => ({
      partNumber: i + 1,
      etag: `"${"0123456789abcdef".repeat(2)}"`,
      checksums: { ChecksumSHA256: "x".repeat(44) },
    }));
    expect(
      parseCompleteMultipartUpload(buildCompleteMultipartUpload({ parts })).parts,
    ).toHaveLength(10_000);
  });

  it("result documents round-trip", () => {
    const complete = { location: "http://h/b/k", bucket: "b", key: " k ", etag: '"abc-3"' };
    expect(
      parseCompleteMultipartUploadResult(buildCompleteMultipartUploadResult(complete)),
    ).toEqual(complete);
    const init = { bucket: "b", key: "0001", uploadId: "u+/=" };
    expect(parseInitiateMultipartUploadResult(buildInitiateMultipartUploadResult(init))).toEqual(
      init,
    );
    const copy = { lastModified: "2024-01-01T00:00:00.000Z", etag: '"e"' };
    expect(parseCopyObjectResult(buildCopyObjectResult(copy))).toEqual(copy);
    expect(parseCopyPartResult(buildCopyPartResult(copy))).toEqual(copy);
    expect(() => parseCopyPartResult(buildCopyObjectResult(copy))).toThrow(S3Error);
  });

  it("accepts keep-alive whitespace around a result document", () => {
    const padded = `  \n\n${buildCopyObjectResult({ lastModified: "t", etag: '"e"' })}\n   `;
    expect(parseCopyObjectResult(padded).etag).toBe('"e"');
  });

  it("ListParts and ListMultipartUploads round-trip", () => {
    const parts: ListPartsResult = {
      bucket: "b",
      key: "k",
      uploadId: "u",
      partNumberMarker: 0,
      nextPartNumberMarker: 2,
      maxParts: 2,
      isTruncated: true,
      initiator: { id: "i", displayName: "d" },
      owner: { id: "o" },
      storageClass: "STANDARD",
      parts: [
        { partNumber: 1, lastModified: "t", etag: '"1"', size: 5 * 1024 * 1024 },
        { partNumber: 2, lastModified: "t", etag: '"2"', size: 1 },
      ],
    };
    expect(parseListPartsResult(buildListPartsResult(parts))).toEqual(parts);
    const uploads: ListMultipartUploadsResult = {
      bucket: "b",
      keyMarker: "",
      uploadIdMarker: "",
      nextKeyMarker: "0001",
      nextUploadIdMarker: "u1",
      prefix: "",
      delimiter: "/",
      maxUploads: 1,
      isTruncated: true,
      uploads: [{ key: "0001", uploadId: "u1", initiated: "t", initiator: { id: "x" } }],
      commonPrefixes: ["d/"],
    };
    expect(parseListMultipartUploadsResult(buildListMultipartUploadsResult(uploads))).toEqual(
      uploads,
    );
  });
});

describe("Tagging, buckets and errors", () => {
  it("Tagging round-trips, including an empty value and an empty set", () => {
    const tags = [
      { key: "0001", value: "true" },
      { key: " k ", value: "" },
      { key: "é&", value: "<v>" },
    ];
    expect(parseTagging(buildTagging(tags))).toEqual(tags);
    expect(parseTagging(buildTagging([]))).toEqual([]);
    malformed(() => parseTagging("<Tagging/>"));
  });

  it("ListAllMyBucketsResult round-trips one and many buckets", () => {
    const one = {
      owner: { id: "o", displayName: "n" },
      buckets: [{ name: "b1", creationDate: "t" }],
    };
    expect(parseListAllMyBucketsResult(buildListAllMyBucketsResult(one))).toEqual(one);
    const none = { buckets: [] };
    expect(parseListAllMyBucketsResult(buildListAllMyBucketsResult(none))).toEqual(none);
  });

  it("the Error parser keeps safe fields and never reads StringToSign or CanonicalRequest", () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message>
<AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign>
<CanonicalRequest>GET /</CanonicalRequest><Key>k</Key><BucketName>b</BucketName>
<Resource>/b/k</Resource><RequestId>RID</RequestId><HostId>HID</HostId></Error>`;
    const parsed = parseErrorDocument(xml);
    expect(parsed).toEqual({
      code: "SignatureDoesNotMatch",
      message: "The request signature we calculated does not match",
      key: "k",
      bucketName: "b",
      resource: "/b/k",
      requestId: "RID",
      hostId: "HID",
    });
    expect(JSON.stringify(parsed)).not.toMatch(/StringToSign|CanonicalRequest|AKIDEXAMPLE/);
    malformed(() => parseErrorDocument("<Error><Message>no code</Message></Error>"));
  });
});

describe("encoding-type=url helpers", () => {
  it("encodes the S3 way: space as +, / and * kept, UTF-8 bytes upper-case", () => {
    expect(s3UrlEncode("a b+c/d*e~f%g'()!é\r")).toBe("a+b%2Bc/d*e%7Ef%25g%27%28%29%21%C3%A9%0D");
  });
  it("decodes + as space and %2B as plus", () => {
    expect(s3UrlDecode("a+b%2Bc%2F")).toBe("a b+c/");
  });
  it("round-trips tricky keys", () => {
    for (const key of TRICKY_KEYS) expect(s3UrlDecode(s3UrlEncode(key))).toBe(key);
  });
  it("refuses a broken escape", () => {
    expect(() => s3UrlDecode("%E9")).toThrow(S3Error);
    expect(() => s3UrlDecode("%zz")).toThrow(S3Error);
  });
});
