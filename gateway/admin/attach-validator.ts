/**
 * The checks `attach` (and a change of source settings) runs before anything is saved
 * (DESIGN 3.5): the target bucket exists (HeadBucket with the target's service credential);
 * the source bucket exists and the source credential can list it (ListObjectsV2 max-keys=1);
 * for an https source, the given CA (or the system CAs) verifies its certificate. Each failure
 * is one {@link AdminError} naming the side and the reason, never a secret.
 */
import { readFile } from "node:fs/promises";
import { S3Client, S3ClientError, S3ConnectionError } from "../../s3/client.js";
import { AdminError, type AttachValidator } from "./api.js";
import type { TargetConfig } from "../config.js";
import type { AttachInput } from "../state/store.js";

/** Timeouts of the validation requests: short, since an operator is waiting. */
const TIMEOUTS = { connectMs: 5_000, headersMs: 15_000, bodyIdleMs: 15_000 };

/** Options for {@link S3AttachValidator}. */
export interface S3AttachValidatorOptions {
  readonly target: TargetConfig;
}

/** Validates attach requests against the real target and source S3 endpoints. */
export class S3AttachValidator implements AttachValidator {
  readonly #target: TargetConfig;
  #targetCa: Promise<string | undefined> | undefined;

  constructor(options: S3AttachValidatorOptions) {
    this.#target = options.target;
  }

  async validate(input: AttachInput, options: { checkTarget: boolean }): Promise<void> {
    if (options.checkTarget) await this.#checkTarget(input.bucket);
    await checkSource(input);
  }

  async #checkTarget(bucket: string): Promise<void> {
    this.#targetCa ??= this.#target.ca
      ? readFile(this.#target.ca, "utf8")
      : Promise.resolve(undefined);
    const ca = await this.#targetCa;
    const client = new S3Client({
      endpoint: this.#target.endpoint,
      credentials: { accessKeyId: this.#target.accessKey, secretAccessKey: this.#target.secretKey },
      region: this.#target.region,
      ...(ca ? { ca } : {}),
      connections: 1,
      timeouts: TIMEOUTS,
      retry: { attempts: 2 },
    });
    try {
      await drain(client.request({ method: "HEAD", bucket }));
    } catch (err) {
      throw explain(err, "target", bucket, "TargetBucketNotFound", "create it on the target first");
    } finally {
      await client.close();
    }
  }
}

async function checkSource(input: AttachInput): Promise<void> {
  const https = input.sourceUrl.startsWith("https://");
  const client = new S3Client({
    endpoint: input.sourceUrl,
    credentials: { accessKeyId: input.sourceAccessKey, secretAccessKey: input.sourceSecretKey },
    region: input.sourceRegion,
    ...(https && input.sourceCa !== "system" ? { ca: input.sourceCa } : {}),
    connections: 1,
    timeouts: TIMEOUTS,
    retry: { attempts: 2 },
  });
  try {
    // Listing proves both that the bucket exists and that the credential may read it, which
    // forward mode and s3migrate need (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html).
    await drain(
      client.request({
        method: "GET",
        bucket: input.sourceBucket,
        query: { "list-type": "2", "max-keys": "1" },
      }),
    );
  } catch (err) {
    throw explain(
      err,
      "source",
      input.sourceBucket,
      "SourceBucketNotFound",
      "check --source and the source URL",
    );
  } finally {
    await client.close();
  }
}

async function drain(
  p: Promise<{ body: NodeJS.ReadableStream & { resume(): unknown } }>,
): Promise<void> {
  const res = await p;
  res.body.resume();
}

function explain(
  err: unknown,
  side: "target" | "source",
  bucket: string,
  notFoundCode: string,
  hint: string,
): AdminError {
  const Side = side === "target" ? "Target" : "Source";
  if (err instanceof S3ConnectionError) {
    if (err.failure === "tls") {
      return new AdminError(
        422,
        `${Side}TlsError`,
        `${side} certificate not trusted or TLS failed (${tlsReason(err.cause)}); check the <tls-cert> given`,
      );
    }
    return new AdminError(
      422,
      `${Side}Unreachable`,
      `${side} endpoint unreachable (${err.failure})`,
    );
  }
  if (err instanceof S3ClientError) {
    if (err.status === 404 || err.code === "NoSuchBucket") {
      return new AdminError(422, notFoundCode, `${side} bucket ${bucket} does not exist; ${hint}`);
    }
    if (
      err.status === 403 ||
      err.status === 401 ||
      err.code === "InvalidAccessKeyId" ||
      err.code === "SignatureDoesNotMatch"
    ) {
      return new AdminError(
        422,
        `${Side}AccessDenied`,
        `the ${side} credential cannot ${side === "target" ? "access" : "list"} bucket ${bucket} (${err.code})`,
      );
    }
    return new AdminError(
      422,
      `${Side}Error`,
      `${side} answered ${err.status} ${err.code} for bucket ${bucket}`,
    );
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  return new AdminError(
    422,
    `${Side}Error`,
    `${side} check failed for bucket ${bucket}${typeof code === "string" ? ` (${code})` : ""}`,
  );
}

function tlsReason(cause: unknown): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : "handshake failed";
}
