/**
 * Browser-form uploads (PostObject, `POST /bucket` with `multipart/form-data`; DESIGN 3.1):
 * the form is parsed as it streams, its policy signature (SigV4 or SigV2) verified and its
 * conditions enforced by the gateway (s3/post-policy), and the object stored where the
 * bucket's mode says with a plain PUT signed with the service credential.
 *
 * The file part's length is not known until its closing boundary arrives, and the policy's
 * `content-length-range` minimum can only be judged then. The file is therefore spooled to a
 * private temp file (0600, removed afterwards) while its size, MD5 and SHA-256 are computed:
 * memory stays bounded whatever the size, nothing reaches a backend before every check passed
 * (a refused form sends a backend zero bytes), and the PUT that follows carries the exact
 * Content-Length, Content-MD5 and the SHA-256 as its signed payload hash, so the backend
 * itself refuses anything but those bytes. The cost is disk space for the file in flight and
 * one more pass over it, which a browser upload of at most 5 GiB can afford.
 *
 * Answers follow https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html:
 * `success_action_redirect` (or V2's `redirect`) → 303 to that URL with bucket, key and etag;
 * otherwise `success_action_status` 200, 201 (with a PostResponse document) or 204 (default).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Error } from "../../s3/errors.js";
import {
  checkPolicy,
  contentLengthOutOfRange,
  parsePolicy,
  verifyPostSignature,
} from "../../s3/post-policy.js";
import { escapeXml } from "../../s3/errors.js";
import { MAX_KEY_BYTES } from "./addressing.js";
import { authorize, type CredentialIndex, type S3Principal } from "./auth.js";
import { route } from "../routing/route.js";
import type { MigrationStateSnapshot } from "../state/store.js";
import { sendUpstream, type Backend, type BackendRegistry } from "../upstream/backends.js";
import { backendError, isErrorStatus, sendError, type AnswerContext } from "./respond.js";

/** Bounds of the form parser. */
export interface PostFormLimits {
  /** Largest single field before the file (default 64 KiB). */
  readonly maxFieldBytes: number;
  /** Largest sum of the fields before the file, headers included (default 1 MiB). */
  readonly maxPreDataBytes: number;
  /** Largest file (default 5 GiB, S3's single-PUT limit). */
  readonly maxFileBytes: number;
}

/** The defaults of {@link PostFormLimits}. */
export const DEFAULT_POST_FORM_LIMITS: PostFormLimits = {
  maxFieldBytes: 64 * 1024,
  maxPreDataBytes: 1024 * 1024,
  maxFileBytes: 5 * 1024 * 1024 * 1024,
};

/** Whether a request is a PostObject: POST on a bucket, no key, a multipart/form-data body. */
export function isPostObjectRequest(
  method: string,
  address: {
    readonly bucket: string | undefined;
    readonly key: string | undefined;
    readonly rawQuery: string;
  },
  contentType: string | undefined,
): boolean {
  return (
    method === "POST" &&
    address.bucket !== undefined &&
    address.key === undefined &&
    address.rawQuery === "" &&
    contentType !== undefined &&
    /^multipart\/form-data\s*(;|$)/i.test(contentType)
  );
}

/** What PostObject needs from the listener. */
export interface PostObjectDeps {
  readonly credentials: CredentialIndex;
  readonly backends: BackendRegistry;
  readonly snapshot: MigrationStateSnapshot;
  /** Whether the state store is confirmed within its lease (issue 12); attached buckets need it. */
  readonly isFresh: () => boolean;
  readonly limits?: PostFormLimits;
  /** Where the file is spooled (default the OS temp dir). */
  readonly spoolDir?: string;
  /** The scheme and host clients used, for the Location of the answer. */
  readonly origin: string;
  readonly signal: AbortSignal;
  readonly now?: Date;
}

/** Facts PostObject reports for the access log and metrics as it learns them. */
export interface PostObjectFacts {
  accessKeyId: string | undefined;
  mode: string;
  plan: string;
  backends: ("target" | "source")[];
  bucketLabel: string;
  bytesIn: number;
}

