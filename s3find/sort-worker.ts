/**
 * Worker thread body: sorts one chunk of keys in UTF-8 byte order and writes it as a list file.
 * Runs off the main thread so the walk never waits for a sort or an fsync.
 */
import { parentPort } from "node:worker_threads";
import { sortKeysUtf8 } from "./key-sort.js";
import { writeListFile } from "./list-file.js";

/** A chunk to sort and write: keys joined by NUL (never part of a POSIX file name). */
export interface SortJob {
  /** Destination list file. */
  path: string;
  /** The keys joined by "\0": one string crosses the thread boundary far faster than an array. */
  joined: string;
}

/** The worker's answer: done, or the error message. */
export type SortResult = { ok: true } | { ok: false; error: string };

const port = parentPort;
if (port !== null) {
  port.on("message", (job: SortJob) => {
    const keys = sortKeysUtf8(job.joined.split("\0"));
    writeListFile(job.path, keys).then(
      () => port.postMessage({ ok: true } satisfies SortResult),
      (err: unknown) =>
        port.postMessage({
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        } satisfies SortResult),
    );
  });
}
