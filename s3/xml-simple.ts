/**
 * The fast path of {@link parseXmlDocument} (xml-core.ts): S3 documents are elements and text
 * only, so a direct scan reads them several times faster than the general parser with its
 * validator (a listing page of 1,000 keys is parsed on every backend page of a merged listing
 * and of s3migrate; the general path was 40% of the gateway's CPU in a merged listing).
 *
 * It accepts only the plain subset: an optional `<?xml …?>` declaration, attributes on the root
 * element only (`name="value"`), elements holding either text or child elements (whitespace
 * between them), self-closing elements, nothing else: no comments, CDATA, processing
 * instructions, DOCTYPE, attributes on inner elements, mixed content, or names outside ASCII.
 * For anything else it returns undefined and the caller takes the general, validating path, so
 * the answer (or the MalformedXML error) is the general path's. Where it answers, it answers
 * the same tree the general parser gives (test/unit/xml-simple.test.ts compares them): text
 * raw (entities are decoded when read), repeated elements as arrays, whitespace between
 * elements dropped.
 */
import type { XmlNode, XmlValue } from "./xml-core.js";

const MAX_DEPTH = 16;
// The declaration S3 servers write, and nothing else (the general path judges the rest).
const DECLARATION_RE =
  /^<\?xml\s+version\s*=\s*(["'])1\.[0-9]\1(?:\s+encoding\s*=\s*(["'])[Uu][Tt][Ff]-8\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*\?>$/;
const TEXT_REFERENCES_RE = /^(?:[^&]|&(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)*$/;
// Root attributes: name="value" or name='value', no markup in values.
const ATTRIBUTES_RE = /^(?:\s+[A-Za-z_:][\w.:-]*\s*=\s*(?:"[^"<&]*"|'[^'<&]*'))*\s*$/;

function isNameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x3a // :
  );
}

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

class Decline extends Error {}
const DECLINE = new Decline();

class Scanner {
  i = 0;
  constructor(
    private readonly text: string,
    private readonly repeatable: ReadonlySet<string>,
  ) {}

  skipWs(): void {
    const t = this.text;
    while (this.i < t.length && isWs(t.charCodeAt(this.i))) this.i++;
  }

  name(): string {
    const t = this.text;
    const start = this.i;
    if (!isNameStart(t.charCodeAt(start))) throw DECLINE;
    let j = start + 1;
    while (j < t.length && isNameChar(t.charCodeAt(j))) j++;
    this.i = j;
    return t.slice(start, j);
  }

  /** `</name>` at the position. */
  close(name: string): void {
    const t = this.text;
    if (
      t.charCodeAt(this.i) !== 0x3c ||
      t.charCodeAt(this.i + 1) !== 0x2f ||
      !t.startsWith(name, this.i + 2)
    ) {
      throw DECLINE;
    }
    let j = this.i + 2 + name.length;
    while (j < t.length && isWs(t.charCodeAt(j))) j++;
    if (t.charCodeAt(j) !== 0x3e) throw DECLINE;
    this.i = j + 1;
  }

  /** The content of an element whose start tag was just read: its text, or its children. */
  content(path: string, depth: number): XmlValue {
    if (depth > MAX_DEPTH) throw DECLINE;
    const t = this.text;
    const lt = t.indexOf("<", this.i);
    if (lt < 0) throw DECLINE;
    if (t.charCodeAt(lt + 1) === 0x2f) {
      const raw = t.slice(this.i, lt);
      // Only the predefined entities and character references (the general path rejects a
      // bare `&` in any element, read or not).
      if (raw.includes("&") && !TEXT_REFERENCES_RE.test(raw)) throw DECLINE;
      this.i = lt;
      // XML's end-of-line handling: a raw CR LF or CR in text reads as LF (S3 writes a CR in a
      // key as `&#13;`, decoded later, which stays a CR).
      return raw.includes("\r") ? raw.replace(/\r\n?/g, "\n") : raw;
    }
    for (let j = this.i; j < lt; j++) if (!isWs(t.charCodeAt(j))) throw DECLINE; // mixed content
    this.i = lt;
    const node: Record<string, XmlValue> = {};
    for (;;) {
      this.skipWs();
      if (t.charCodeAt(this.i) !== 0x3c) throw DECLINE;
      if (t.charCodeAt(this.i + 1) === 0x2f) return node;
      this.i++;
      const name = this.name();
      let value: XmlValue;
      if (t.charCodeAt(this.i) === 0x2f && t.charCodeAt(this.i + 1) === 0x3e) {
        this.i += 2;
        value = "";
      } else if (t.charCodeAt(this.i) === 0x3e) {
        this.i++;
        value = this.content(`${path}.${name}`, depth + 1);
        this.close(name);
      } else {
        throw DECLINE;
      }
      // The general parser's names: `#text`, `__cdata` and prototype keys are not plain names.
      if (name === "__proto__" || name === "constructor" || name === "__cdata") throw DECLINE;
      const previous = Object.hasOwn(node, name) ? node[name] : undefined;
      if (this.repeatable.has(`${path}.${name}`)) {
        if (previous === undefined) node[name] = [value];
        else (previous as XmlValue[]).push(value);
      } else if (previous === undefined) {
        node[name] = value;
      } else {
        node[name] = Array.isArray(previous)
          ? [...(previous as XmlValue[]), value]
          : [previous, value];
      }
    }
  }

  document(root: string): XmlNode {
    const t = this.text;
    this.skipWs();
    if (t.startsWith("<?xml", this.i)) {
      const end = t.indexOf("?>", this.i);
      if (end < 0 || !DECLARATION_RE.test(t.slice(this.i, end + 2))) throw DECLINE;
      this.i = end + 2;
      this.skipWs();
    }
    if (t.charCodeAt(this.i) !== 0x3c) throw DECLINE;
    this.i++;
    if (this.name() !== root) throw DECLINE;
    const tagEnd = t.indexOf(">", this.i);
    if (tagEnd < 0) throw DECLINE;
    let attributes = t.slice(this.i, tagEnd);
    const selfClosing = attributes.endsWith("/");
    if (selfClosing) attributes = attributes.slice(0, -1);
    if (attributes !== "" && !ATTRIBUTES_RE.test(attributes)) throw DECLINE;
    this.i = tagEnd + 1;
    let top: XmlValue = "";
    if (!selfClosing) {
      top = this.content(root, 1);
      this.close(root);
    }
    this.skipWs();
    if (this.i !== t.length) throw DECLINE;
    return typeof top === "string" ? {} : (top as XmlNode);
  }
}

/**
 * The tree of `text` (whose root element must be `root`) when it is plain S3 XML, else
 * undefined (the caller parses it the general way). `repeatable`: the dotted paths that are
 * always arrays.
 */
export function parseSimpleXml(
  text: string,
  root: string,
  repeatable: ReadonlySet<string>,
): XmlNode | undefined {
  try {
    return new Scanner(text, repeatable).document(root);
  } catch (err) {
    if (err === DECLINE) return undefined;
    throw err;
  }
}
