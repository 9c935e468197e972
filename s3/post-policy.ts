/**
 * Browser-form uploads (PostObject): the policy document, its signature (SigV4 and SigV2) and
 * its conditions, as S3 defines them in
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/HTTPPOSTForms.html (V2).
 *
 * Pure functions of the form fields: the multipart parsing and the upload live in the gateway
 * (gateway/front/post-object.ts). Every refusal is an S3Error with S3's code; signatures are
 * compared in constant time.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { S3Error } from "./errors.js";
import { SCOPE_TERMINATOR, SIGV4_ALGORITHM } from "./sigv4-canonical.js";
import { signingKey } from "./signing-key.js";
import { equalSignature } from "./sigv2-verify.js";

/** One condition of a policy. Field names are lower case, without the `$`. */
export type PolicyCondition =
  | { readonly kind: "eq"; readonly field: string; readonly value: string }
  | { readonly kind: "starts-with"; readonly field: string; readonly prefix: string }
  | { readonly kind: "content-length-range"; readonly min: number; readonly max: number };

/** A decoded policy document. */
export interface PostPolicy {
  readonly expiration: Date;
  readonly conditions: readonly PolicyCondition[];
}

/** Who signed the form, once its signature is verified. */
export interface VerifiedPost {
  readonly accessKeyId: string;
  readonly signatureVersion: "v4" | "v2";
}

/** How to verify a form's signature. */
export interface PostVerifyOptions {
  readonly lookupSecret: (accessKeyId: string) => string | undefined;
  /** The region the gateway serves (a V4 credential scope must name it). */
  readonly region: string;
  /** Whether SigV2 forms (`AWSAccessKeyId` + `signature`) are accepted. */
  readonly sigv2: boolean;
}

/** Largest policy document (base64) accepted: S3's own form limit is 20 KB of fields. */
export const MAX_POLICY_BYTES = 20 * 1024;

/**
 * Form fields that need no condition in the policy: the file, the policy and the signature
 * fields themselves, and any `x-ignore-` field (AWS: "Each form field that you specify in a
 * form (except x-amz-signature, file, policy, and field names that have an x-ignore- prefix)
 * must appear in the list of conditions"). The V2 signing fields are exempt as the V4 ones are.
 */
const EXEMPT_FIELDS: ReadonlySet<string> = new Set([
  "file",
  "policy",
  "x-amz-signature",
  "signature",
  "awsaccesskeyid",
  "x-amz-security-token",
]);

function invalidPolicy(message: string): S3Error {
  return new S3Error("AccessDenied", { message: `Invalid according to Policy: ${message}` });
}

function malformedPolicy(message: string): S3Error {
  return new S3Error("MalformedPOSTRequest", {
    message: `The body of your POST request is not well-formed multipart/form-data. ${message}`,
  });
}

/** Decodes and checks the shape of a base64 policy document; throws S3Error. */
export function parsePolicy(policyBase64: string): PostPolicy {
  if (policyBase64.length > MAX_POLICY_BYTES) throw invalidPolicy("Policy is too large.");
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(policyBase64, "base64").toString("utf8"));
  } catch {
    throw new S3Error("InvalidPolicyDocument", {
      message: "Invalid Policy: Invalid JSON.",
    });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new S3Error("InvalidPolicyDocument", { message: "Invalid Policy: Invalid JSON." });
  }
  const { expiration, conditions } = doc as { expiration?: unknown; conditions?: unknown };
  if (typeof expiration !== "string") {
    throw new S3Error("InvalidPolicyDocument", {
      message: "Invalid Policy: Policy missing expiration.",
    });
  }
  const when = new Date(expiration);
  if (Number.isNaN(when.getTime())) {
    throw new S3Error("InvalidPolicyDocument", {
      message: "Invalid Policy: Invalid 'expiration' value.",
    });
  }
  if (!Array.isArray(conditions)) {
    throw new S3Error("InvalidPolicyDocument", {
      message: "Invalid Policy: Policy missing conditions.",
    });
  }
  return { expiration: when, conditions: conditions.map(parseCondition) };
}

