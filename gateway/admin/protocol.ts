/**
 * The admin API's wire contract, shared by the server (admin/api.ts) and its client
 * (admin/client.ts) without pulling the server's framework into the CLI.
 */
import type { GatewayStatus, HistoryEntry } from "../state/store.js";
import type { MigrationMode } from "../state/transitions.js";

/** The path prefix of every admin endpoint; versioned so the CLI and gateway can evolve. */
export const ADMIN_PREFIX = "/admin/v1";

/** How a bucket's state is shown: every field but the secret, and the CA summarised. */
export interface PublicBucketState {
  readonly bucket: string;
  readonly mode: MigrationMode;
  readonly sourceUrl: string;
  readonly sourceBucket: string;
  readonly sourceAccessKey: string;
  readonly sourceRegion: string;
  /** `system`, or a summary of the PEM certificate (subject and SHA-256 fingerprint). */
  readonly sourceCa: string;
  /** Whether fallback GETs of whole objects also write them to the target (off when never set). */
  readonly copyOnRead: boolean;
  /** The largest object copy-on-read writes back, in bytes. */
  readonly copyOnReadMaxSize: number;
  /** Tombstones of client deletes the bucket holds (`show` only: counting is not free). */
  readonly tombstones?: number;
  readonly history: readonly HistoryEntry[];
}

/** An error answer: a stable code, a one-line message, and the refusing rule if any. */
export interface AdminErrorBody {
  readonly code: string;
  readonly message: string;
  readonly rule?: string;
}

/** A gateway sharing the state store, as `show`, `list` and changes report it. */
export type PublicGatewayStatus = GatewayStatus;

/** What `list` (and `show`, with `bucket` instead of `buckets`) answers besides the buckets. */
export interface StateStatus {
  /** The state version the answering gateway has applied. */
  readonly version: number;
  /** The live gateways and the version each has applied. */
  readonly gateways: readonly PublicGatewayStatus[];
}

/** The error code of a change that is durable but not yet applied by every live gateway. */
export const NOT_CONFIRMED = "GatewaysNotConfirmed";
