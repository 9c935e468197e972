/**
 * Server-side verification of AWS Signature Version 2 (the "REST authentication" of S3):
 * `Authorization: AWS AccessKeyId:Signature` and presigned URLs with `AWSAccessKeyId`,
 * `Signature` and `Expires` in the query.
 *
 * Follows https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html:
 * `Signature = Base64(HMAC-SHA1(secret, StringToSign))` where StringToSign is
 * `VERB \n Content-MD5 \n Content-Type \n Date|Expires \n CanonicalizedAmzHeaders CanonicalizedResource`.
 * SigV2 never covers the body, so a verified request's payload is always `unsigned`; every
 * `x-amz-*` header is part of CanonicalizedAmzHeaders, so all of them are signed by construction.
 * The refusals are the same as for SigV4 (InvalidAccessKeyId, SignatureDoesNotMatch,
 * AccessDenied for an expired URL or a missing date, RequestTimeTooSkewed, InvalidArgument for
 * two auth forms at once). Signatures are compared in constant time.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { S3Error } from "./errors.js";
import { parseRawQuery, rawHeaderPairs, type QueryParam } from "./sigv4-canonical.js";
import type { IncomingSigV4Request, VerifiedRequest } from "./sigv4-types.js";
import { InvalidPercentEncodingError } from "./uri-encode.js";

/** How to verify: who may sign, the region reported as the request's, and the clock. */
export interface SigV2VerifyOptions {
  /** Secret for an access key, or undefined when unknown. */
  readonly lookupSecret: (accessKeyId: string) => string | undefined;
  /** The region the gateway serves (SigV2 carries none; reported in the result). */
  readonly region: string;
  /**
   * The bucket when the request was addressed virtual-hosted-style: CanonicalizedResource then
   * starts with `/bucket` although the path does not name it.
   */
  readonly virtualHostBucket?: string | undefined;
  /** The server's clock; now unless given. */
  readonly now?: Date;
  /** Default 15 minutes. */
  readonly maxSkewMs?: number;
}

/** The query parameters of a SigV2 presigned URL; the gateway re-signs, so they never go upstream. */
export const SIGV2_QUERY_PARAMS: ReadonlySet<string> = new Set([
  "AWSAccessKeyId",
  "Signature",
  "Expires",
]);

const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;

/**
 * The sub-resources and response overrides that belong to CanonicalizedResource. AWS lists
 * acl, lifecycle, location, logging, notification, partNumber, policy, requestPayment, uploadId,
 * uploads, versionId, versioning, versions, website and the `response-*` overrides; clients
 * (botocore's HmacV1Auth, s3cmd, MinIO's verifier) also sign the newer sub-resources below, and
 * a parameter signed by one but not by the other would break every request that carries it.
 */
