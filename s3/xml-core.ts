/**
 * The primitives every S3 XML document is built on: a hardened parser (size cap before parsing,
 * no DTD, no entity expansion, no value coercion, whitespace kept), typed accessors over the
 * parsed tree, a text-escaping writer, and the S3 flavour of URL encoding used by
 * `encoding-type=url`.
 *
 * Documents follow the Amazon S3 API Reference (https://docs.aws.amazon.com/AmazonS3/latest/API/).
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parseSimpleXml } from "./xml-simple.js";
import { S3Error } from "./errors.js";

/** The namespace S3 puts on the root element of every response document. */
export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** The XML declaration S3 writes at the top of every document. */
export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** Default cap for request bodies a client sends us (Delete, Tagging). */
export const DEFAULT_REQUEST_XML_LIMIT = 2 * 1024 * 1024;

/**
 * Default cap for CompleteMultipartUpload: 10,000 parts with a SHA-256 checksum each take about
 * 1.9 MB of XML.
 */
export const DEFAULT_COMPLETE_XML_LIMIT = 4 * 1024 * 1024;

/** Default cap for response bodies from an S3 server (a 1,000-key listing of long keys). */
export const DEFAULT_RESPONSE_XML_LIMIT = 16 * 1024 * 1024;

/** Options every document parser accepts. */
export interface XmlParseOptions {
  /** Bodies larger than this many bytes are rejected before any parsing happens. */
  maxBytes?: number;
}

/** A parsed element: child elements by name, a string for a text-only element. */
export type XmlNode = { readonly [name: string]: XmlValue };

/** What fast-xml-parser yields for one element name: text, an element, or repeats of either. */
export type XmlValue = string | XmlNode | readonly XmlValue[];

// fast-xml-parser's own property names for text and CDATA inside an element with children.
const TEXT_PROP = "#text";
const CDATA_PROP = "__cdata";

/**
 * One parser per set of repeatable element paths, built once (STYLE.md rule 8). Repeats are
 * always arrays so a single `<Contents>` and many `<Contents>` read the same way.
 */
function makeParser(repeatable: ReadonlySet<string>): XMLParser {
  return new XMLParser({
    // Entities are never expanded (billion laughs, external entities); we decode the five
    // predefined ones and character references ourselves in decodeXmlText.
    processEntities: false,
    htmlEntities: false,
    // Keys such as "0001" or "true" and ETags must stay strings.
    parseTagValue: false,
    parseAttributeValue: false,
    // Keys may start or end with spaces: never trim.
    trimValues: false,
    ignoreAttributes: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    removeNSPrefix: false,
    cdataPropName: CDATA_PROP,
    isArray: (_name: string, jPath: unknown) => typeof jPath === "string" && repeatable.has(jPath),
  });
}

const parserCache = new Map<string, XMLParser>();
const repeatableSets = new Map<string, ReadonlySet<string>>();

function repeatableSet(repeatable: readonly string[]): ReadonlySet<string> {
  const cacheKey = repeatable.join("\n");
  let set = repeatableSets.get(cacheKey);
  if (set === undefined) {
    set = new Set(repeatable);
    repeatableSets.set(cacheKey, set);
  }
  return set;
}

function parserFor(repeatable: readonly string[]): XMLParser {
  const cacheKey = repeatable.join("\n");
  let parser = parserCache.get(cacheKey);
  if (parser === undefined) {
    parser = makeParser(new Set(repeatable));
    parserCache.set(cacheKey, parser);
  }
  return parser;
}

/**
 * Copies the defined values of `extra` onto `base`: optional document fields stay absent
 * instead of being present-but-undefined, which keeps results comparable with toEqual.
 */
export function withDefined<T extends object>(base: T, extra: Partial<T>): T {
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined) (base as Record<string, unknown>)[name] = value;
  }
  return base;
}

/** The `MalformedXML` S3Error for a body that is not the document we expect (for callers to throw). */
export function malformedXml(detail?: string): S3Error {
  return new S3Error("MalformedXML", { cause: detail });
}

/**
 * Parses an XML document whose root element must be `root`, with `repeatable` listing the
 * dotted paths (e.g. `ListBucketResult.Contents`) that are always arrays.
 *
 * Rejects, as `MalformedXML`: bodies over `maxBytes` (before parsing), any DOCTYPE (S3 never
 * sends or accepts one, and it is the door to entity floods), ill-formed XML and a wrong root.
 */
