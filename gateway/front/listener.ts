/**
 * The S3 endpoint (DESIGN 3.1, 3.2, 3.6): a plain `node:https` (or `node:http`) server, since a
 * generic proxy wants the raw request line, raw headers and an untouched body stream, which a
 * framework's parsing would get in the way of.
 *
 * A request goes through one concern per file: addressing (front/addressing), authentication and
 * authorization (front/auth), classification (front/operations), the facts routing needs
 * (execute/facts), routing to a plan (routing/route, a pure function), the plan's executor
 * (execute/), and the one responder (front/respond). Nothing is read from the body and nothing
 * reaches a backend with it before the request is authenticated, authorized and routed;
 * `Expect: 100-continue` is answered only when an executor takes the body.
 *
 * Limits: bounded header size and header time; no whole-request time cap (it would kill a
 * 5 GiB upload) but a socket idle timeout and a minimum upload rate; keep-alive.
 */
import { readFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import { hkdfSync, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { S3ConnectionError } from "../../s3/client-errors.js";
import { DEFAULT_COMPLETE_XML_LIMIT } from "../../s3/xml-core.js";
import { renderErrorXml, S3Error, toS3Error } from "../../s3/errors.js";
import { parseRawQuery } from "../../s3/sigv4-canonical.js";
import { uriEncode } from "../../s3/uri-encode.js";
import type { ExecContext } from "../execute/context.js";
import { execute } from "../execute/execute.js";
import { gatherFacts, UploadHomes } from "../execute/facts.js";
import type { WriteConditions } from "../routing/facts.js";
import { MigrationStateError } from "../state/store.js";
import { route } from "../routing/route.js";
import {
  BackendRegistry,
  DEFAULT_BACKEND_TIMEOUTS,
  type BackendTimeouts,
} from "../upstream/backends.js";
import { upstreamQuery, upstreamRequestHeaders } from "../upstream/headers.js";
import { addressingRules, resolveAddress, type AddressingRules } from "./addressing.js";
import {
  authenticate,
  authorize,
  credentialIndex,
  parseCopySource,
  type CredentialIndex,
} from "./auth.js";
import { clientBody, hasRequestBody } from "./client-body.js";
import { traitsOf } from "./operation-traits.js";
import { classifyOperation } from "./operations.js";
import { createS3Metrics, OTHER_BUCKET_LABEL, type S3Metrics } from "./request-metrics.js";
import { respond, sendError } from "./respond.js";
import type { RunningListener, S3ListenerContext, S3ListenerFactory } from "../server.js";
import { watchCertificates, type TlsReloader } from "./tls-reload.js";
import { isPostObjectRequest, postObject } from "./post-object.js";
import { ListingPageCache } from "../listing/page-cache.js";

/** Tunables of the S3 listener; every field has a default. */
export interface S3ListenerOptions {
  /** Upstream connect / headers / body-idle timeouts. */
  readonly backendTimeouts?: BackendTimeouts;
  /** Largest request header section in bytes (default 32 KiB; S3's own limit is 8 KiB of metadata). */
  readonly maxHeaderBytes?: number;
  /** Time a client has to send its whole header section (default 30 s). */
  readonly headersTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open (default 5 s). */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Minimum upload rate: a request body that brings fewer than `bytesPerSecond` on average over
   * one window is cut with RequestTimeout (default 1 KiB/s over 60 s).
   */
  readonly minUploadRate?: { readonly bytesPerSecond: number; readonly windowMs: number };
  /** Longest wait for in-flight requests on close before connections are cut (default 30 s). */
  readonly drainTimeoutMs?: number;
  /**
   * Largest XML body of DeleteObjects and CompleteMultipartUpload (defaults 6 MiB and 4 MiB):
   * the gateway reads these whole, validates them and refuses what S3 would refuse.
   */
  readonly maxXmlBodyBytes?: { readonly deleteObjects: number; readonly completeMultipart: number };
  /**
   * How often the TLS certificate and key files are checked for a change (default 5 s; 0: only
   * on SIGHUP). A changed pair is taken for new connections (front/tls-reload).
   */
  readonly tlsPollIntervalMs?: number;
  /** Reload the TLS pair on SIGHUP (default true; tests running several gateways turn it off). */
  readonly tlsReloadOnSignal?: boolean;
}

/** The defaults of {@link S3ListenerOptions}. */
export const DEFAULT_S3_LISTENER_OPTIONS = {
  maxHeaderBytes: 32 * 1024,
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  minUploadRate: { bytesPerSecond: 1024, windowMs: 60_000 },
  drainTimeoutMs: 30_000,
  // 1,000 keys of 1,024 bytes each, even with XML escaping of most characters, fit in 6 MiB;
  // 10,000 parts with a SHA-256 checksum each take about 1.9 MB (s3/xml-core.ts).
  maxXmlBodyBytes: {
    deleteObjects: 6 * 1024 * 1024,
    completeMultipart: DEFAULT_COMPLETE_XML_LIMIT,
  },
} as const;

/** Returns the {@link S3ListenerFactory} that `startGateway` plugs in. */
export function s3ListenerFactory(options: S3ListenerOptions = {}): S3ListenerFactory {
  return (context) => startS3Listener(context, options);
}

/** The most bytes of an unread request body discarded after an early answer, before closing. */
const MAX_DISCARD_BYTES = 1024 * 1024;

/** Everything a request handler shares, built once at start-up. */
interface ListenerState {
  readonly context: S3ListenerContext;
  readonly rules: AddressingRules;
  readonly credentials: CredentialIndex;
  readonly backends: BackendRegistry;
  readonly metrics: S3Metrics;
  readonly logger: Logger;
  /** Where multipart uploads of migrate-mode buckets live (execute/facts). */
  readonly uploadHomes: UploadHomes;
  /** The HMAC key of merged-listing continuation tokens. */
  readonly listingTokenKey: Buffer;
  /** Backend pages shared by the pages of one merged listing. */
  readonly listingPages: ListingPageCache;
  readonly minUploadRate: { readonly bytesPerSecond: number; readonly windowMs: number };
  readonly maxHeaderBytes: number;
  readonly maxXmlBodyBytes: { readonly deleteObjects: number; readonly completeMultipart: number };
  inFlight: number;
  closing: boolean;
  onIdle: (() => void) | undefined;
}

/** Starts the S3 endpoint on `config.listen` (TLS when `config.tls` is set). */
export async function startS3Listener(
  context: S3ListenerContext,
  options: S3ListenerOptions = {},
): Promise<RunningListener> {
  const { config } = context;
  const o = { ...DEFAULT_S3_LISTENER_OPTIONS, ...options };
  const targetCa =
    config.target.ca === undefined ? undefined : await readFile(config.target.ca, "utf8");
  const backends = new BackendRegistry({
    target: config.target,
    targetCa,
    timeouts: options.backendTimeouts ?? DEFAULT_BACKEND_TIMEOUTS,
  });
  // A source whose CA (or URL) changed gets a new pool on its next request; the old pool is
  // closed once its requests finish (upstream/backends).
  const unsubscribe = context.store.subscribe((snapshot) => {
    backends.retireUnused(snapshot.buckets.values());
  });
  const state: ListenerState = {
    context,
    rules: addressingRules(config.domains),
    credentials: credentialIndex(config),
    backends,
    metrics: createS3Metrics(context.registry),
    logger: context.logger.child({ component: "s3" }),
    uploadHomes: new UploadHomes(),
    listingTokenKey: listingTokenKey(config.target.secretKey),
    listingPages: new ListingPageCache({
      maxEntries: config.listing.cacheEntries,
      ttlMs: config.listing.cacheMs,
    }),
    minUploadRate: o.minUploadRate,
    maxHeaderBytes: o.maxHeaderBytes,
    maxXmlBodyBytes: o.maxXmlBodyBytes,
    inFlight: 0,
    closing: false,
    onIdle: undefined,
  };

  const serverOptions = {
    maxHeaderSize: o.maxHeaderBytes,
    // Node checks header and request timeouts on a timer (30 s by default), so a slow client
    // could hold its socket up to twice the header timeout; check often enough to be exact.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(o.headersTimeoutMs / 4))),
    // A missing Host would get Node's bare 400 with no body; the gateway answers it as S3 does.
    requireHostHeader: false,
    // No cap on a whole request: a large upload may take hours. Headers are bounded in time,
    // and the idle timeout and minimum rate bound a stalled or trickling body.
    requestTimeout: 0,
    headersTimeout: o.headersTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    insecureHTTPParser: false,
  };
  const server = config.tls
    ? createHttpsServer({
        ...serverOptions,
        cert: await readFile(config.tls.cert),
        key: await readFile(config.tls.key),
      })
    : createHttpServer(serverOptions);
  server.timeout = o.idleTimeoutMs;
  // Node would answer 431 with no body past 2,000 headers; the parser's byte cap (maxHeaderSize)
  // bounds them, and every request gets an S3 answer.
  server.maxHeadersCount = 0;
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (refuseMalformed(state, req, res)) return;
    void handle(state, req, res, { expectContinue: false });
  });
  // S3 ignores an Expect header it does not know (or an empty one); Node would answer 417.
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    if (refuseMalformed(state, req, res)) return;
    void handle(state, req, res, { expectContinue: false });
  });
  // Expect: 100-continue is answered only once the request is authenticated, authorized and
  // routed (RFC 9110 §10.1.1); a refused request gets its error without the body being sent.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (refuseMalformed(state, req, res)) return;
    void handle(state, req, res, { expectContinue: true });
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    clientError(state, err, socket);
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.removeListener("error", reject);
      resolveListen();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
  const url = `${config.tls ? "https" : "http"}://${host}:${port}`;
  let reloader: TlsReloader | undefined;
  if (config.tls) {
    reloader = watchCertificates({
      server: server as HttpsServer,
      certPath: config.tls.cert,
      keyPath: config.tls.key,
      logger: state.logger,
      ...(o.tlsPollIntervalMs === undefined ? {} : { pollIntervalMs: o.tlsPollIntervalMs }),
      onSignal: o.tlsReloadOnSignal ?? true,
    });
  }

  return {
    url,
    close: async () => {
      reloader?.stop();
      unsubscribe();
      state.closing = true;
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      if (state.inFlight > 0) {
        await new Promise<void>((drained) => {
          const timer = setTimeout(drained, o.drainTimeoutMs);
          timer.unref();
          state.onIdle = () => {
            clearTimeout(timer);
            drained();
          };
        });
      }
      server.closeAllConnections();
      await closed;
      await backends.close();
    },
  };
}

