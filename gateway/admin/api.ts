/**
 * The admin HTTP API (DESIGN 3.5): attach, update, detach, show and list buckets' migration
 * state. It runs on its own listener (loopback by default), every request is SigV4-verified
 * against an `admin`-role credential with a signed body hash, and it speaks JSON both ways.
 * Errors are `{code, message}` with an HTTP status. Secrets are accepted, never returned.
 * The wire format is documented in docs/gateway-admin.md.
 */
import { createHash, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { S3Error } from "../../s3/errors.js";
import { verifySigV4 } from "../../s3/sigv4-verify.js";
import {
  ADMIN_PREFIX,
  NOT_CONFIRMED,
  type PublicBucketState,
  type PublicGatewayStatus,
  type StateStatus,
} from "./protocol.js";
import type { GatewayConfig } from "../config.js";
import {
  DEFAULT_COPY_ON_READ_MAX_SIZE,
  isBucketName,
  MAX_COPY_ON_READ_MAX_SIZE,
  MigrationStateError,
  type AttachInput,
  type BucketMigrationState,
  type BucketSelector,
  type MigrationStateStore,
  type StateChange,
} from "../state/store.js";
import { MIGRATION_MODES, type MigrationMode } from "../state/transitions.js";

export { ADMIN_PREFIX, type PublicBucketState };

/** The largest admin request body: a PEM bundle and a few strings. */
const MAX_BODY_BYTES = 256 * 1024;

/** A failure the admin API reports as `{code, message}` with `status`. */
export class AdminError extends Error {
  /** Stable, machine-readable code. */
  readonly code: string;
  /** HTTP status. */
  readonly status: number;
  /** The transition rule that refused, when a transition was refused. */
  readonly rule: string | undefined;

  constructor(status: number, code: string, message: string, options: { rule?: string } = {}) {
    super(message);
    this.name = "AdminError";
    this.status = status;
    this.code = code;
    this.rule = options.rule;
  }
}

/** Checks that a bucket can be attached (or a source change applied) before anything is saved. */
export interface AttachValidator {
  /** Resolves when the target bucket exists and the source is reachable, trusted and listable; otherwise throws {@link AdminError}. */
  validate(input: AttachInput, options: { checkTarget: boolean }): Promise<void>;
}

/** What the admin API needs. */
export interface AdminApiOptions {
  readonly config: GatewayConfig;
  readonly store: MigrationStateStore;
  readonly validator: AttachValidator;
  readonly logger: Logger;
  /** The clock for signature checks (tests). */
  readonly now?: () => Date;
}

/** A running admin listener. */
export interface AdminServer {
  /** `http(s)://host:port` it listens on. */
  readonly url: string;
  /** Stops accepting and waits for in-flight requests. */
  close(): Promise<void>;
}

/** Strips a state of its secret for display. */
export function publicState(state: BucketMigrationState): PublicBucketState {
  return {
    bucket: state.bucket,
    mode: state.mode,
    sourceUrl: state.sourceUrl,
    sourceBucket: state.sourceBucket,
    sourceAccessKey: state.sourceAccessKey,
    sourceRegion: state.sourceRegion,
    sourceCa: describeCa(state.sourceCa),
    copyOnRead: state.copyOnRead ?? false,
    copyOnReadMaxSize: state.copyOnReadMaxSize ?? DEFAULT_COPY_ON_READ_MAX_SIZE,
    history: state.history,
  };
}

/** One line describing a CA: `system` or `pem CN=… sha256:…`. */
export function describeCa(ca: string): string {
  if (ca === "system") return "system";
  try {
    const cert = new X509Certificate(ca);
    return `pem ${cert.subject.replace(/\n/g, ", ")} sha256:${cert.fingerprint256}`;
  } catch {
    return "pem (unparseable)";
  }
}

/** Builds the admin API on a fastify instance (not listening yet). */
export async function createAdminApi(options: AdminApiOptions): Promise<FastifyInstance> {
  const { config, store, validator, logger } = options;
  const admins = new Map(
    config.credentials.filter((c) => c.role === "admin").map((c) => [c.accessKey, c.secretKey]),
  );
  const others = new Set(
    config.credentials.filter((c) => c.role !== "admin").map((c) => c.accessKey),
  );
  const tls =
    config.admin.tls && config.tls
      ? { cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }
      : undefined;

  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // Bounded waits (PITFALLS "Limits"): admin requests are small; attach validation has its
    // own per-backend timeouts well under this.
    connectionTimeout: 60_000,
    requestTimeout: 60_000,
    keepAliveTimeout: 5_000,
    ...(tls ? { https: tls } : {}),
  }) as unknown as FastifyInstance;

  // Bodies are hashed for the signature check before they are parsed, so take them raw.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  const actor = new WeakMap<FastifyRequest, string>();

  app.addHook("preHandler", async (req) => {
    let verified;
    try {
      verified = verifySigV4(
        {
          method: req.raw.method ?? "GET",
          rawUrl: req.raw.url ?? "/",
          rawHeaders: req.raw.rawHeaders,
        },
        {
          // A non-admin credential is looked up too, so its valid signature can be told apart
          // from an unknown key and answered AccessDenied rather than InvalidAccessKeyId.
          lookupSecret: (id) =>
            admins.get(id) ??
            (others.has(id)
              ? config.credentials.find((c) => c.accessKey === id)?.secretKey
              : undefined),
          region: config.region,
          ...(options.now ? { now: options.now() } : {}),
        },
      );
    } catch (err) {
      if (err instanceof S3Error) throw new AdminError(err.status, err.code, err.message);
      throw err;
    }
    if (!admins.has(verified.accessKeyId)) {
      throw new AdminError(403, "AccessDenied", "the admin API needs a credential with role admin");
    }
    // The body must be covered by the signature: an unsigned payload on plain HTTP could be
    // altered on the way (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
    if (verified.payload !== "hex" || verified.payloadSha256 === undefined) {
      throw new AdminError(
        400,
        "UnsignedPayload",
        "admin requests must sign the body's SHA-256 in x-amz-content-sha256",
      );
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const digest = createHash("sha256").update(body).digest("hex");
    if (digest !== verified.payloadSha256.toLowerCase()) {
      throw new AdminError(
        400,
        "XAmzContentSHA256Mismatch",
        "the body does not match x-amz-content-sha256",
      );
    }
    actor.set(req, verified.accessKeyId);
  });

  app.addHook("onResponse", async (req, reply) => {
    logger.info(
      {
        reqId: req.id,
        method: req.method,
        path: req.routeOptions.url ?? req.url.split("?")[0],
        status: reply.statusCode,
        accessKeyId: actor.get(req),
        ms: Math.round(reply.elapsedTime),
      },
      "admin request",
    );
  });

  app.setErrorHandler(async (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const e = toAdminError(err);
    if (e.status >= 500) logger.error({ reqId: req.id, err }, "admin request failed");
    return reply
      .status(e.status)
      .type("application/json")
      .send({ code: e.code, message: e.message, ...(e.rule ? { rule: e.rule } : {}) });
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.status(404).send({
      code: "NotFound",
      message: `no admin endpoint ${req.method} ${req.url.split("?")[0]}`,
    }),
  );

  const by = (req: FastifyRequest): string => actor.get(req) ?? "unknown";

  /** The version this gateway applied and the live gateways, for show and list. */
  const status = async (): Promise<StateStatus> => {
    const gateways: readonly PublicGatewayStatus[] = await store.liveGateways();
    return { version: store.snapshot().version, gateways };
  };

  /**
   * A change is acknowledged once every live gateway applied it (issue 12): otherwise one
   * gateway could still route a bucket by its old mode after the admin was told it changed.
   * A gateway that does not confirm within `state.confirmSeconds` makes the answer 504
   * {@link NOT_CONFIRMED}: the change is durable and in force on the others, and the laggard
   * either applies it at its next poll or, cut off from the store, refuses attached buckets
   * once its lease runs out.
   */
  const confirmed = async (what: string): Promise<StateStatus> => {
    const version = store.snapshot().version;
    const pending = await store.waitForGateways(version, {
      timeoutMs: config.state.confirmTimeoutMs,
    });
    if (pending.length > 0) {
      const names = pending.map((g) => `${g.id} (at version ${g.appliedVersion})`).join(", ");
      logger.warn(
        { version, pending: pending.map((g) => g.id) },
        "change not confirmed by every gateway",
      );
      throw new AdminError(
        504,
        NOT_CONFIRMED,
        `${what} is saved (state version ${version}) but ${names} did not apply it within ${config.state.confirmTimeoutMs / 1000}s; it is in force on the other gateways, and a gateway cut off from the store refuses attached buckets (503) once its lease runs out`,
      );
    }
    return status();
  };

  app.get(`${ADMIN_PREFIX}/buckets`, async () => ({
    buckets: store.list().map(publicState),
    ...(await status()),
  }));

  app.get<{ Params: { bucket: string } }>(`${ADMIN_PREFIX}/buckets/:bucket`, async (req) => {
    const state = store.get(bucketParam(req.params.bucket));
    if (!state)
      throw new AdminError(404, "NotAttached", `bucket ${req.params.bucket} is not attached`);
    const tombstones = await store.countTombstones(state.bucket);
    return { bucket: { ...publicState(state), tombstones }, ...(await status()) };
  });

  app.post<{ Params: { bucket: string } }>(
    `${ADMIN_PREFIX}/buckets/:bucket`,
    async (req, reply) => {
      const bucket = bucketParam(req.params.bucket);
      const body = jsonBody(req.body);
      if (store.get(bucket)) {
        throw new AdminError(
          409,
          "AlreadyAttached",
          `bucket ${bucket} is already attached; update or detach it`,
        );
      }
      const sourceUrl = sourceUrlField(body.sourceUrl, "sourceUrl");
      const input: AttachInput = {
        bucket,
        sourceUrl,
        sourceBucket:
          body.sourceBucket === undefined ? bucket : bucketField(body.sourceBucket, "sourceBucket"),
        sourceAccessKey: stringField(body.sourceAccessKey, "sourceAccessKey"),
        sourceSecretKey: stringField(body.sourceSecretKey, "sourceSecretKey"),
        sourceRegion:
          body.sourceRegion === undefined ? "us-east-1" : regionField(body.sourceRegion),
        sourceCa: caField(body.sourceCa, sourceUrl),
        ...copyOnReadOf(body),
      };
      rejectUnknown(body, [
        "sourceUrl",
        "sourceBucket",
        "sourceAccessKey",
        "sourceSecretKey",
        "sourceRegion",
        "sourceCa",
        ...COPY_ON_READ_FIELDS,
      ]);
      await validator.validate(input, { checkTarget: true });
      const saved = await store.attach(input, { by: by(req) });
      logger.info(
        { bucket, sourceUrl, sourceBucket: input.sourceBucket, by: by(req) },
        "bucket attached",
      );
      const applied = await confirmed(`attach of ${bucket}`);
      return reply.status(201).send({ bucket: publicState(saved), ...applied });
    },
  );

  app.post(`${ADMIN_PREFIX}/update`, async (req) => {
    const body = jsonBody(req.body);
    rejectUnknown(body, [
      "bucket",
      "url",
      "all",
      "mode",
      "force",
      "confirmIrreversible",
      "sourceUrl",
      "sourceBucket",
      "sourceAccessKey",
      "sourceSecretKey",
      "sourceRegion",
      "sourceCa",
      ...COPY_ON_READ_FIELDS,
    ]);
    const selector = selectorOf(body);
    const change = changeOf(body);
    if (Object.keys(change).length === 0) {
      throw new AdminError(
        400,
        "InvalidRequest",
        "nothing to update: give mode, source or copy-on-read settings",
      );
    }
    const sourceChanged = Object.keys(change).some(
      (k) => k !== "mode" && !(COPY_ON_READ_FIELDS as readonly string[]).includes(k),
    );
    if (sourceChanged) {
      // The new source settings must work for every bucket they apply to before any is saved.
      const current = selected(store.list(), selector);
      for (const state of current) {
        const sourceCa =
          change.sourceCa ??
          (change.sourceUrl !== undefined
            ? caField(state.sourceCa, change.sourceUrl)
            : state.sourceCa);
        await validator.validate({ ...state, ...change, sourceCa }, { checkTarget: false });
      }
    }
    const updated = await store.update(selector, change, {
      by: by(req),
      force: body.force === true,
      confirmIrreversible: body.confirmIrreversible === true,
    });
    logger.info(
      { buckets: updated.map((s) => s.bucket), mode: change.mode, by: by(req) },
      "buckets updated",
    );
    const applied = await confirmed(`the update of ${updated.map((u) => u.bucket).join(", ")}`);
    return { buckets: updated.map(publicState), ...applied };
  });

  app.delete<{ Params: { bucket: string } }>(`${ADMIN_PREFIX}/buckets/:bucket`, async (req) => {
    const bucket = bucketParam(req.params.bucket);
    const last = await store.detach(bucket, { by: by(req) });
    logger.info({ bucket, mode: last.mode, by: by(req) }, "bucket detached");
    const applied = await confirmed(`detach of ${bucket}`);
    return { bucket: publicState(last), ...applied };
  });

  return app;
}

/** Creates the admin API and listens on `config.admin.listen`. */
export async function startAdminApi(options: AdminApiOptions): Promise<AdminServer> {
  const app = await createAdminApi(options);
  const { host, port } = options.config.admin.listen;
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const scheme = options.config.admin.tls ? "https" : "http";
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return { url: `${scheme}://${hostPart}:${actualPort}`, close: () => app.close() };
}

// ---------------------------------------------------------------------------------------------
// request parsing

type Json = Record<string, unknown>;

function jsonBody(body: unknown): Json {
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new AdminError(400, "MalformedJSON", "the request body is not JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new AdminError(400, "MalformedJSON", "the request body must be a JSON object");
  }
  return parsed as Json;
}

function rejectUnknown(body: Json, known: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!known.includes(k)) throw new AdminError(400, "InvalidArgument", `unknown field ${k}`);
  }
}