export function parseXmlDocument(
  body: string | Buffer,
  root: string,
  repeatable: readonly string[],
  options: XmlParseOptions & { maxBytes: number },
): XmlNode {
  const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length;
  if (size > options.maxBytes) {
    throw new S3Error("MalformedXML", {
      message: `The XML you provided was larger than the maximum of ${options.maxBytes} bytes.`,
    });
  }
  // S3 may pad CopyObject and CompleteMultipartUpload answers with whitespace to keep the
  // connection alive; whitespace before the declaration is not well-formed, so drop it.
  const text = (typeof body === "string" ? body : body.toString("utf8")).trimStart();
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformedXml("DOCTYPE not allowed");
  // Plain S3 XML (elements and text) is read by a direct scan; anything else, and anything
  // malformed, takes the general path below (xml-simple.ts).
  const simple = parseSimpleXml(text, root, repeatableSet(repeatable));
  if (simple !== undefined) return simple;
  return parseXmlValidated(text, root, repeatable);
}

/**
 * The general path of {@link parseXmlDocument} (validator and fast-xml-parser), for documents
 * outside the plain subset; exported for the test that compares the two paths.
 */
export function parseXmlValidated(
  text: string,
  root: string,
  repeatable: readonly string[],
): XmlNode {
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw malformedXml(valid.err.msg);
  const doc = parserFor(repeatable).parse(text) as Record<string, unknown>;
  const roots = Object.keys(doc).filter((name) => name !== TEXT_PROP);
  if (roots.length !== 1 || roots[0] !== root) {
    throw malformedXml(`expected root element <${root}>`);
  }
  const top = doc[root];
  if (typeof top === "string") return {};
  if (top === null || typeof top !== "object" || Array.isArray(top)) {
    throw malformedXml(`unexpected <${root}>`);
  }
  return top as XmlNode;
}

/** The name of the single top-level element of a well-formed document, or undefined. */
export function rootElementName(
  body: string | Buffer,
  options: { maxBytes: number },
): string | undefined {
  try {
    const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length;
    if (size > options.maxBytes) return undefined;
    const text = typeof body === "string" ? body : body.toString("utf8");
    // Cheap scan: skip the declaration, comments and whitespace, read the first tag name.
    const match = /^(?:\s|<\?[\s\S]*?\?>|<!--[\s\S]*?-->)*<([A-Za-z_][\w.:-]*)/.exec(text);
    return match?.[1];
  } catch {
    return undefined;
  }
}

const ENTITY_RE = /&(?:#x([0-9A-Fa-f]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));|&/g;
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

/**
 * Decodes the five predefined XML entities and numeric character references in one pass (so
 * `&amp;lt;` becomes `&lt;`, never `<`). Anything else after `&` is not well-formed XML.
 * S3 writes a carriage return in a key as `&#13;`, which is why references matter.
 */
export function decodeXmlText(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(ENTITY_RE, (whole, hex?: string, dec?: string, name?: string) => {
    if (name !== undefined) return NAMED_ENTITIES[name] ?? whole;
    if (hex === undefined && dec === undefined) throw malformedXml("bare '&' in text");
    const cp = hex !== undefined ? parseInt(hex, 16) : parseInt(dec ?? "", 10);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw malformedXml("invalid character reference");
    }
    return String.fromCodePoint(cp);
  });
}

// C0 controls other than tab and newline cannot survive as raw text: a parser turns CR into LF
// and rejects the rest, so they go out as character references (as S3 writes `&#13;`).
// eslint-disable-next-line no-control-regex
const ESCAPE_RE = /[&<>"'\x00-\x08\x0b-\x1f]/g;

/** Escapes text for an element body, including control characters, as references. */
export function escapeXmlText(text: string): string {
  return text.replace(ESCAPE_RE, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case '"':
        return "&quot;";
      case "'":
        return "&apos;";
      default:
        return `&#${c.charCodeAt(0)};`;
    }
  });
}

function describe(name: string): string {
  return `<${name}>`;
}

/** Resolves a text-only value (plain text or pure CDATA) of an element. */
function textOf(value: XmlValue, name: string): string {
  if (typeof value === "string") return decodeXmlText(value);
  if (Array.isArray(value)) throw malformedXml(`${describe(name)} repeated`);
  const node = value as XmlNode;
  const names = Object.keys(node);
  const cdata = node[CDATA_PROP];
  const inner = node[TEXT_PROP];
  if (
    typeof cdata === "string" &&
    names.every((n) => n === CDATA_PROP || n === TEXT_PROP) &&
    (inner === undefined || inner === "")
  ) {
    return cdata;
  }
  throw malformedXml(`${describe(name)} must hold text`);
}

/** The text of the single child element `name`, or undefined when absent. */
export function optText(node: XmlNode, name: string): string | undefined {
  const value = node[name];
  return value === undefined ? undefined : textOf(value, name);
}

