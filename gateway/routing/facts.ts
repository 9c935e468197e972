/**
 * Facts: what routing needs to know that is not in the request or the bucket's state, gathered
 * asynchronously before {@link route} runs (gateway/execute/facts.ts), so that routing stays a
 * pure, table-tested function. Every fact is gathered without reading the request body: a body
 * cannot be replayed, so where it goes must be known before its first byte is read.
 */

/** Where an object is, as far as a conditional write needs to know. */
export interface ObjectWhereabouts {
  /** The target holds the key (it then evaluates the client's conditions itself). */
  readonly onTarget: boolean;
  /** The source object's ETag when only the source holds the key; undefined when it does not. */
  readonly sourceEtag: string | undefined;
}

/** The facts of one request; each is present only when routing needs it. */
export interface RouteFacts {
  /** Where the multipart upload named by `uploadId` lives. */
  readonly uploadHome?: "target" | "source";
  /** For a conditional write in migrate mode: where the key is. */
  readonly object?: ObjectWhereabouts;
}

/** The client's write conditions (`If-Match`, `If-None-Match`), as sent. */
export interface WriteConditions {
  readonly ifMatch?: string;
  readonly ifNoneMatch?: string;
}