/**
 * The key of merged-listing continuation tokens, derived (HKDF-SHA256) from the target's service
 * secret: every gateway in front of one target holds it, so each accepts the others' tokens,
 * and no new secret has to be distributed. It never leaves the gateway. Rotating the target's
 * secret voids the tokens of listings in progress (their clients get InvalidArgument and
 * restart the listing); docs/listing.md.
 */
function listingTokenKey(targetSecret: string): Buffer {
  return Buffer.from(hkdfSync("sha256", targetSecret, "s3gw", "s3gw listing token", 32));
}

/** A process-unique request id: a random prefix and a counter, 16 upper-case hex digits as S3's. */
const ID_PREFIX = randomBytes(4).toString("hex").toUpperCase();
let idCounter = 0;
function nextRequestId(): string {
  idCounter = (idCounter + 1) >>> 0;
  return ID_PREFIX + idCounter.toString(16).toUpperCase().padStart(8, "0");
}

/** What the access log line and the metrics record about one request. */
interface RequestRecord {
  accessKeyId: string | undefined;
  bucket: string | undefined;
  bucketLabel: string;
  mode: string;
  operation: string;
  /** The plan's kind (`single`, `fallback`…), once routed. */
  plan: string;
  /** Every backend the request touched, in order. */
  backends: ("target" | "source")[];
  bytesIn: number;
  bytesOut: number;
  /** Request body bytes received on the wire so far (what an aborted upload logs as bytesIn). */
  bodyBytesSeen: number;
}