function parseCondition(c: unknown): PolicyCondition {
  const bad = (): S3Error =>
    new S3Error("InvalidPolicyDocument", {
      message: `Invalid Policy: Invalid Condition: ${JSON.stringify(c)?.slice(0, 200) ?? ""}`,
    });
  if (Array.isArray(c)) {
    const op = typeof c[0] === "string" ? c[0].toLowerCase() : undefined;
    if (op === "content-length-range") {
      const [, min, max] = c as unknown[];
      const lo = typeof min === "string" ? Number(min) : min;
      const hi = typeof max === "string" ? Number(max) : max;
      if (
        c.length !== 3 ||
        typeof lo !== "number" ||
        typeof hi !== "number" ||
        !Number.isInteger(lo) ||
        !Number.isInteger(hi) ||
        lo < 0 ||
        hi < lo
      ) {
        throw bad();
      }
      return { kind: "content-length-range", min: lo, max: hi };
    }
    if ((op === "eq" || op === "starts-with") && c.length === 3) {
      const [, name, value] = c as unknown[];
      if (typeof name !== "string" || !name.startsWith("$") || typeof value !== "string") {
        throw bad();
      }
      const field = name.slice(1).toLowerCase();
      return op === "eq"
        ? { kind: "eq", field, value }
        : { kind: "starts-with", field, prefix: value };
    }
    throw bad();
  }
  if (typeof c === "object" && c !== null) {
    const entries = Object.entries(c);
    const [first] = entries;
    if (entries.length !== 1 || first === undefined || typeof first[1] !== "string") throw bad();
    return { kind: "eq", field: first[0].toLowerCase(), value: first[1] };
  }
  throw bad();
}

/**
 * Verifies the form's signature over the base64 policy: SigV4 (`x-amz-algorithm`,
 * `x-amz-credential`, `x-amz-date`, `x-amz-signature`: hex HMAC-SHA256 with the scope's signing
 * key) or SigV2 (`AWSAccessKeyId`, `signature`: base64 HMAC-SHA1). `fields` has lower-case
 * names. Throws S3Error: InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied (no
 * signature at all), InvalidArgument / AuthorizationQueryParametersError (malformed fields).
 */
export function verifyPostSignature(
  fields: ReadonlyMap<string, string>,
  opts: PostVerifyOptions,
): VerifiedPost {
  const policy = fields.get("policy");
  const algorithm = fields.get("x-amz-algorithm");
  if (algorithm !== undefined || fields.has("x-amz-signature") || fields.has("x-amz-credential")) {
    if (policy === undefined) throw missingField("policy");
    if (algorithm === undefined) throw missingField("x-amz-algorithm");
    if (algorithm !== SIGV4_ALGORITHM) {
      throw new S3Error("InvalidArgument", {
        message: "Only AWS4-HMAC-SHA256 is supported",
        extra: { ArgumentName: "X-Amz-Algorithm", ArgumentValue: algorithm },
      });
    }
    const credential = fields.get("x-amz-credential");
    const date = fields.get("x-amz-date");
    const provided = fields.get("x-amz-signature");
    if (credential === undefined) throw missingField("x-amz-credential");
    if (date === undefined) throw missingField("x-amz-date");
    if (provided === undefined) throw missingField("x-amz-signature");
    const parts = credential.split("/");
    if (
      parts.length !== 5 ||
      parts[3] !== "s3" ||
      parts[4] !== SCOPE_TERMINATOR ||
      !/^\d{8}$/.test(parts[1] ?? "")
    ) {
      throw new S3Error("InvalidArgument", {
        message:
          'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        extra: { ArgumentName: "x-amz-credential", ArgumentValue: credential },
      });
    }
    const [accessKeyId, day, region] = parts as [string, string, string, string, string];
    if (region !== opts.region) {
      throw new S3Error("AuthorizationHeaderMalformed", {
        message: `The authorization header is malformed; the region '${region}' is wrong; expecting '${opts.region}'`,
        extra: { Region: opts.region },
      });
    }
    const secret = opts.lookupSecret(accessKeyId);
    if (secret === undefined) {
      throw new S3Error("InvalidAccessKeyId", { extra: { AWSAccessKeyId: accessKeyId } });
    }
    const key = signingKey(secret, day, region, "s3");
    const computed = createHmac("sha256", key).update(policy, "utf8").digest("hex");
    const ok =
      /^[0-9a-f]{64}$/.test(provided) &&
      timingSafeEqual(Buffer.from(computed, "latin1"), Buffer.from(provided, "latin1"));
    if (!ok) {
      throw new S3Error("SignatureDoesNotMatch", { extra: { AWSAccessKeyId: accessKeyId } });
    }
    return { accessKeyId, signatureVersion: "v4" };
  }
  const v2Key = fields.get("awsaccesskeyid");
  if (v2Key !== undefined || fields.has("signature")) {
    if (!opts.sigv2) {
      throw new S3Error("InvalidRequest", {
        message:
          "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
      });
    }
    if (policy === undefined) throw missingField("policy");
    const provided = fields.get("signature");
    if (v2Key === undefined) throw missingField("AWSAccessKeyId");
    if (provided === undefined) throw missingField("Signature");
    const secret = opts.lookupSecret(v2Key);
    if (secret === undefined) {
      throw new S3Error("InvalidAccessKeyId", { extra: { AWSAccessKeyId: v2Key } });
    }
    const computed = createHmac("sha1", secret).update(policy, "utf8").digest("base64");
    if (!equalSignature(computed, provided)) {
      throw new S3Error("SignatureDoesNotMatch", { extra: { AWSAccessKeyId: v2Key } });
    }
    return { accessKeyId: v2Key, signatureVersion: "v2" };
  }
  // No signature fields: an anonymous form, which the gateway does not serve.
  throw new S3Error("AccessDenied", { message: "Access Denied." });
}