/** The text of the single child element `name`; throws MalformedXML when absent. */
export function reqText(node: XmlNode, name: string): string {
  const value = optText(node, name);
  if (value === undefined) throw malformedXml(`missing ${describe(name)}`);
  return value;
}

/** The child element `name` as a node (an empty element reads as `{}`), or undefined. */
export function optChild(node: XmlNode, name: string): XmlNode | undefined {
  const value = node[name];
  if (value === undefined) return undefined;
  return asNode(value, name);
}

function asNode(value: XmlValue, name: string): XmlNode {
  if (typeof value === "string") {
    // An element with only whitespace (or nothing) inside has no children.
    if (value.trim() === "") return {};
    throw malformedXml(`${describe(name)} must hold elements`);
  }
  if (Array.isArray(value)) throw malformedXml(`${describe(name)} repeated`);
  return value as XmlNode;
}

/** Every child element `name` (declared repeatable when parsing) as nodes, in document order. */
export function children(node: XmlNode, name: string): XmlNode[] {
  const value = node[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as readonly XmlValue[]) : [value as XmlValue];
  return list.map((v) => asNode(v, name));
}

/** The texts of every repeated child element `name`, in document order. */
export function childTexts(node: XmlNode, name: string): string[] {
  const value = node[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as readonly XmlValue[]) : [value as XmlValue];
  return list.map((v) => textOf(v, name));
}

/** Parses `true`/`false` the way S3 writes booleans. */
export function parseBool(text: string | undefined, name: string): boolean | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  throw malformedXml(`${describe(name)} is not a boolean`);
}

/** Parses a non-negative decimal integer within the safe integer range. */
export function parseUint(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^[0-9]{1,16}$/.test(t)) throw malformedXml(`${describe(name)} is not a number`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw malformedXml(`${describe(name)} is out of range`);
  return n;
}

/** Like {@link parseUint} but the element must be present. */
export function reqUint(node: XmlNode, name: string): number {
  const n = parseUint(optText(node, name), name);
  if (n === undefined) throw malformedXml(`missing ${describe(name)}`);
  return n;
}

/**
 * A small append-only XML writer: element names are ours (never user input), text is always
 * escaped. Undefined values are skipped so optional fields need no branches at call sites.
 */
export class XmlWriter {
  private readonly parts: string[] = [XML_DECLARATION];

  /** Opens an element; `xmlns` adds the S3 namespace (root elements of responses). */
  open(name: string, options: { xmlns?: string } = {}): this {
    this.parts.push(
      options.xmlns === undefined
        ? `<${name}>`
        : `<${name} xmlns="${escapeXmlText(options.xmlns)}">`,
    );
    return this;
  }

  /** Closes an element opened with {@link XmlWriter.open}. */
  close(name: string): this {
    this.parts.push(`</${name}>`);
    return this;
  }

  /** Writes `<name>text</name>`, or nothing when `value` is undefined. */
  leaf(name: string, value: string | number | boolean | undefined): this {
    if (value === undefined) return this;
    this.parts.push(`<${name}>${escapeXmlText(String(value))}</${name}>`);
    return this;
  }

  /** The document so far. */
  toString(): string {
    return this.parts.join("");
  }
}

// Bytes left as they are by S3's `encoding-type=url`: MinIO and AWS follow Go's
// url.QueryEscape, keeping '/' and '*' literal and writing a space as '+'.
const URL_SAFE = /^[A-Za-z0-9\-_.*/]$/;

/**
 * Encodes a key (or prefix, delimiter, marker) the way S3 does for `encoding-type=url`
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html#AmazonS3-ListObjectsV2-request-EncodingType):
 * UTF-8 bytes percent-encoded with upper-case hex, a space as `+`, `A-Za-z0-9-_.*` and `/` kept.
 */
export function s3UrlEncode(key: string): string {
  let out = "";
  for (const ch of key) {
    if (URL_SAFE.test(ch)) out += ch;
    else if (ch === " ") out += "+";
    else {
      for (const byte of Buffer.from(ch, "utf8")) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
      }
    }
  }
  return out;
}

/**
 * Decodes an `encoding-type=url` value (`+` is a space, `%XX` are UTF-8 bytes), as botocore's
 * `unquote_plus` does. Throws MalformedXML on a broken escape or invalid UTF-8.
 */
export function s3UrlDecode(value: string): string {
  if (!/[+%]/.test(value)) return value;
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch (err) {
    throw new S3Error("MalformedXML", { message: "Invalid url-encoded value.", cause: err });
  }
}