/**
 * Handles one PostObject from the first body byte to the answer. Throws S3Error for a refusal
 * (the caller answers it and drains the rest of the body).
 */
export async function postObject(
  deps: PostObjectDeps,
  req: IncomingMessage,
  res: ServerResponse,
  input: { readonly bucket: string; readonly ctx: AnswerContext; readonly facts: PostObjectFacts },
): Promise<void> {
  const limits = deps.limits ?? DEFAULT_POST_FORM_LIMITS;
  const boundary = boundaryOf(req.headers["content-type"]);
  const reader = new ChunkReader(req);
  const form = await readFields(reader, boundary, limits);

  // Authentication: the policy's signature, then the same rules as every request.
  const verified = verifyPostSignature(form.fields, {
    lookupSecret: (id) => deps.credentials.byAccessKey.get(id)?.credential.secretKey,
    region: deps.credentials.region,
    sigv2: deps.credentials.sigv2,
  });
  input.facts.accessKeyId = verified.accessKeyId;
  const principal = deps.credentials.byAccessKey.get(verified.accessKeyId) as S3Principal;
  if (principal.credential.role === "admin") {
    throw new S3Error("AccessDenied", {
      message: "Admin credentials are for the admin API, not for S3 requests.",
    });
  }
  authorize({
    principal,
    method: "POST",
    operation: "PutObject",
    bucket: input.bucket,
    copySource: undefined,
  });

  const rawKey = form.fields.get("key");
  if (rawKey === undefined) {
    throw new S3Error("InvalidArgument", {
      message:
        "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
      extra: { ArgumentName: "key", ArgumentValue: "" },
    });
  }
  // ${filename} is the file's name as the browser sent it (its last path segment).
  const filename = (form.file.filename ?? "").split(/[\\/]/).pop() ?? "";
  const key = rawKey.split("${filename}").join(filename);
  if (key === "") {
    throw new S3Error("InvalidArgument", {
      message: "User key must have a length greater than 0.",
      extra: { ArgumentName: "key" },
    });
  }
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error("KeyTooLongError");
  const checked = new Map(form.fields);
  checked.set("key", key);
  checked.set("bucket", input.bucket);
  const policyText = form.fields.get("policy");
  if (policyText === undefined) {
    throw new S3Error("InvalidArgument", {
      message: "Bucket POST must contain a field named 'policy'.",
      extra: { ArgumentName: "policy" },
    });
  }
  const range = checkPolicy(parsePolicy(policyText), {
    fields: checked,
    now: deps.now ?? new Date(),
  });

  // Routing: PostObject writes like an unconditional PutObject (not attached, ready → target;
  // forward → source; migrate → target, DESIGN 3.3).
  const bucketState = deps.snapshot.buckets.get(input.bucket);
  if (bucketState !== undefined) input.facts.bucketLabel = bucketState.bucket;
  // As for every request: a gateway that cannot confirm its state must not act on an attached
  // bucket with a possibly stale mode.
  if (bucketState !== undefined && !deps.isFresh()) {
    throw new S3Error("ServiceUnavailable", {
      message: "The gateway cannot confirm this bucket's migration state; retry shortly.",
    });
  }
  const plan = route({
    state: bucketState,
    bucket: input.bucket,
    operation: "PutObject",
    role: principal.credential.role,
    method: "PUT",
  });
  input.facts.mode = plan.mode;
  input.facts.plan = plan.kind;
  if (plan.kind === "refuse") {
    throw new S3Error(plan.code, { message: `Refused: ${plan.reason}.` });
  }
  if (plan.kind !== "single") {
    // A migration write (the migrator in migrate mode) needs the copier's conditional path;
    // s3migrate never sends forms.
    throw new S3Error("AccessDenied", {
      message: "Browser-form uploads are not accepted for this credential in this mode.",
    });
  }
  const decision = plan;
  const backend: Backend =
    decision.backend === "target" ? deps.backends.target : deps.backends.source(decision.source);
  if (!input.facts.backends.includes(backend.name)) input.facts.backends.push(backend.name);

  const dir = await mkdtemp(join(deps.spoolDir ?? tmpdir(), "s3gw-post-"));
  try {
    const spool = join(dir, "file");
    const file = await spoolFile(reader, boundary, spool, Math.min(range.max, limits.maxFileBytes));
    input.facts.bytesIn = file.size;
    if (file.size > range.max || file.size < range.min) {
      throw contentLengthOutOfRange(file.size, range);
    }
    const upstream = await sendUpstream(backend, {
      method: "PUT",
      bucket: decision.bucket,
      key,
      query: [],
      headers: { ...objectHeaders(form.fields, form.file), "content-md5": file.md5 },
      body: createReadStream(spool),
      contentLength: file.size,
      payloadHash: file.sha256,
      signal: deps.signal,
    });
    if (isErrorStatus(upstream.statusCode)) {
      const { error, headers } = await backendError(upstream, {
        secrets: backend.secrets,
        hasKey: true,
      });
      sendError(res, error, input.ctx, { headers, closeConnection: !req.complete });
      return;
    }
    upstream.body.resume();
    const etag = typeof upstream.headers.etag === "string" ? upstream.headers.etag : "";
    const versionId = upstream.headers["x-amz-version-id"];
    answer(res, {
      ctx: input.ctx,
      fields: form.fields,
      bucket: input.bucket,
      key,
      etag,
      versionId: typeof versionId === "string" ? versionId : undefined,
      location: `${deps.origin}/${encodeURIComponent(input.bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`,
      closeConnection: !req.complete,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The success answer: a redirect, or the status the form asked for. */
function answer(
  res: ServerResponse,
  a: {
    readonly ctx: AnswerContext;
    readonly fields: ReadonlyMap<string, string>;
    readonly bucket: string;
    readonly key: string;
    readonly etag: string;
    readonly versionId: string | undefined;
    readonly location: string;
    readonly closeConnection: boolean;
  },
): void {
  const headers: Record<string, string> = {
    "x-amz-request-id": a.ctx.requestId,
    location: a.location,
  };
  if (a.etag !== "") headers.etag = a.etag;
  if (a.versionId !== undefined) headers["x-amz-version-id"] = a.versionId;
  if (a.closeConnection) headers.connection = "close";
  const redirect = a.fields.get("success_action_redirect") ?? a.fields.get("redirect");
  if (redirect !== undefined && /^https?:\/\//i.test(redirect)) {
    const sep = redirect.includes("?") ? "&" : "?";
    const q = `bucket=${encodeURIComponent(a.bucket)}&key=${encodeURIComponent(a.key)}&etag=${encodeURIComponent(a.etag)}`;
    res.writeHead(303, { ...headers, location: `${redirect}${sep}${q}`, "content-length": "0" });
    res.end();
    return;
  }
  const status = a.fields.get("success_action_status");
  if (status === "201") {
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>${escapeXml(a.location)}</Location>` +
      `<Bucket>${escapeXml(a.bucket)}</Bucket><Key>${escapeXml(a.key)}</Key><ETag>${escapeXml(a.etag)}</ETag></PostResponse>`;
    res.writeHead(201, {
      ...headers,
      "content-type": "application/xml",
      "content-length": String(Buffer.byteLength(body)),
    });
    res.end(body);
    return;
  }
  res.writeHead(status === "200" ? 200 : 204, { ...headers, "content-length": "0" });
  res.end();
}

/**
 * The headers of the stored object, from the form: Content-Type (the field, else the file
 * part's), the standard metadata fields, `x-amz-meta-*`, ACL, storage class, tagging (an XML
 * document in the form, a query string as a header) and checksums.
 */
function objectHeaders(
  fields: ReadonlyMap<string, string>,
  file: { readonly contentType: string | undefined },
): Record<string, string> {
  const out: Record<string, string> = {};
  const contentType = fields.get("content-type") ?? file.contentType;
  // S3's default for a form upload without a type.
  out["content-type"] = contentType ?? "binary/octet-stream";
  for (const name of [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
    "content-language",
  ]) {
    const v = fields.get(name);
    if (v !== undefined) out[name] = v;
  }
  for (const [name, value] of fields) {
    if (
      name.startsWith("x-amz-meta-") ||
      name.startsWith("x-amz-checksum-") ||
      name === "x-amz-storage-class" ||
      name === "x-amz-website-redirect-location" ||
      name === "x-amz-server-side-encryption"
    ) {
      out[name] = value;
    }
  }
  const acl = fields.get("acl");
  if (acl !== undefined) out["x-amz-acl"] = acl;
  const tagging = fields.get("tagging");
  if (tagging !== undefined) out["x-amz-tagging"] = taggingQuery(tagging);
  return out;
}

/** `<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>…` → `k=v&…` (bounded by the field cap). */
function taggingQuery(xml: string): string {
  const pairs: string[] = [];
  for (const m of xml.matchAll(
    /<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g,
  )) {
    pairs.push(
      `${encodeURIComponent(unescapeXml(m[1] ?? ""))}=${encodeURIComponent(unescapeXml(m[2] ?? ""))}`,
    );
  }
  if (pairs.length === 0 && xml.trim() !== "") {
    throw new S3Error("MalformedXML");
  }
  return pairs.join("&");
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/** The boundary of a multipart/form-data Content-Type (RFC 7578, RFC 2046 §5.1.1). */
function boundaryOf(contentType: string | undefined): Buffer {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? "");
  const b = m?.[1] ?? m?.[2];
  if (b === undefined) {
    throw new S3Error("MalformedPOSTRequest", {
      message: "The body of your POST request is not well-formed multipart/form-data.",
    });
  }
  return Buffer.from(b, "latin1");
}

/** Pulls chunks from a stream into one buffer on demand; never holds more than asked for. */
class ChunkReader {
  buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  ended = false;

  constructor(stream: AsyncIterable<Buffer>) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Reads one more chunk; false at the end of the stream. */
  async more(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.it.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? next.value : Buffer.concat([this.buf, next.value]);
    return true;
  }

  /** Waits until `needle` is in the buffer, reading at most `max` bytes; its index or -1. */
  async find(needle: Buffer, max: number): Promise<number> {
    for (;;) {
      const i = this.buf.indexOf(needle);
      if (i >= 0) return i;
      if (this.buf.length > max + needle.length) return -1;
      if (!(await this.more())) return -1;
    }
  }

  /** Drops the first `n` bytes. */
  skip(n: number): void {
    this.buf = this.buf.subarray(n);
  }
}

function malformed(detail: string): S3Error {
  return new S3Error("MalformedPOSTRequest", {
    message: `The body of your POST request is not well-formed multipart/form-data: ${detail}.`,
  });
}

/** The fields before the file, and the file part's headers. */
interface FormHead {
  /** Lower-case names; a repeated field keeps its first value. */
  readonly fields: Map<string, string>;
  readonly file: {
    readonly filename: string | undefined;
    readonly contentType: string | undefined;
  };
}

/**
 * Reads parts up to the file part (which must come last among what S3 reads: fields after it
 * are ignored). Leaves the reader at the first byte of the file's content.
 */
async function readFields(
  reader: ChunkReader,
  boundary: Buffer,
  limits: PostFormLimits,
): Promise<FormHead> {
  const dash = Buffer.concat([Buffer.from("--"), boundary]);
  const next = Buffer.concat([Buffer.from("\r\n--"), boundary]);
  const fields = new Map<string, string>();
  let preData = 0;
  // The preamble before the first boundary is ignored (RFC 2046), within the pre-data cap.
  const first = await reader.find(dash, limits.maxPreDataBytes);
  if (first < 0) throw malformed("no boundary found");
  reader.skip(first + dash.length);
  for (;;) {
    // After a boundary: `--` ends the body, otherwise CRLF and the part's headers.
    while (reader.buf.length < 2 && (await reader.more()));
    if (reader.buf.subarray(0, 2).toString("latin1") === "--") {
      throw new S3Error("InvalidArgument", {
        message: "POST requires exactly one file upload per request.",
        extra: { ArgumentName: "file", ArgumentValue: "0" },
      });
    }
    // Some clients put transport padding before the CRLF.
    const eol = await reader.find(Buffer.from("\r\n"), 1024);
    if (eol < 0) throw malformed("bad boundary line");
    reader.skip(eol + 2);
    const end = await reader.find(Buffer.from("\r\n\r\n"), 16 * 1024);
    if (end < 0) throw malformed("part headers too long or incomplete");
    const head = reader.buf.subarray(0, end).toString("latin1");
    reader.skip(end + 4);
    preData += end + 4;
    const part = partHeaders(head);
    if (part.name === undefined) throw malformed("a part without a name");
    const name = part.name.toLowerCase();
    if (name === "file") {
      return { fields, file: { filename: part.filename, contentType: part.contentType } };
    }
    const at = await reader.find(next, limits.maxFieldBytes);
    if (at < 0) {
      if (reader.ended) throw malformed("incomplete body");
      throw new S3Error("MaxPostPreDataLengthExceeded", {
        message: `The form field ${name} is longer than ${limits.maxFieldBytes} bytes.`,
      });
    }
    preData += at + next.length;
    if (preData > limits.maxPreDataBytes) throw new S3Error("MaxPostPreDataLengthExceeded");
    // Field values are UTF-8 text (RFC 7578 §5.1.2).
    const value = reader.buf.subarray(0, at).toString("utf8");
    if (!fields.has(name)) fields.set(name, value);
    reader.skip(at + next.length);
  }
}

/** Name, filename and Content-Type of a part, from its header block. */
function partHeaders(head: string): { name?: string; filename?: string; contentType?: string } {
  const out: { name?: string; filename?: string; contentType?: string } = {};
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const hname = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (hname === "content-type") out.contentType = value;
    if (hname !== "content-disposition") continue;
    for (const m of value.matchAll(/;\s*([A-Za-z*]+)=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g)) {
      const param = (m[1] ?? "").toLowerCase();
      const v = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
      // Browsers send UTF-8 bytes in quoted names; Node gave us latin1 chars.
      const text = Buffer.from(v, "latin1").toString("utf8");
      if (param === "name") out.name = text;
      if (param === "filename") out.filename = text;
    }
  }
  return out;
}

/**
 * Writes the file's content (up to the next boundary) to `path`, counting its size and
 * computing MD5 and SHA-256; refuses it as soon as it passes `max` bytes. Fields after the file
 * are not read (S3 ignores them).
 */
async function spoolFile(
  reader: ChunkReader,
  boundary: Buffer,
  path: string,
  max: number,
): Promise<{ size: number; md5: string; sha256: string }> {
  const next = Buffer.concat([Buffer.from("\r\n--"), boundary]);
  const out = createWriteStream(path, { mode: 0o600, flags: "wx" });
  const md5 = createHash("md5");
  const sha256 = createHash("sha256");
  let size = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    if (chunk.length === 0) return;
    size += chunk.length;
    if (size > max) {
      throw new S3Error("EntityTooLarge", {
        message: "Your proposed upload exceeds the maximum allowed object size.",
        extra: { MaxSizeAllowed: String(max) },
      });
    }
    md5.update(chunk);
    sha256.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  };
  try {
    for (;;) {
      const at = reader.buf.indexOf(next);
      if (at >= 0) {
        await write(reader.buf.subarray(0, at));
        reader.skip(at + next.length);
        break;
      }
      // Keep what could be the start of the boundary; everything before it is file content.
      const safe = reader.buf.length - (next.length - 1);
      if (safe > 0) {
        await write(reader.buf.subarray(0, safe));
        reader.skip(safe);
      }
      if (!(await reader.more())) throw malformed("the file part has no closing boundary");
    }
  } finally {
    await new Promise<void>((r) => out.end(() => r()));
  }
  return { size, md5: md5.digest("base64"), sha256: sha256.digest("hex") };
}
