/**
 * Every S3 operation the gateway knows, and one row of traits per operation that the layers
 * read instead of re-deriving them from methods and query strings: authorization (read or
 * write), routing (the plan in migrate mode), the body guard (which bodies are small XML read
 * whole) and metrics (the operation label). `Record<S3Operation, …>` makes the compiler check
 * that a new operation gets a row.
 *
 * Names follow the Amazon S3 API Reference, "Actions"
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html).
 */

/** How an operation is served in migrate mode (DESIGN 3.3); each names one plan of routing/. */
export type MigrateRule =
  /** The target only: writes of new data, bucket-level configuration. */
  | "target"
  /** A read of one object: the target, and the source on a 404 for the key. */
  | "fallback"
  /** A write to an object's subresource (tags, ACL): where the object is, target first. */
  | "whereObject"
  /** A delete: applied to both sides, answered as one bucket. */
  | "both"
  /** A listing: one merged view of both buckets. */
  | "mergeList"
  /** CopyObject: the destination is the target; the copy source is read where it is. */
  | "copy"
  /** An operation on an existing multipart upload: where the upload lives. */
  | "upload"
  /** Refused while the bucket is being migrated. */
  | "refuse";

/** What a request body is, for the body guard. */
export type BodyKind =
  /** No body expected (a body sent anyway is verified and forwarded). */
  | "none"
  /** Object data or a document: streamed, never buffered. */
  | "stream"
  /**
   * A small document (tags, ACL, retention): streamed, except where a plan must be able to send
   * it twice (to the target, then to the source on a 404); then read whole, capped.
   */
  | "small"
  /** An XML document the gateway always reads whole, capped, and validates as S3 would. */
  | "xml";

/** The traits of one operation. */
export interface OperationTraits {
  /** Whether it changes data; `method` for operations we do not know (GET/HEAD read). */
  readonly access: "read" | "write" | "method";
  /** What it addresses. */
  readonly level: "service" | "bucket" | "object";
  /** Its request body. */
  readonly body: BodyKind;
  /** Its plan in migrate mode. */
  readonly migrate: MigrateRule;
}

const t = (
  access: OperationTraits["access"],
  level: OperationTraits["level"],
  migrate: MigrateRule,
  body: BodyKind = "none",
): OperationTraits => ({ access, level, body, migrate });

const bucketRead = t("read", "bucket", "target");
const bucketWrite = t("write", "bucket", "target");
const bucketWriteDoc = t("write", "bucket", "target", "stream");