function stringField(value: unknown, name: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new AdminError(400, "InvalidArgument", `${name} must be a non-empty string`);
  }
  return value;
}

function bucketParam(name: string): string {
  return bucketField(name, "bucket");
}

function bucketField(value: unknown, name: string): string {
  const s = stringField(value, name);
  if (!isBucketName(s))
    throw new AdminError(
      400,
      "InvalidBucketName",
      `${name} ${JSON.stringify(s)} is not a valid bucket name`,
    );
  return s;
}

function regionField(value: unknown): string {
  const s = stringField(value, "sourceRegion");
  if (!/^[a-z0-9-]{1,64}$/.test(s))
    throw new AdminError(400, "InvalidArgument", "sourceRegion must look like us-east-1");
  return s;
}

/** Normalises a source URL to its origin; refuses paths, queries and userinfo. */
export function sourceUrlField(value: unknown, name: string): string {
  const s = stringField(value, name);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new AdminError(400, "InvalidArgument", `${name} must be an http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new AdminError(400, "InvalidArgument", `${name} must be an http:// or https:// URL`);
  }
  if (url.username || url.password)
    throw new AdminError(400, "InvalidArgument", `${name} must not contain user:password@`);
  if (url.pathname !== "/" || url.search || url.hash) {
    throw new AdminError(
      400,
      "InvalidArgument",
      `${name} must be scheme://host[:port] with no path`,
    );
  }
  return url.origin;
}

