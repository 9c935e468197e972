/**
 * URI encoding as SigV4 and S3 define it: RFC 3986 percent-encoding of every UTF-8 byte except
 * the unreserved set `A-Za-z0-9-_.~`, hex digits upper case
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "URI-encode
 * each byte"; https://www.rfc-editor.org/rfc/rfc3986#section-2.3).
 *
 * `encodeURIComponent` is not the same thing: it leaves `!'()*` alone, which S3 and the SDKs
 * encode. Everything here works on bytes so that a key that is not valid UTF-8 (possible in a
 * percent-encoded request line) round-trips exactly.
 */

/** Upper-case `%XX` for every byte value, built once. */
const PERCENT_HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => "%" + b.toString(16).toUpperCase().padStart(2, "0"),
);

/** Whether a byte is RFC 3986 unreserved: `A-Z a-z 0-9 - _ . ~`. */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x2d || // -
    b === 0x5f || // _
    b === 0x2e || // .
    b === 0x7e // ~
  );
}

/** Options for {@link uriEncode} and {@link uriEncodeBytes}. */
export interface UriEncodeOptions {
  /** Leave `/` as is (an S3 path); otherwise it becomes `%2F` (a query name or value). */
  keepSlash?: boolean;
}

/** Percent-encodes raw bytes: everything but `A-Za-z0-9-_.~` (and `/` with `keepSlash`) as `%XX`. */
export function uriEncodeBytes(bytes: Uint8Array, opts: UriEncodeOptions = {}): string {
  const keepSlash = opts.keepSlash === true;
  let out = "";
  let runStart = 0;
  // Copy runs of unreserved bytes in one slice: keys are mostly ASCII.
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (isUnreserved(b) || (keepSlash && b === 0x2f)) continue;
    if (i > runStart) out += asciiSlice(bytes, runStart, i);
    out += PERCENT_HEX[b];
    runStart = i + 1;
  }
  if (runStart < bytes.length) out += asciiSlice(bytes, runStart, bytes.length);
  return out;
}

function asciiSlice(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("latin1");
}

/** RFC 3986 per UTF-8 byte; everything but A-Za-z0-9-_.~ (and '/' when keepSlash) as %XX uppercase. */
export function uriEncode(s: string, opts: UriEncodeOptions = {}): string {
  // Fast path: nothing to encode (the common case for bucket names and simple keys).
  if (/^[A-Za-z0-9\-_.~]*$/.test(s)) return s;
  return uriEncodeBytes(Buffer.from(s, "utf8"), opts);
}

/** "/bucket/key" with the key encoded once, '/' kept; bucket/key optional ("/" alone). */
export function encodeS3Path(bucket?: string, key?: string): string {
  if (bucket === undefined || bucket === "") {
    if (key !== undefined && key !== "") throw new TypeError("encodeS3Path: a key needs a bucket");
    return "/";
  }
  const b = "/" + uriEncode(bucket);
  if (key === undefined || key === "") return b;
  // S3 does not normalise paths: "a//b", "./x" and "../x" are keys as they are, so each byte
  // is encoded once and '/' is kept (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
  return b + "/" + uriEncode(key, { keepSlash: true });
}

/** Thrown by {@link percentDecode} on a `%` not followed by two hex digits. */
export class InvalidPercentEncodingError extends Error {
  constructor() {
    super("invalid percent-encoding");
    this.name = "InvalidPercentEncodingError";
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * Decodes `%XX` escapes once into bytes; every other character stays as is (as UTF-8). A `+` is
 * a literal plus: AWS SDKs send a space as `%20` and a plus as `%2B`, never `+` for space.
 * Throws {@link InvalidPercentEncodingError} on a malformed escape.
 */
export function percentDecode(s: string): Buffer {
  const src = Buffer.from(s, "utf8");
  if (!src.includes(0x25)) return src;
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number;
    if (c !== 0x25) {
      out[n++] = c;
      continue;
    }
    const hi = i + 1 < src.length ? hexValue(src[i + 1] as number) : -1;
    const lo = i + 2 < src.length ? hexValue(src[i + 2] as number) : -1;
    if (hi < 0 || lo < 0) throw new InvalidPercentEncodingError();
    out[n++] = hi * 16 + lo;
    i += 2;
  }
  return out.subarray(0, n);
}
