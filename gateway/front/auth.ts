/**
 * Authentication and authorization of S3 requests (DESIGN 3.1).
 *
 * Authentication is {@link verifySigV4} on the request exactly as it arrived, with the secrets
 * of the configured credentials, or {@link verifySigV2} for a Signature Version 2 request when
 * `auth.sigv2` is on (the default: sources usually accept V2, and clients must not notice the
 * gateway). With `auth.sigv2: false` a V2 request gets SigV4's refusal, InvalidRequest "Please
 * use AWS4-HMAC-SHA256". Admin credentials are not S3 users: their signature is checked
 * (so a wrong guess still says SignatureDoesNotMatch) and then the request is refused with
 * AccessDenied; the admin role only drives the admin API.
 *
 * Authorization follows the credential's `buckets` globs and `readOnly` flag. A copy
 * (`x-amz-copy-source`, CopyObject and UploadPartCopy) is authorized against the client's own
 * identity for reading the copy source bucket, never against the service credential the
 * gateway re-signs with (PITFALLS.md, the confused-deputy advisories).
 */
import { S3Error } from "../../s3/errors.js";
import type { IncomingSigV4Request, VerifiedRequest } from "../../s3/sigv4-types.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import { isSigV2Request, verifySigV2 } from "../../s3/sigv2-verify.js";
import { InvalidPercentEncodingError, percentDecode } from "../../s3/uri-encode.js";
import { bucketGlobToRegExp, type CredentialConfig, type GatewayConfig } from "../config.js";
import { isWriteRequest } from "./operation-traits.js";

export { isWriteRequest } from "./operation-traits.js";

/** A credential ready for per-request checks (its bucket globs compiled once). */
export interface S3Principal {
  readonly credential: CredentialConfig;
  /** Compiled `buckets` globs; undefined = every bucket. */
  readonly bucketPatterns: readonly RegExp[] | undefined;
}

/** The credentials of a configuration, indexed for lookups on the hot path. */
export interface CredentialIndex {
  readonly byAccessKey: ReadonlyMap<string, S3Principal>;
  readonly region: string;
  /** Whether Signature Version 2 requests are verified (else refused as SigV4 refuses them). */
  readonly sigv2: boolean;
}

/** Builds the lookup table once at start-up. */
export function credentialIndex(
  config: Pick<GatewayConfig, "credentials" | "region"> & Partial<Pick<GatewayConfig, "auth">>,
): CredentialIndex {
  const byAccessKey = new Map<string, S3Principal>();
  for (const credential of config.credentials) {
    byAccessKey.set(credential.accessKey, {
      credential,
      bucketPatterns: credential.buckets?.map((g) => bucketGlobToRegExp(g)),
    });
  }
  return { byAccessKey, region: config.region, sigv2: config.auth?.sigv2 ?? true };
}

/** A request that passed authentication. */
export interface Authenticated {
  readonly principal: S3Principal;
  readonly verified: VerifiedRequest;
}

/** Options for {@link authenticate}. */
export interface AuthenticateOptions {
  /** The server clock (tests); now unless given. */
  readonly now?: Date;
  /** The bucket named by the Host header (virtual-hosted style): SigV2 signs it in the resource. */
  readonly virtualHostBucket?: string | undefined;
}

/**
 * Verifies the request's SigV4 (or, when enabled, SigV2) signature, header or presigned form,
 * and returns who signed it. Throws S3Error: the verifier's codes, or AccessDenied for an admin
 * credential.
 */
export function authenticate(
  req: IncomingSigV4Request,
  index: CredentialIndex,
  options: AuthenticateOptions = {},
): Authenticated {
  const common = {
    lookupSecret: (id: string) => index.byAccessKey.get(id)?.credential.secretKey,
    region: index.region,
    ...(options.now === undefined ? {} : { now: options.now }),
  };
  const verified =
    index.sigv2 && isSigV2Request(req)
      ? verifySigV2(req, { ...common, virtualHostBucket: options.virtualHostBucket })
      : verifySigV4(req, common);
  const principal = index.byAccessKey.get(verified.accessKeyId);
  if (principal === undefined) throw new S3Error("InvalidAccessKeyId");
  if (principal.credential.role === "admin") {
    throw new S3Error("AccessDenied", {
      message: "Admin credentials are for the admin API, not for S3 requests.",
    });
  }
  return { principal, verified };
}

/** Whether the principal may use `bucket` at all. */
export function principalAllowsBucket(principal: S3Principal, bucket: string): boolean {
  const patterns = principal.bucketPatterns;
  return patterns === undefined || patterns.some((p) => p.test(bucket));
}

/** A parsed `x-amz-copy-source` header. */
export interface CopySource {
  /** The decoded source bucket. */
  readonly bucket: string;
  /** The raw (still encoded) remainder after `bucket/`: the key and any `?versionId=`. */
  readonly rawRest: string;
}

/**
 * Parses `x-amz-copy-source` (`[/]bucket/key[?versionId=id]`, URL-encoded;
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html#API_CopyObject_RequestSyntax).
 * Throws InvalidArgument when it names no bucket and key.
 */
export function parseCopySource(value: string): CopySource {
  const text = value.trim().replace(/^\//, "");
  const slash = text.indexOf("/");
  if (slash <= 0 || slash === text.length - 1) throw invalidCopySource();
  let bucket: string;
  try {
    bucket = percentDecode(text.slice(0, slash)).toString("utf8");
  } catch (err) {
    if (err instanceof InvalidPercentEncodingError) throw invalidCopySource();
    throw err;
  }
  if (!/^[A-Za-z0-9._-]{1,255}$/.test(bucket)) throw invalidCopySource();
  return { bucket, rawRest: text.slice(slash + 1) };
}

function invalidCopySource(): S3Error {
  return new S3Error("InvalidArgument", {
    message: "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.",
    extra: { ArgumentName: "x-amz-copy-source" },
  });
}

/** What {@link authorize} checks. */
export interface AuthorizeInput {
  readonly principal: S3Principal;
  readonly method: string;
  /** The operation ({@link S3Operation}; any other name is judged by its method). */
  readonly operation: string;
  /** The addressed bucket; undefined for service-level requests. */
  readonly bucket: string | undefined;
  /** The parsed copy source, when the request carries `x-amz-copy-source`. */
  readonly copySource: CopySource | undefined;
}

/**
 * Refuses what the credential may not do (AccessDenied): a bucket outside its globs, a write by
 * a read-only user, a copy whose source bucket the client itself may not read, or a
 * service-level operation other than ListBuckets by a bucket-limited user.
 */
export function authorize(input: AuthorizeInput): void {
  const { principal, bucket } = input;
  const credential = principal.credential;
  if (credential.readOnly && isWriteRequest(input.method, input.operation)) {
    throw new S3Error("AccessDenied", { message: "This credential is read-only." });
  }
  if (bucket === undefined) {
    if (input.operation !== "ListBuckets" && principal.bucketPatterns !== undefined) {
      throw new S3Error("AccessDenied");
    }
    return;
  }
  if (!principalAllowsBucket(principal, bucket)) throw new S3Error("AccessDenied");
  if (
    input.copySource !== undefined &&
    !principalAllowsBucket(principal, input.copySource.bucket)
  ) {
    throw new S3Error("AccessDenied", {
      message: "Access Denied to the copy source bucket.",
      resource: `/${input.copySource.bucket}`,
    });
  }
}