/**
 * The CA to trust for a source: `system`, or PEM text with at least one certificate that
 * parses. For an http:// source it is not used; anything but a valid PEM is stored as `system`.
 */
function caField(value: unknown, sourceUrl: string): string {
  const s = value === undefined ? "system" : stringField(value, "sourceCa");
  if (s === "system") return s;
  try {
    new X509Certificate(s);
    return s;
  } catch {
    if (sourceUrl.startsWith("http://")) return "system";
    throw new AdminError(
      400,
      "InvalidCertificate",
      'sourceCa is neither "system" nor a PEM certificate',
    );
  }
}

function selectorOf(body: Json): BucketSelector {
  const given = [body.bucket !== undefined, body.url !== undefined, body.all !== undefined].filter(
    Boolean,
  ).length;
  if (given !== 1)
    throw new AdminError(400, "InvalidArgument", "give exactly one of bucket, url or all");
  if (body.bucket !== undefined) return { bucket: bucketField(body.bucket, "bucket") };
  if (body.url !== undefined) return { sourceUrl: sourceUrlField(body.url, "url") };
  if (body.all !== true) throw new AdminError(400, "InvalidArgument", "all must be true");
  return { all: true };
}

function changeOf(body: Json): StateChange {
  const change: { -readonly [K in keyof StateChange]: StateChange[K] } = {};
  if (body.mode !== undefined) {
    if (
      typeof body.mode !== "string" ||
      !(MIGRATION_MODES as readonly string[]).includes(body.mode)
    ) {
      throw new AdminError(
        400,
        "InvalidArgument",
        `mode must be one of ${MIGRATION_MODES.join(", ")}`,
      );
    }
    change.mode = body.mode as MigrationMode;
  }
  if (body.sourceUrl !== undefined) change.sourceUrl = sourceUrlField(body.sourceUrl, "sourceUrl");
  if (body.sourceBucket !== undefined)
    change.sourceBucket = bucketField(body.sourceBucket, "sourceBucket");
  if (body.sourceAccessKey !== undefined)
    change.sourceAccessKey = stringField(body.sourceAccessKey, "sourceAccessKey");
  if (body.sourceSecretKey !== undefined)
    change.sourceSecretKey = stringField(body.sourceSecretKey, "sourceSecretKey");
  if (body.sourceRegion !== undefined) change.sourceRegion = regionField(body.sourceRegion);
  if (body.sourceCa !== undefined) {
    change.sourceCa = caField(body.sourceCa, change.sourceUrl ?? "https://");
  }
  return { ...change, ...copyOnReadOf(body) };
}