const SUB_RESOURCES: ReadonlySet<string> = new Set([
  "accelerate",
  "acl",
  "analytics",
  "cors",
  "delete",
  "encryption",
  "inventory",
  "legal-hold",
  "lifecycle",
  "location",
  "logging",
  "metrics",
  "notification",
  "object-lock",
  "partNumber",
  "policy",
  "replication",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "restore",
  "retention",
  "select",
  "select-type",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

/** Whether a request uses SigV2: an `AWS ` Authorization header or V2 presigned parameters. */
export function isSigV2Request(req: IncomingSigV4Request): boolean {
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (
      (req.rawHeaders[i] as string).toLowerCase() === "authorization" &&
      /^AWS[ \t]/.test(req.rawHeaders[i + 1] as string)
    ) {
      return true;
    }
  }
  const q = req.rawUrl.indexOf("?");
  if (q < 0) return false;
  return /(?:^|&)(?:AWSAccessKeyId|Signature)=/.test(req.rawUrl.slice(q + 1));
}

/** Verifies a SigV2 request (header or presigned form); throws S3Error. Does not read the body. */
export function verifySigV2(req: IncomingSigV4Request, opts: SigV2VerifyOptions): VerifiedRequest {
  const { rawPath, rawQuery } = splitTarget(req.rawUrl);
  let params: QueryParam[];
  try {
    params = parseRawQuery(rawQuery);
  } catch (err) {
    if (err instanceof InvalidPercentEncodingError) throw new S3Error("InvalidURI");
    throw err;
  }
  const pairs = rawHeaderPairs(req.rawHeaders);
  const authValues = pairs.filter(([n]) => n.toLowerCase() === "authorization").map(([, v]) => v);
  const queryAuth = params.some(
    (p) =>
      p.name === "AWSAccessKeyId" ||
      p.name === "Signature" ||
      p.name === "X-Amz-Algorithm" ||
      p.name === "X-Amz-Signature",
  );
  if (authValues.length > 0 && queryAuth) {
    throw new S3Error("InvalidArgument", {
      message:
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
      extra: { ArgumentName: "Authorization" },
    });
  }
  const headers = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const n = name.toLowerCase();
    const list = headers.get(n);
    if (list === undefined) headers.set(n, [value]);
    else list.push(value);
  }
  const now = opts.now ?? new Date();
  const resource = canonicalizedResource(rawPath, params, opts.virtualHostBucket);
  const amzHeaders = canonicalizedAmzHeaders(headers);
  const first = (name: string): string => (headers.get(name)?.[0] ?? "").trim();
  const head = `${req.method}\n${first("content-md5")}\n${first("content-type")}\n`;
  const signedHeaders = [...headers.keys()]
    .filter((n) => n.startsWith("x-amz-") || n === "content-md5" || n === "content-type")
    .sort();

  if (authValues.length > 0) {
    if (authValues.length > 1) throw headerMalformed();
    const m = /^AWS[ \t]+([^:\s]+):(\S+)$/.exec((authValues[0] as string).trim());
    if (m === null) throw headerMalformed();
    const accessKeyId = m[1] as string;
    const provided = m[2] as string;
    const secret = lookup(accessKeyId, opts);
    // The request time: x-amz-date wins over Date (some proxies rewrite Date).
    const amzDate = first("x-amz-date");
    const dateHeader = first("date");
    const timeText = amzDate !== "" ? amzDate : dateHeader;
    const time = parseHttpDate(timeText);
    if (time === undefined) {
      throw new S3Error("AccessDenied", {
        message: "AWS authentication requires a valid Date or x-amz-date header",
      });
    }
    const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    if (Math.abs(time.getTime() - now.getTime()) > maxSkewMs) {
      throw new S3Error("RequestTimeTooSkewed", {
        extra: {
          RequestTime: timeText,
          ServerTime: now.toISOString(),
          MaxAllowedSkewMilliseconds: String(maxSkewMs),
        },
      });
    }
    // With x-amz-date present AWS signs an empty Date line; botocore and MinIO put the Date
    // header's value there instead. Both are accepted (two HMACs, each compared in constant time).
    const dates = [dateHeader];
    if (amzDate !== "" && dateHeader !== "") dates.push("");
    if (
      !matchesAny(
        secret,
        provided,
        dates.map((d) => `${head}${d}\n${amzHeaders}`),
        resource,
      )
    ) {
      throw mismatch(accessKeyId);
    }
    return verified(accessKeyId, "header", signedHeaders, opts.region);
  }

  const get = (name: string): string | undefined => params.find((p) => p.name === name)?.value;
  const accessKeyId = get("AWSAccessKeyId");
  const provided = get("Signature");
  const expires = get("Expires");
  if (accessKeyId === undefined || provided === undefined || expires === undefined) {
    throw new S3Error("AccessDenied", {
      message:
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
    });
  }
  if (!/^\d{1,12}$/.test(expires)) {
    throw new S3Error("AccessDenied", { message: "Invalid date (should be seconds since epoch)" });
  }
  const secret = lookup(accessKeyId, opts);
  if (!matchesAny(secret, provided, [`${head}${expires}\n${amzHeaders}`], resource)) {
    throw mismatch(accessKeyId);
  }
  // Checked after the signature, as S3 does: an attacker learns nothing from the expiry alone.
  if (Number(expires) * 1000 < now.getTime()) {
    throw new S3Error("AccessDenied", {
      message: "Request has expired",
      extra: {
        Expires: new Date(Number(expires) * 1000).toISOString(),
        ServerTime: now.toISOString(),
      },
    });
  }
  return verified(accessKeyId, "presigned", signedHeaders, opts.region);
}

/**
 * Whether `provided` is the signature of one of the prefixes followed by the resource. A request
 * that addresses a bucket only (`/bucket`, or `/` virtual-hosted) is also checked with the
 * bucket's trailing slash, `/bucket/`: that is how AWS canonicalizes it and what botocore signs
 * for path-style bucket requests it sends without the slash. Every candidate is computed and
 * compared in constant time.
 */
function matchesAny(
  secret: string,
  provided: string,
  prefixes: readonly string[],
  resource: string,
): boolean {
  const q = resource.indexOf("?");
  const path = q < 0 ? resource : resource.slice(0, q);
  const resources = [resource];
  if (/^\/[^/]+$/.test(path)) resources.push(`${path}/${q < 0 ? "" : resource.slice(q)}`);
  let ok = false;
  for (const prefix of prefixes) {
    for (const r of resources) ok = equalSignature(sign(secret, prefix + r), provided) || ok;
  }
  return ok;
}

