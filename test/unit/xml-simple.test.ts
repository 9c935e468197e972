// The fast path of the XML reader (s3/xml-simple.ts) against the general, validating path:
// on random plain S3 documents both give the same tree; on random corruptions of them the fast
// path either declines or agrees with the general path (it never accepts what the general path
// rejects); and it declines what it does not handle, by name.
// Replay with XML_SEED=<seed> (printed at the start).
import { describe, expect, it } from "vitest";
import { parseXmlValidated, type XmlNode, type XmlValue } from "../../s3/xml-core.js";
import { parseSimpleXml } from "../../s3/xml-simple.js";
import { parseListBucketResultV2 } from "../../s3/xml-list.js";
import { Rng } from "../helpers/listing-model.js";

const seed = Number(process.env["XML_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`xml fast path: XML_SEED=${seed}`);

/** The listing model's seeded generator, as a function. */
function rng(s: number): () => number {
  const r = new Rng(s);
  return () => r.next();
}

const ROOT = "ListBucketResult";
const REPEATS = [`${ROOT}.Contents`, `${ROOT}.CommonPrefixes`];
const REPEAT_SET = new Set(REPEATS);

/** The general tree without the whitespace text between elements (the fast path drops it). */
function withoutWhitespaceText(value: XmlValue): XmlValue {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return (value as XmlValue[]).map(withoutWhitespaceText);
  const out: Record<string, XmlValue> = {};
  for (const [k, v] of Object.entries(value as XmlNode)) {
    if (k === "#text" && typeof v === "string" && v.trim() === "") continue;
    out[k] = withoutWhitespaceText(v);
  }
  return out;
}

function general(text: string): XmlValue | Error {
  try {
    return withoutWhitespaceText(parseXmlValidated(text, ROOT, REPEATS));
  } catch (err) {
    return err as Error;
  }
}

function randomDocument(r: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const ws = (): string => pick(["", "", " ", "\n", "\n  ", "\t", "\r\n"]);
  const text = (): string => {
    const parts = [
      "a",
      "key/with/slash",
      " ",
      "  lead",
      "trail  ",
      "caf\u00e9",
      "\u{1f600}",
      "&amp;",
      "&lt;",
      "&gt;",
      "&quot;",
      "&apos;",
      "&#13;",
      "&#x41;",
      ">",
      "'",
      '"',
      "+%20",
      "line\r\nbreak",
      "cr\ronly",
      "",
    ];
    let s = "";
    for (let i = Math.floor(r() * 4); i > 0; i--) s += pick(parts);
    return s;
  };
  const leaf = (name: string): string =>
    r() < 0.1 ? `<${name}/>` : `<${name}>${text()}</${name}${r() < 0.1 ? " " : ""}>`;
  const contents = (): string => {
    let body = "";
    for (const name of ["Key", "LastModified", "ETag", "Size", "StorageClass"]) {
      if (r() < 0.85) body += ws() + leaf(name);
    }
    if (r() < 0.3) {
      body += `${ws()}<Owner>${ws()}${leaf("ID")}${ws()}${leaf("DisplayName")}${ws()}</Owner>`;
    }
    return `<Contents>${body}${ws()}</Contents>`;
  };
  let body = "";
  for (const name of ["Name", "Prefix", "KeyCount", "MaxKeys", "Delimiter", "IsTruncated"]) {
    if (r() < 0.7) body += ws() + leaf(name);
  }
  // Occasionally a repeated single element (the readers reject it; both paths give an array).
  if (r() < 0.05) body += ws() + leaf("Name");
  for (let i = Math.floor(r() * 6); i > 0; i--) body += ws() + contents();
  for (let i = Math.floor(r() * 3); i > 0; i--) {
    body += `${ws()}<CommonPrefixes>${ws()}${leaf("Prefix")}${ws()}</CommonPrefixes>`;
  }
  const decl = r() < 0.7 ? `<?xml version="1.0" encoding="UTF-8"?>${ws()}` : "";
  const attrs = r() < 0.7 ? ` xmlns="http://s3.amazonaws.com/doc/2006-03-01/"` : "";
  if (r() < 0.03) return `${decl}<${ROOT}${attrs}/>`;
  return `${decl}<${ROOT}${attrs}>${body}${ws()}</${ROOT}>${ws()}`;
}

function corrupt(r: () => number, doc: string): string {
  const at = Math.floor(r() * doc.length);
  const junk = ["<", ">", "&", "/", "<!--x-->", "<![CDATA[x]]>", "<x a='1'>", "\u00e9", "", '"'];
  const j = junk[Math.floor(r() * junk.length)] as string;
  switch (Math.floor(r() * 3)) {
    case 0:
      return doc.slice(0, at) + doc.slice(at + 1);
    case 1:
      return doc.slice(0, at) + j + doc.slice(at);
    default:
      return doc.slice(0, at) + j + doc.slice(at + 1);
  }
}

describe("the XML fast path", () => {
  it("gives the general path's tree on random plain S3 documents", () => {
    const r = rng(seed);
    for (let i = 0; i < 3000; i++) {
      const doc = randomDocument(r);
      const fast = parseSimpleXml(doc, ROOT, REPEAT_SET);
      const slow = general(doc);
      expect(slow, doc).not.toBeInstanceOf(Error);
      expect(fast, doc).toEqual(slow);
    }
  });

  it("on corrupted documents it declines or agrees: never accepts what the general path rejects", () => {
    const r = rng(seed + 1);
    let declined = 0;
    for (let i = 0; i < 5000; i++) {
      const doc = corrupt(r, randomDocument(r));
      const fast = parseSimpleXml(doc, ROOT, REPEAT_SET);
      if (fast === undefined) {
        declined++;
        continue;
      }
      const slow = general(doc);
      expect(slow, `accepted by the fast path only: ${JSON.stringify(doc)}`).not.toBeInstanceOf(
        Error,
      );
      expect(fast, doc).toEqual(slow);
    }
    // The corruptions reach the fallback often (the test exercises both outcomes).
    expect(declined).toBeGreaterThan(500);
  });

  it("declines what it does not read itself", () => {
    const wrap = (inner: string): string => `<${ROOT}>${inner}</${ROOT}>`;
    for (const doc of [
      wrap("<!-- comment --><Name>b</Name>"),
      wrap("<Name><![CDATA[b]]></Name>"),
      `<!DOCTYPE x><${ROOT}/>`,
      wrap('<Name a="1">b</Name>'),
      wrap("<Contents>text<Key>k</Key></Contents>"),
      wrap("<Nämé>b</Nämé>"),
      wrap("<Name>b</Nam>"),
      wrap("<Name>b"),
      `<Other></Other>`,
      `<${ROOT} xmlns>x</${ROOT}>`,
      wrap("<?pi x?><Name>b</Name>"),
      wrap("<__proto__>x</__proto__>"),
      `${wrap("")}<Extra/>`,
    ]) {
      expect(parseSimpleXml(doc, ROOT, REPEAT_SET), doc).toBeUndefined();
    }
  });

  it("a listing page read through parseListBucketResultV2 decodes entities and keeps spaces", () => {
    const doc = `<?xml version="1.0" encoding="UTF-8"?>\n<${ROOT} xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key> a&amp;b&#13; </Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></${ROOT}>`;
    expect(parseListBucketResultV2(doc)).toEqual({
      name: "b",
      prefix: "",
      maxKeys: 1000,
      isTruncated: false,
      keyCount: 2,
      contents: [
        {
          key: " a&b\r ",
          lastModified: "2026-01-01T00:00:00.000Z",
          etag: '"e"',
          size: 3,
          storageClass: "STANDARD",
        },
      ],
      commonPrefixes: ["p/"],
    });
  });
});