function missingField(name: string): S3Error {
  return new S3Error("InvalidArgument", {
    message: `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`,
    extra: { ArgumentName: name, ArgumentValue: "" },
  });
}

/** What the conditions are checked against, besides the form fields. */
export interface PolicyCheckInput {
  /** Lower-case field names; `key` with `${filename}` already substituted; `bucket` added. */
  readonly fields: ReadonlyMap<string, string>;
  readonly now: Date;
}

/**
 * Checks everything that can be checked before the file's bytes arrive: expiry, every eq /
 * starts-with condition, and that every form field is covered by a condition. Returns the
 * content-length range to enforce while the file streams (`[0, Infinity]` when none).
 */
export function checkPolicy(
  policy: PostPolicy,
  input: PolicyCheckInput,
): { readonly min: number; readonly max: number } {
  if (policy.expiration.getTime() <= input.now.getTime()) {
    throw invalidPolicy("Policy expired.");
  }
  // The bucket counts as a field: a policy must name it (AWS refuses "Extra input fields: bucket").
  const covered = new Set<string>();
  let range = { min: 0, max: Number.POSITIVE_INFINITY };
  for (const c of policy.conditions) {
    if (c.kind === "content-length-range") {
      range = { min: c.min, max: c.max };
      continue;
    }
    covered.add(c.field);
    const value = input.fields.get(c.field) ?? "";
    if (c.kind === "eq") {
      if (value !== c.value) {
        throw invalidPolicy(
          `Policy Condition failed: ${JSON.stringify(["eq", `$${c.field}`, c.value])}`,
        );
      }
    } else if (!startsWith(c.field, value, c.prefix)) {
      throw invalidPolicy(
        `Policy Condition failed: ${JSON.stringify(["starts-with", `$${c.field}`, c.prefix])}`,
      );
    }
  }
  for (const name of input.fields.keys()) {
    if (EXEMPT_FIELDS.has(name) || name.startsWith("x-ignore-") || covered.has(name)) continue;
    // The SigV4 fields other than the signature are covered by conditions in a real policy;
    // AWS requires that too, so they are not exempt.
    throw invalidPolicy(`Extra input fields: ${name}`);
  }
  return range;
}

/**
 * `starts-with`; for Content-Type a comma-separated list of values must each start with the
 * prefix (AWS: "If the value is a comma-separated list, each value must start with the prefix").
 */
function startsWith(field: string, value: string, prefix: string): boolean {
  if (prefix === "") return true;
  if (field === "content-type" && value.includes(",")) {
    return value.split(",").every((v) => v.trim().startsWith(prefix));
  }
  return value.startsWith(prefix);
}

/** The refusal for a file outside the policy's content-length-range. */
export function contentLengthOutOfRange(
  size: number,
  range: { readonly min: number; readonly max: number },
): S3Error {
  return size > range.max
    ? new S3Error("EntityTooLarge", {
        message: "Your proposed upload exceeds the maximum allowed object size.",
        extra: { ProposedSize: String(size), MaxSizeAllowed: String(range.max) },
      })
    : new S3Error("EntityTooSmall", {
        message: "Your proposed upload is smaller than the minimum allowed size",
        extra: { ProposedSize: String(size), MinSizeAllowed: String(range.min) },
      });
}

export { malformedPolicy };
