/**
 * What every plan executor gets: the request as the front end understood it (operation,
 * addresses, the headers and query to send upstream), the client's body behind a guard that
 * hands it out once, the backends, and hooks to record what the request touched.
 */
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { CopySource, S3Principal } from "../front/auth.js";
import type { OperationTraits, S3Operation } from "../front/operation-traits.js";
import type { ListingPageCache } from "../listing/page-cache.js";
import type { KeyRecordStore, MigrationStateSnapshot } from "../state/store.js";
import type { BackendRegistry } from "../upstream/backends.js";
import type { MigrateMetrics } from "./metrics.js";

/** The client's body as it goes upstream: verified, aws-chunked decoded, with its exact length. */
export interface PreparedBody {
  /** The plain body (a stream, or a buffer when read whole), or undefined for none. */
  readonly body: Readable | Buffer | undefined;
  /** The length to send upstream (the re-framed length when a trailer is carried on). */
  readonly contentLength: number | undefined;
  /** The decoded length the client sent (for logs), 0 without a body. */
  readonly decodedLength: number;
  /** `x-amz-content-sha256` to send. */
  readonly payloadHash: string;
  /** Headers the body adds upstream (a trailing checksum's framing). */
  readonly headers: Readonly<Record<string, string>>;
  /** Whether the request carried a body at all. */
  readonly present: boolean;
  /** Destroys whatever is still unread (an early error answer). */
  discard(): void;
}

/** Hands out the client's body once: streamed, or read whole where a plan must replay it. */
export interface ClientBody {
  /** Whether the client sent (or announced) a body. */
  readonly present: boolean;
  /** The body for one upstream request (answers `100 Continue` first). */
  stream(): Promise<PreparedBody>;
  /**
   * The body read whole, at most `maxBytes` (MaxMessageLengthExceeded above), every check
   * passed: for plans that send it to two backends.
   */
  buffered(maxBytes: number): Promise<PreparedBody>;
}

/** Everything an executor needs about one request. */
export interface ExecContext {
  readonly requestId: string;
  readonly method: string;
  readonly operation: S3Operation;
  readonly traits: OperationTraits;
  /** The client-facing bucket, undefined for service-level requests. */
  readonly bucket: string | undefined;
  /** The object key, undefined for bucket- and service-level requests. */
  readonly key: string | undefined;
  /** The query string as the client sent it (without `?`), for parsers that need it raw. */
  readonly rawQuery: string;
  /** The object's URL as the client addressed it (for `<Location>` in answers), if any. */
  readonly objectUrl: string | undefined;
  /** The HMAC key of merged-listing continuation tokens (shared by a fleet of gateways). */
  readonly listingTokenKey: Buffer;
  /** The backend pages merged listings share between a listing's pages (listing/page-cache). */
  readonly listingPages: ListingPageCache;
  /** Decoded query pairs to send upstream (presigned authentication removed). */
  readonly query: readonly (readonly [string, string])[];
  /** Request headers to send upstream (hop-by-hop, authentication and framing removed). */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed `x-amz-copy-source`, with the header as the client sent it. */
  readonly copySource: (CopySource & { readonly header: string }) | undefined;
  readonly principal: S3Principal;
  /** The migration state the request was routed with. */
  readonly snapshot: MigrationStateSnapshot;
  readonly backends: BackendRegistry;
  readonly body: ClientBody;
  /** Aborted when the client goes away or its body fails a check. */
  readonly signal: AbortSignal;
  /** Aborts the request's upstream work with `reason` (an S3Error is answered as is). */
  abort(reason: unknown): void;
  /** The per-key records of migrate mode (tombstones, migration-write claims). */
  readonly keys: KeyRecordStore;
  readonly metrics: MigrateMetrics;
  readonly logger: Logger;
  /** Records that a backend was contacted (the access log names every one). */
  touch(backend: "target" | "source"): void;
  /** Records the client body bytes that went upstream. */
  addBytesIn(bytes: number): void;
}