/** Base64 HMAC-SHA1 of the UTF-8 string to sign, as SigV2 defines it. */
export function signV2(secret: string, stringToSign: string): string {
  return sign(secret, stringToSign);
}

function sign(secret: string, stringToSign: string): string {
  // Header values arrive as latin1 (one char per wire byte); hash the bytes the client hashed.
  // eslint-disable-next-line no-control-regex
  const bytes = /[^\x00-\xff]/.test(stringToSign)
    ? Buffer.from(stringToSign, "utf8")
    : Buffer.from(stringToSign, "latin1");
  return createHmac("sha1", secret).update(bytes).digest("base64");
}

/** Constant-time comparison of two base64 signatures, by their decoded bytes. */
export function equalSignature(computed: string, provided: string): boolean {
  if (!/^[A-Za-z0-9+/]{27}=$/.test(provided)) return false;
  const a = Buffer.from(computed, "base64");
  const b = Buffer.from(provided, "base64");
  return a.length === b.length && timingSafeEqual(a, b);
}

function verified(
  accessKeyId: string,
  authType: "header" | "presigned",
  signedHeaders: string[],
  region: string,
): VerifiedRequest {
  return { accessKeyId, authType, payload: "unsigned", signedHeaders, region };
}

function lookup(accessKeyId: string, opts: SigV2VerifyOptions): string {
  const secret = opts.lookupSecret(accessKeyId);
  if (secret === undefined) {
    throw new S3Error("InvalidAccessKeyId", { extra: { AWSAccessKeyId: accessKeyId } });
  }
  return secret;
}

function mismatch(accessKeyId: string): S3Error {
  // Never the string to sign: it helps an attacker, not a user.
  return new S3Error("SignatureDoesNotMatch", { extra: { AWSAccessKeyId: accessKeyId } });
}

function headerMalformed(): S3Error {
  return new S3Error("InvalidArgument", {
    message: "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
    extra: { ArgumentName: "Authorization" },
  });
}

/**
 * CanonicalizedAmzHeaders: every `x-amz-*` header, lower-case name, repeats joined with `,`,
 * folded whitespace unfolded, trimmed, sorted by name, each line `name:value\n`.
 */
export function canonicalizedAmzHeaders(headers: ReadonlyMap<string, readonly string[]>): string {
  const names = [...headers.keys()].filter((n) => n.startsWith("x-amz-")).sort();
  let out = "";
  for (const name of names) {
    const values = (headers.get(name) ?? []).map((v) => v.replace(/\s*\r?\n\s*/g, " ").trim());
    out += `${name}:${values.join(",")}\n`;
  }
  return out;
}

/**
 * CanonicalizedResource: `/bucket` for a virtual-hosted request, the path as sent (still
 * encoded), then the signed sub-resources sorted by name with their decoded values
 * (`?acl&versionId=v`). The order of a name's repeats is kept (a stable sort).
 */
export function canonicalizedResource(
  rawPath: string,
  params: readonly QueryParam[],
  virtualHostBucket: string | undefined,
): string {
  let out = virtualHostBucket === undefined ? rawPath : `/${virtualHostBucket}${rawPath}`;
  const sub = params
    .filter((p) => SUB_RESOURCES.has(p.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (sub.length > 0) {
    // A valueless sub-resource (`?acl`, `?uploads`) is signed as its bare name.
    out += "?" + sub.map((p) => (p.value === "" ? p.name : `${p.name}=${p.value}`)).join("&");
  }
  return out;
}

/** Splits the request-target into raw path and raw query (origin or absolute form). */
function splitTarget(rawUrl: string): { rawPath: string; rawQuery: string } {
  let target = rawUrl;
  if (!target.startsWith("/")) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(target);
    if (m === null) throw new S3Error("InvalidURI");
    target = target.slice(m[0].length);
    if (!target.startsWith("/")) target = "/" + target;
  }
  const q = target.indexOf("?");
  if (q < 0) return { rawPath: target, rawQuery: "" };
  return { rawPath: target.slice(0, q), rawQuery: target.slice(q + 1) };
}

/**
 * Parses an HTTP date (RFC 7231 IMF-fixdate, and the obsolete RFC 850 / asctime forms
 * `Date.parse` also reads) or an ISO 8601 basic `YYYYMMDDTHHMMSSZ` (some clients put the SigV4
 * form in x-amz-date); undefined when it is none of those.
 */
export function parseHttpDate(text: string): Date | undefined {
  if (text === "") return undefined;
  const basic = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (basic !== null) {
    const [, y, mo, d, h, mi, s] = basic;
    return new Date(Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!));
  }
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