/** The traits of every operation; the keys are the {@link S3Operation} union. */
export const OPERATION_TRAITS = {
  ListBuckets: t("read", "service", "target"),
  UnknownServiceOperation: t("method", "service", "target"),

  // Bucket listings: one merged view in migrate mode.
  ListObjects: t("read", "bucket", "mergeList"),
  ListObjectsV2: t("read", "bucket", "mergeList"),
  ListObjectVersions: t("read", "bucket", "mergeList"),
  ListMultipartUploads: t("read", "bucket", "mergeList"),

  HeadBucket: bucketRead,
  CreateBucket: bucketWrite,
  // Deleting a bucket whose objects partly live on the source would lose them.
  DeleteBucket: t("write", "bucket", "refuse"),
  DeleteObjects: t("write", "bucket", "both", "xml"),
  PostObject: t("write", "bucket", "target", "stream"),
  CreateBucketMetadataTableConfiguration: bucketWrite,
  UnknownBucketOperation: t("method", "bucket", "target"),

  GetBucketAccelerateConfiguration: bucketRead,
  GetBucketAcl: bucketRead,
  GetBucketCors: bucketRead,
  GetBucketEncryption: bucketRead,
  GetBucketLifecycleConfiguration: bucketRead,
  GetBucketLocation: bucketRead,
  GetBucketLogging: bucketRead,
  GetBucketNotificationConfiguration: bucketRead,
  GetObjectLockConfiguration: bucketRead,
  GetBucketOwnershipControls: bucketRead,
  GetBucketPolicy: bucketRead,
  GetBucketPolicyStatus: bucketRead,
  GetPublicAccessBlock: bucketRead,
  GetBucketReplication: bucketRead,
  GetBucketRequestPayment: bucketRead,
  GetBucketTagging: bucketRead,
  GetBucketVersioning: bucketRead,
  GetBucketWebsite: bucketRead,
  GetBucketMetadataTableConfiguration: bucketRead,

  PutBucketAccelerateConfiguration: bucketWriteDoc,
  PutBucketAcl: bucketWriteDoc,
  PutBucketCors: bucketWriteDoc,
  PutBucketEncryption: bucketWriteDoc,
  PutBucketLifecycleConfiguration: bucketWriteDoc,
  PutBucketLogging: bucketWriteDoc,
  PutBucketNotificationConfiguration: bucketWriteDoc,
  PutObjectLockConfiguration: bucketWriteDoc,
  PutBucketOwnershipControls: bucketWriteDoc,
  PutBucketPolicy: bucketWriteDoc,
  PutPublicAccessBlock: bucketWriteDoc,
  PutBucketReplication: bucketWriteDoc,
  PutBucketRequestPayment: bucketWriteDoc,
  PutBucketTagging: bucketWriteDoc,
  PutBucketVersioning: bucketWriteDoc,
  PutBucketWebsite: bucketWriteDoc,

  DeleteBucketCors: bucketWrite,
  DeleteBucketEncryption: bucketWrite,
  DeleteBucketLifecycle: bucketWrite,
  DeleteBucketOwnershipControls: bucketWrite,
  DeleteBucketPolicy: bucketWrite,
  DeletePublicAccessBlock: bucketWrite,
  DeleteBucketReplication: bucketWrite,
  DeleteBucketTagging: bucketWrite,
  DeleteBucketWebsite: bucketWrite,
  DeleteBucketMetadataTableConfiguration: bucketWrite,

  GetBucketAnalyticsConfiguration: bucketRead,
  ListBucketAnalyticsConfigurations: bucketRead,
  PutBucketAnalyticsConfiguration: bucketWriteDoc,
  DeleteBucketAnalyticsConfiguration: bucketWrite,
  GetBucketInventoryConfiguration: bucketRead,
  ListBucketInventoryConfigurations: bucketRead,
  PutBucketInventoryConfiguration: bucketWriteDoc,
  DeleteBucketInventoryConfiguration: bucketWrite,
  GetBucketMetricsConfiguration: bucketRead,
  ListBucketMetricsConfigurations: bucketRead,
  PutBucketMetricsConfiguration: bucketWriteDoc,
  DeleteBucketMetricsConfiguration: bucketWrite,
  GetBucketIntelligentTieringConfiguration: bucketRead,
  ListBucketIntelligentTieringConfigurations: bucketRead,
  PutBucketIntelligentTieringConfiguration: bucketWriteDoc,
  DeleteBucketIntelligentTieringConfiguration: bucketWrite,

  // Objects.
  GetObject: t("read", "object", "fallback"),
  HeadObject: t("read", "object", "fallback"),
  GetObjectAcl: t("read", "object", "fallback"),
  GetObjectAttributes: t("read", "object", "fallback"),
  GetObjectLegalHold: t("read", "object", "fallback"),
  GetObjectRetention: t("read", "object", "fallback"),
  GetObjectTagging: t("read", "object", "fallback"),
  GetObjectTorrent: t("read", "object", "fallback"),
  // SelectObjectContent is a POST that reads an object; IAM authorises it as s3:GetObject
  // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_SelectObjectContent.html).
  SelectObjectContent: t("read", "object", "fallback", "small"),
  PutObject: t("write", "object", "target", "stream"),
  CopyObject: t("write", "object", "copy"),
  PutObjectAcl: t("write", "object", "whereObject", "small"),
  PutObjectLegalHold: t("write", "object", "whereObject", "small"),
  PutObjectRetention: t("write", "object", "whereObject", "small"),
  PutObjectTagging: t("write", "object", "whereObject", "small"),
  DeleteObjectTagging: t("write", "object", "whereObject"),
  RestoreObject: t("write", "object", "whereObject", "small"),
  DeleteObject: t("write", "object", "both"),
  CreateMultipartUpload: t("write", "object", "target"),
  UploadPart: t("write", "object", "upload", "stream"),
  UploadPartCopy: t("write", "object", "upload"),
  ListParts: t("read", "object", "upload"),
  CompleteMultipartUpload: t("write", "object", "upload", "xml"),
  AbortMultipartUpload: t("write", "object", "upload"),
  UnknownObjectOperation: t("method", "object", "target"),
} as const satisfies Record<string, OperationTraits>;

/** An S3 operation name as AWS spells it, or one of the `Unknown…Operation` names. */
export type S3Operation = keyof typeof OPERATION_TRAITS;

/** The traits of `operation`. */
export function traitsOf(operation: S3Operation): OperationTraits {
  return OPERATION_TRAITS[operation];
}

/**
 * Whether a request changes data: the operation's trait, and for operations we do not know,
 * every method but GET and HEAD (an unknown OPTIONS or PATCH is a write: refusing it to a
 * read-only credential is the safe side).
 */
export function isWriteRequest(method: string, operation: string): boolean {
  const access = isS3Operation(operation) ? OPERATION_TRAITS[operation].access : "method";
  if (access !== "method") return access === "write";
  return method !== "GET" && method !== "HEAD";
}

/** Whether `name` is an operation of the table. */
export function isS3Operation(name: string): name is S3Operation {
  return Object.hasOwn(OPERATION_TRAITS, name);
}
