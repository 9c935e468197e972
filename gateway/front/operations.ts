/**
 * Classifies a request into the S3 operation name as AWS spells it (`GetObject`,
 * `ListObjectsV2`, `UploadPartCopy`…), from the method, whether it addresses the service, a
 * bucket or an object, the sub-resource in the query, and `x-amz-copy-source`.
 *
 * Names follow the Amazon S3 API Reference, "Actions"
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html).
 * The proxy forwards every request whatever its name; the name drives routing in migrate mode,
 * logs and metrics. A sub-resource we do not know gets a generic name
 * (`UnknownBucketOperation`…) so it is never mistaken for a listing or a plain object read.
 */

import type { S3Operation } from "./operation-traits.js";

export type { S3Operation } from "./operation-traits.js";

/** The request facts classification needs. */
export interface OperationInput {
  /** HTTP method, upper case. */
  readonly method: string;
  /** Whether the request addresses a bucket (path-style first segment or virtual host). */
  readonly bucket: string | undefined;
  /** The object key, if the request addresses an object (may be undefined or empty for none). */
  readonly key: string | undefined;
  /** The raw query string without the leading `?` (as on the request line). */
  readonly rawQuery: string;
  /** Whether the request carries `x-amz-copy-source`. */
  readonly hasCopySource: boolean;
}

type Table = Readonly<Record<string, S3Operation>>;

// Sub-resource → operation, per level and method. Order matters only where two sub-resources
// can appear together; those cases are handled in code below.
const BUCKET_GET: Table = {
  accelerate: "GetBucketAccelerateConfiguration",
  acl: "GetBucketAcl",
  cors: "GetBucketCors",
  encryption: "GetBucketEncryption",
  lifecycle: "GetBucketLifecycleConfiguration",
  location: "GetBucketLocation",
  logging: "GetBucketLogging",
  notification: "GetBucketNotificationConfiguration",
  "object-lock": "GetObjectLockConfiguration",
  ownershipControls: "GetBucketOwnershipControls",
  policy: "GetBucketPolicy",
  policyStatus: "GetBucketPolicyStatus",
  publicAccessBlock: "GetPublicAccessBlock",
  replication: "GetBucketReplication",
  requestPayment: "GetBucketRequestPayment",
  tagging: "GetBucketTagging",
  uploads: "ListMultipartUploads",
  versioning: "GetBucketVersioning",
  versions: "ListObjectVersions",
  website: "GetBucketWebsite",
  metadataTable: "GetBucketMetadataTableConfiguration",
};

const BUCKET_PUT: Table = {
  accelerate: "PutBucketAccelerateConfiguration",
  acl: "PutBucketAcl",
  cors: "PutBucketCors",
  encryption: "PutBucketEncryption",
  lifecycle: "PutBucketLifecycleConfiguration",
  logging: "PutBucketLogging",
  notification: "PutBucketNotificationConfiguration",
  "object-lock": "PutObjectLockConfiguration",
  ownershipControls: "PutBucketOwnershipControls",
  policy: "PutBucketPolicy",
  publicAccessBlock: "PutPublicAccessBlock",
  replication: "PutBucketReplication",
  requestPayment: "PutBucketRequestPayment",
  tagging: "PutBucketTagging",
  versioning: "PutBucketVersioning",
  website: "PutBucketWebsite",
};

const BUCKET_DELETE: Table = {
  cors: "DeleteBucketCors",
  encryption: "DeleteBucketEncryption",
  lifecycle: "DeleteBucketLifecycle",
  ownershipControls: "DeleteBucketOwnershipControls",
  policy: "DeleteBucketPolicy",
  publicAccessBlock: "DeletePublicAccessBlock",
  replication: "DeleteBucketReplication",
  tagging: "DeleteBucketTagging",
  website: "DeleteBucketWebsite",
  metadataTable: "DeleteBucketMetadataTableConfiguration",
};

const BUCKET_POST: Table = {
  delete: "DeleteObjects",
  metadataTable: "CreateBucketMetadataTableConfiguration",
};

// Bucket configurations addressed by `?<kind>&id=…`: with an id one configuration, without it
// the List… form (GET only).
const BUCKET_ID_CONFIGS: Readonly<
  Record<string, { get: S3Operation; list: S3Operation; put: S3Operation; delete: S3Operation }>
> = {
  analytics: {
    get: "GetBucketAnalyticsConfiguration",
    list: "ListBucketAnalyticsConfigurations",
    put: "PutBucketAnalyticsConfiguration",
    delete: "DeleteBucketAnalyticsConfiguration",
  },
  inventory: {
    get: "GetBucketInventoryConfiguration",
    list: "ListBucketInventoryConfigurations",
    put: "PutBucketInventoryConfiguration",
    delete: "DeleteBucketInventoryConfiguration",
  },
  metrics: {
    get: "GetBucketMetricsConfiguration",
    list: "ListBucketMetricsConfigurations",
    put: "PutBucketMetricsConfiguration",
    delete: "DeleteBucketMetricsConfiguration",
  },
  "intelligent-tiering": {
    get: "GetBucketIntelligentTieringConfiguration",
    list: "ListBucketIntelligentTieringConfigurations",
    put: "PutBucketIntelligentTieringConfiguration",
    delete: "DeleteBucketIntelligentTieringConfiguration",
  },
};

const OBJECT_GET: Table = {
  acl: "GetObjectAcl",
  attributes: "GetObjectAttributes",
  "legal-hold": "GetObjectLegalHold",
  retention: "GetObjectRetention",
  tagging: "GetObjectTagging",
  torrent: "GetObjectTorrent",
  uploadId: "ListParts",
};