/** Handles one S3 request from arrival to answer; never throws. */
async function handle(
  state: ListenerState,
  req: IncomingMessage,
  res: ServerResponse,
  options: { readonly expectContinue: boolean },
): Promise<void> {
  const started = process.hrtime.bigint();
  const requestId = nextRequestId();
  const method = (req.method ?? "GET").toUpperCase();
  const ctx: { requestId: string; method: string; resource: string | undefined } = {
    requestId,
    method,
    resource: undefined,
  };
  const record: RequestRecord = {
    accessKeyId: undefined,
    bucket: undefined,
    bucketLabel: OTHER_BUCKET_LABEL,
    mode: "none",
    operation: "Unknown",
    plan: "none",
    backends: [],
    bytesIn: 0,
    bytesOut: 0,
    bodyBytesSeen: 0,
  };
  state.inFlight++;
  if (state.closing) res.setHeader("connection", "close");
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort(new ClientGoneError());
    finish(state, record, ctx, res, started);
  });

  let bodyStarted = false;
  try {
    const rawUrl = req.url ?? "/";
    const address = resolveAddress({ rawUrl, host: req.headers.host }, state.rules);
    record.bucket = address.bucket;
    ctx.resource =
      address.bucket === undefined
        ? "/"
        : `/${address.bucket}${address.key === undefined ? "" : `/${address.key}`}`;

    if (
      isPostObjectRequest(method, address, req.headers["content-type"]) &&
      address.bucket !== undefined
    ) {
      // A browser form: authenticated by its policy signature, not by the request's
      // (front/post-object); the body is read from here on.
      record.operation = "PostObject";
      bodyStarted = true;
      if (options.expectContinue) res.writeContinue();
      try {
        // `record` receives the facts as they are learnt: the access log is written when the
        // answer ends, which can be before this await returns.
        await postObject(
          {
            credentials: state.credentials,
            backends: state.backends,
            snapshot: state.context.store.snapshot(),
            isFresh: () => state.context.store.isFresh(),
            origin: `${state.context.config.tls ? "https" : "http"}://${req.headers.host ?? "localhost"}`,
            signal: abort.signal,
          },
          req,
          res,
          { bucket: address.bucket, ctx, facts: record },
        );
      } catch (err) {
        const code = toS3Error(err).code;
        if (record.accessKeyId === undefined || code === "AccessDenied") {
          state.metrics.authFailure(code);
        }
        throw err;
      } finally {
        // A form upload is a write: continued listings must not use pages fetched before it.
        state.listingPages.invalidate(address.bucket);
      }
      return;
    }

    let auth;
    try {
      auth = authenticate({ method, rawUrl, rawHeaders: req.rawHeaders }, state.credentials, {
        virtualHostBucket: address.virtualHost ? address.bucket : undefined,
      });
    } catch (err) {
      state.metrics.authFailure(toS3Error(err).code);
      throw err;
    }
    const { principal, verified } = auth;
    record.accessKeyId = verified.accessKeyId;

    const copyHeader = req.headers["x-amz-copy-source"];
    const copySource =
      typeof copyHeader === "string" && copyHeader !== "" ? parseCopySource(copyHeader) : undefined;
    const operation = classifyOperation({
      method,
      bucket: address.bucket,
      key: address.key,
      rawQuery: address.rawQuery,
      hasCopySource: copySource !== undefined,
    });
    record.operation = operation;
    try {
      authorize({ principal, method, operation, bucket: address.bucket, copySource });
    } catch (err) {
      state.metrics.authFailure(toS3Error(err).code);
      throw err;
    }

    const snapshot = state.context.store.snapshot();
    const bucketState =
      address.bucket === undefined ? undefined : snapshot.buckets.get(address.bucket);
    if (bucketState !== undefined) record.bucketLabel = bucketState.bucket;
    // State store freshness (issue 12): a gateway that could not confirm its state within its
    // lease may hold a stale mode; other gateways no longer wait for it, so it must not act on
    // an attached bucket. Detached buckets do not depend on the state and keep working.
    if (bucketState !== undefined && !state.context.store.isFresh()) {
      throw new S3Error("ServiceUnavailable", {
        message: "The gateway cannot confirm this bucket's migration state; retry shortly.",
      });
    }

    let query: [string, string][];
    try {
      query = upstreamQuery(parseRawQuery(address.rawQuery));
    } catch {
      throw new S3Error("InvalidURI");
    }
    const exec: ExecContext = {
      requestId,
      method,
      operation,
      traits: traitsOf(operation),
      bucket: address.bucket,
      key: address.key,
      query,
      rawQuery: address.rawQuery,
      objectUrl:
        address.bucket === undefined || address.key === undefined
          ? undefined
          : `${state.context.config.tls ? "https" : "http"}://${req.headers.host ?? "localhost"}` +
            (address.virtualHost ? "" : `/${address.bucket}`) +
            `/${uriEncode(address.key, { keepSlash: true })}`,
      listingTokenKey: state.listingTokenKey,
      listingPages: state.listingPages,
      headers: upstreamRequestHeaders(req.rawHeaders),
      copySource:
        copySource === undefined ? undefined : { ...copySource, header: copyHeader as string },
      principal,
      snapshot,
      backends: state.backends,
      body: clientBody({
        req,
        res,
        verified,
        operation,
        expectContinue: options.expectContinue,
        maxXmlBodyBytes: state.maxXmlBodyBytes,
        abort,
        onStart: () => {
          bodyStarted = true;
          // verifiedBody has piped `req` already, so this listener takes nothing from it.
          req.on("data", (chunk: Buffer) => {
            record.bodyBytesSeen += chunk.length;
          });
          watchUploadRate(state, req, abort);
        },
      }),
      signal: abort.signal,
      abort: (reason) => abort.abort(reason),
      keys: state.context.store,
      metrics: state.metrics.migrate,
      logger: state.logger,
      touch: (backend) => {
        if (!record.backends.includes(backend)) record.backends.push(backend);
      },
      addBytesIn: (bytes) => {
        record.bytesIn += bytes;
      },
    };

    // Facts first (where an upload lives, where a conditionally written key is), without
    // reading the body; then the pure routing decision; then its one executor.
    const facts =
      bucketState === undefined
        ? {}
        : await gatherFacts(exec, bucketState, principal, state.uploadHomes);
    const plan = route({
      state: bucketState,
      bucket: address.bucket,
      ...(address.key === undefined ? {} : { key: address.key }),
      operation,
      role: principal.credential.role,
      method,
      facts,
      conditions: writeConditions(req),
    });
    record.mode = plan.mode;
    record.plan = plan.kind;
    const result = await execute(exec, plan);
    respond(res, result, ctx, {
      secrets: result.kind === "upstream" ? result.backend.secrets : [],
      hasKey: address.key !== undefined,
      closeConnection: exec.body.present && !req.complete,
      onDone: (bytesOut) => {
        record.bytesOut = bytesOut;
      },
    });
  } catch (err) {
    if (clientGone(err, abort.signal, res)) {
      // The client went away (closed or reset mid-request): nothing to answer and nothing
      // wrong with the gateway, so one info line without a stack; the access log says 499.
      state.logger.info({ requestId, operation: record.operation }, "client disconnected");
      return;
    }
    const error = answerableError(err, abort.signal);
    if (error.code === "InternalError") {
      state.logger.error({ err, requestId }, "internal error");
    }
    if (res.destroyed) return;
    // A body not (fully) read: answer, close the connection, and drop what still arrives.
    const unread = !req.complete && (bodyStarted || hasRequestBody(req));
    sendError(res, error, ctx, { closeConnection: unread });
    if (unread) discardBody(req);
  }
}