/** The copy-on-read settings of attach and update. */
const COPY_ON_READ_FIELDS = ["copyOnRead", "copyOnReadMaxSize"] as const;

/** Validates the copy-on-read settings of a request body (absent fields stay absent). */
function copyOnReadOf(body: Json): { copyOnRead?: boolean; copyOnReadMaxSize?: number } {
  const out: { copyOnRead?: boolean; copyOnReadMaxSize?: number } = {};
  if (body.copyOnRead !== undefined) {
    if (typeof body.copyOnRead !== "boolean")
      throw new AdminError(400, "InvalidArgument", "copyOnRead must be true or false");
    out.copyOnRead = body.copyOnRead;
  }
  const max = body.copyOnReadMaxSize;
  if (max !== undefined) {
    if (
      typeof max !== "number" ||
      !Number.isInteger(max) ||
      max < 1 ||
      max > MAX_COPY_ON_READ_MAX_SIZE
    ) {
      throw new AdminError(
        400,
        "InvalidArgument",
        `copyOnReadMaxSize must be a whole number of bytes from 1 to ${MAX_COPY_ON_READ_MAX_SIZE} (5 GiB, the largest single PUT)`,
      );
    }
    out.copyOnReadMaxSize = max;
  }
  return out;
}

function selected(
  all: readonly BucketMigrationState[],
  selector: BucketSelector,
): BucketMigrationState[] {
  if ("bucket" in selector) return all.filter((s) => s.bucket === selector.bucket);
  if ("sourceUrl" in selector) return all.filter((s) => s.sourceUrl === selector.sourceUrl);
  return [...all];
}

const STATE_ERROR_STATUS: Readonly<Record<MigrationStateError["code"], number>> = {
  NotAttached: 404,
  AlreadyAttached: 409,
  TransitionRefused: 409,
  ConfirmationRequired: 409,
  NoBucketsMatched: 404,
  InvalidState: 400,
  CorruptStateFile: 500,
  StoreUnavailable: 503,
};

function toAdminError(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  if (err instanceof MigrationStateError) {
    return new AdminError(STATE_ERROR_STATUS[err.code], err.code, err.message, {
      ...(err.rule ? { rule: err.rule } : {}),
    });
  }
  const fastifyErr = err as { statusCode?: number; code?: string };
  if (fastifyErr.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return new AdminError(
      413,
      "RequestTooLarge",
      `the request body exceeds ${MAX_BODY_BYTES} bytes`,
    );
  }
  if (typeof fastifyErr.statusCode === "number" && fastifyErr.statusCode < 500) {
    return new AdminError(fastifyErr.statusCode, "BadRequest", "the request could not be read");
  }
  return new AdminError(500, "InternalError", "internal error; see the gateway log");
}