const OBJECT_PUT: Table = {
  acl: "PutObjectAcl",
  "legal-hold": "PutObjectLegalHold",
  retention: "PutObjectRetention",
  tagging: "PutObjectTagging",
};

const OBJECT_POST: Table = {
  uploads: "CreateMultipartUpload",
  uploadId: "CompleteMultipartUpload",
  restore: "RestoreObject",
  select: "SelectObjectContent",
};

const OBJECT_DELETE: Table = {
  tagging: "DeleteObjectTagging",
  uploadId: "AbortMultipartUpload",
};

// Query parameters that refine an operation rather than select a sub-resource. A valueless
// parameter outside this set and the tables above is an unknown sub-resource.
const ORDINARY_PARAMS = new Set([
  "continuation-token",
  "delimiter",
  "encoding-type",
  "fetch-owner",
  "id",
  "key-marker",
  "list-type",
  "marker",
  "max-keys",
  "max-parts",
  "max-uploads",
  "part-number-marker",
  "partNumber",
  "prefix",
  "start-after",
  "upload-id-marker",
  "version-id-marker",
  "versionId",
  "x-id",
  "select-type",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
]);

/** Operation names for requests that match no known S3 action; still proxied as is. */
export const UNKNOWN_OPERATIONS = {
  service: "UnknownServiceOperation",
  bucket: "UnknownBucketOperation",
  object: "UnknownObjectOperation",
} as const satisfies Record<string, S3Operation>;

/** Returns the parameter names of a raw query string, undecoded except for `%XX`, in order. */
export function queryParamNames(rawQuery: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!rawQuery) return out;
  for (const part of rawQuery.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    const name = safeDecode(rawName);
    if (!out.has(name)) out.set(name, safeDecode(rawValue));
  }
  return out;
}

/** Classifies one request into its S3 operation name. */
export function classifyOperation(input: OperationInput): S3Operation {
  const params = queryParamNames(input.rawQuery);
  const method = input.method.toUpperCase();
  const has = (name: string): boolean => params.has(name);

  if (input.bucket === undefined || input.bucket === "") {
    return method === "GET" && !hasUnknownSubresource(params, {})
      ? "ListBuckets"
      : UNKNOWN_OPERATIONS.service;
  }

  if (input.key === undefined || input.key === "") {
    for (const [kind, names] of Object.entries(BUCKET_ID_CONFIGS)) {
      if (!has(kind)) continue;
      if (method === "GET") return has("id") ? names.get : names.list;
      if (method === "PUT") return names.put;
      if (method === "DELETE") return names.delete;
      return UNKNOWN_OPERATIONS.bucket;
    }
    switch (method) {
      case "GET":
        return (
          firstMatch(BUCKET_GET, params) ??
          (hasUnknownSubresource(params, BUCKET_GET)
            ? UNKNOWN_OPERATIONS.bucket
            : params.get("list-type") === "2"
              ? "ListObjectsV2"
              : "ListObjects")
        );
      case "HEAD":
        return "HeadBucket";
      case "PUT":
        return (
          firstMatch(BUCKET_PUT, params) ?? orUnknown(params, BUCKET_PUT, "CreateBucket", "bucket")
        );
      case "DELETE":
        return (
          firstMatch(BUCKET_DELETE, params) ??
          orUnknown(params, BUCKET_DELETE, "DeleteBucket", "bucket")
        );
      case "POST":
        // A POST to the bucket with no sub-resource is a browser-form upload
        // (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html).
        return (
          firstMatch(BUCKET_POST, params) ?? orUnknown(params, BUCKET_POST, "PostObject", "bucket")
        );
      default:
        return UNKNOWN_OPERATIONS.bucket;
    }
  }

  switch (method) {
    case "GET":
      return firstMatch(OBJECT_GET, params) ?? orUnknown(params, OBJECT_GET, "GetObject", "object");
    case "HEAD":
      return "HeadObject";
    case "PUT":
      if (has("uploadId") && has("partNumber"))
        return input.hasCopySource ? "UploadPartCopy" : "UploadPart";
      return (
        firstMatch(OBJECT_PUT, params) ??
        orUnknown(params, OBJECT_PUT, input.hasCopySource ? "CopyObject" : "PutObject", "object")
      );
    case "POST":
      return firstMatch(OBJECT_POST, params) ?? UNKNOWN_OPERATIONS.object;
    case "DELETE":
      return (
        firstMatch(OBJECT_DELETE, params) ??
        orUnknown(params, OBJECT_DELETE, "DeleteObject", "object")
      );
    default:
      return UNKNOWN_OPERATIONS.object;
  }
}

function firstMatch(table: Table, params: ReadonlyMap<string, string>): S3Operation | undefined {
  for (const name of params.keys()) {
    // Own properties only: a parameter named `constructor` must not find Object's.
    if (Object.hasOwn(table, name)) return table[name];
  }
  return undefined;
}

function orUnknown(
  params: ReadonlyMap<string, string>,
  table: Table,
  fallback: S3Operation,
  level: "bucket" | "object",
): S3Operation {
  return hasUnknownSubresource(params, table) ? UNKNOWN_OPERATIONS[level] : fallback;
}

/**
 * Whether the query holds a valueless parameter that is neither a known sub-resource nor an
 * ordinary parameter: sub-resources are valueless (`?acl`), while parameters with values that
 * S3 does not know (a cache buster `?t=1`) are ignored by S3 and by us.
 */
function hasUnknownSubresource(params: ReadonlyMap<string, string>, table: Table): boolean {
  for (const [name, value] of params) {
    if (value !== "") continue;
    if (
      ORDINARY_PARAMS.has(name) ||
      Object.hasOwn(table, name) ||
      name.startsWith("X-Amz-") ||
      name.startsWith("x-amz-")
    )
      continue;
    return true;
  }
  return false;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