/** The client's write conditions, for conditional writes in migrate mode. */
function writeConditions(req: IncomingMessage): WriteConditions {
  const ifMatch = req.headers["if-match"];
  const ifNoneMatch = req.headers["if-none-match"];
  return {
    ...(typeof ifMatch === "string" ? { ifMatch } : {}),
    ...(typeof ifNoneMatch === "string" ? { ifNoneMatch } : {}),
  };
}

/** The reason a request is aborted with when its client's connection closed first. */
class ClientGoneError extends Error {
  constructor() {
    super("client connection closed");
    this.name = "ClientGoneError";
  }
}

/** Whether a failure is the client going away (closed, reset, aborted body), not a fault. */
function clientGone(err: unknown, signal: AbortSignal, res: ServerResponse): boolean {
  if (signal.aborted && signal.reason instanceof ClientGoneError) return true;
  if (err instanceof ClientGoneError) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (
    res.destroyed &&
    (code === "ECONNRESET" ||
      code === "ECONNABORTED" ||
      code === "EPIPE" ||
      code === "ERR_STREAM_PREMATURE_CLOSE")
  );
}

/**
 * Refuses, before the S3 pipeline, a request S3 would not parse: HTTP/1.1 without Host
 * (RFC 9112 §3.2). Node would answer it with a bare 400; this one is an S3 XML error.
 */
function refuseMalformed(state: ListenerState, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers.host !== undefined || req.httpVersion === "1.0") return false;
  const requestId = nextRequestId();
  state.logger.info({ requestId, method: req.method }, "request without Host refused");
  sendError(
    res,
    new S3Error("InvalidRequest", { message: "Your request is missing the Host header." }),
    { requestId, method: (req.method ?? "GET").toUpperCase(), resource: undefined },
    { closeConnection: true },
  );
  if (!req.complete) discardBody(req);
  return true;
}

/** The S3 error to answer for something that went wrong while handling a request. */
function answerableError(err: unknown, signal: AbortSignal): S3Error {
  // A body check that failed aborted the upstream request with its own S3 error.
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (reason instanceof S3Error) return reason;
  if (err instanceof S3ConnectionError) {
    return new S3Error("ServiceUnavailable", {
      message: "The backend S3 service is unavailable. Please retry.",
      cause: err,
    });
  }
  // The state store (tombstones, claims) out of reach is the service's trouble, not a bug.
  if (err instanceof MigrationStateError && err.code === "StoreUnavailable") {
    return new S3Error("ServiceUnavailable", {
      message: "The gateway's state store is unavailable. Please retry.",
      cause: err,
    });
  }
  return toS3Error(err);
}

/**
 * Cuts a request body that arrives slower than the minimum rate: the socket idle timeout
 * catches a body that stops, this catches one that trickles (slowloris).
 */
function watchUploadRate(state: ListenerState, req: IncomingMessage, abort: AbortController): void {
  const { bytesPerSecond, windowMs } = state.minUploadRate;
  if (bytesPerSecond <= 0) return;
  const socket = req.socket;
  let last = socket.bytesRead;
  const timer = setInterval(() => {
    if (req.complete) {
      clearInterval(timer);
      return;
    }
    const now = socket.bytesRead;
    if (now - last < (bytesPerSecond * windowMs) / 1000) {
      clearInterval(timer);
      abort.abort(new S3Error("RequestTimeout"));
      return;
    }
    last = now;
  }, windowMs);
  timer.unref();
  req.once("close", () => clearInterval(timer));
}

/** Reads and drops what is left of a body after an early answer, then closes; bounded. */
function discardBody(req: IncomingMessage): void {
  let discarded = 0;
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.resume();
}

/** Writes the access log line and the metrics of a finished request (once). */
function finish(
  state: ListenerState,
  record: RequestRecord,
  ctx: { requestId: string; method: string },
  res: ServerResponse,
  started: bigint,
): void {
  state.inFlight--;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const backend = record.backends.length === 0 ? "none" : record.backends.join("+");
  const status = res.writableFinished ? res.statusCode : res.headersSent ? res.statusCode : 499;
  state.metrics.observe(
    {
      bucket: record.bucketLabel,
      mode: record.mode,
      operation: record.operation,
      backend,
      status,
    },
    seconds,
    record.bytesIn > 0 ? record.bytesIn : record.bodyBytesSeen,
    record.bytesOut,
  );
  // Never the URL (a presigned query carries a signature), headers or key material.
  state.logger.info(
    {
      requestId: ctx.requestId,
      method: ctx.method,
      accessKeyId: record.accessKeyId,
      bucket: record.bucket,
      mode: record.mode,
      operation: record.operation,
      plan: record.plan,
      backend,
      backends: record.backends,
      status,
      aborted: !res.writableFinished,
      bytesIn: record.bytesIn > 0 ? record.bytesIn : record.bodyBytesSeen,
      bytesOut: record.bytesOut,
      latencyMs: Math.round(seconds * 1000),
    },
    "s3 request",
  );
  if (state.inFlight === 0 && state.onIdle !== undefined) {
    const idle = state.onIdle;
    state.onIdle = undefined;
    idle();
  }
}

/**
 * Errors Node's HTTP parser raises before a request exists: oversized headers get S3's
 * RequestHeaderSectionTooLarge, anything else a 400; the connection is then closed.
 */
function clientError(state: ListenerState, err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (err.code === "ECONNRESET" && socket.bytesWritten === 0)) {
    socket.destroy();
    return;
  }
  const code =
    err.code === "HPE_HEADER_OVERFLOW" ? "RequestHeaderSectionTooLarge" : "InvalidRequest";
  const error =
    code === "RequestHeaderSectionTooLarge"
      ? new S3Error("RequestHeaderSectionTooLarge", {
          extra: { MaxSizeAllowed: String(state.maxHeaderBytes) },
        })
      : err.code === "HPE_HEADER_TIMEOUT" || err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new S3Error("RequestTimeout")
        : new S3Error("InvalidRequest", { message: "The request could not be parsed." });
  state.metrics.authFailure(error.code);
  const requestId = nextRequestId();
  const body = renderErrorXml(error, { requestId });
  // end() alone only half-closes: a slow client that keeps sending would hold the socket (and
  // Node would keep reading it) for as long as it likes. Destroy it once the answer is flushed,
  // and at the latest after a short grace period if the client does not read it.
  const grace = setTimeout(() => socket.destroy(), CLIENT_ERROR_GRACE_MS);
  grace.unref();
  socket.once("close", () => clearTimeout(grace));
  socket.end(
    `HTTP/1.1 ${error.status} ${error.status === 400 ? "Bad Request" : "Error"}\r\n` +
      `content-type: application/xml\r\nx-amz-request-id: ${requestId}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** How long an error answered from clientError may take to flush before the socket is cut. */
const CLIENT_ERROR_GRACE_MS = 5_000;
