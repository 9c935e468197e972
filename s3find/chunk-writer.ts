/**
 * Cuts the walk's ordered stream of keys into chunk files of `chunkSize` keys and writes each
 * one atomically (list-file.ts) while the walk goes on: the writes run on libuv's thread pool,
 * at most `maxWrites` at a time, which bounds memory to that many chunks' text.
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { chunkFileName, MAX_CHUNK_NUMBER, runLines, writeListText } from "./list-file.js";
import type { WalkRun } from "./walk.js";
import { join } from "node:path";

/** Options of ChunkWriter. */
export interface ChunkWriterOptions {
  /** Where chunk files go (must exist). */
  outputDir: string;
  /** Keys per chunk file. */
  chunkSize: number;
  /** Chunk writes in flight at once, at least 1. */
  maxWrites: number;
}

// How many keys may be appended between two turns of the event loop while writes are in
// flight: the walk is synchronous, and a write's open/write/fsync/rename steps only advance
// when the loop runs.
const KEYS_PER_TURN = 8192;

/** Accumulates list-file lines and writes a chunk file each time `chunkSize` keys are in. */
export class ChunkWriter {
  /** Chunk files fully written (renamed into place). */
  written = 0;
  // Text from this thread's runs, UTF-8 bytes from the walk workers (sent without a copy).
  private parts: Array<string | Buffer> = [];
  private count = 0;
  private chunkNo = 0;
  private sinceTurn = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;

  /** Prepares an empty writer. */
  constructor(private readonly options: ChunkWriterOptions) {
    if (!Number.isInteger(options.chunkSize) || options.chunkSize < 1) {
      throw new RangeError(`chunk size must be a positive integer: ${options.chunkSize}`);
    }
  }

  /**
   * Appends a run of keys; returns a promise only when the caller must wait (a chunk was
   * handed over with all write slots busy, or the event loop needs a turn).
   */
  appendRun(run: WalkRun): Promise<void> | undefined {
    // flush() hands the chunk over at once; what it returns is only back-pressure to await.
    let waits: Array<Promise<void> | undefined> | undefined;
    if (run.restart && this.count > 0) waits = [this.flush()];
    let start = run.start;
    while (start < run.end) {
      const take = Math.min(run.end - start, this.options.chunkSize - this.count);
      this.parts.push(runLines({ ...run, start, end: start + take }));
      this.count += take;
      this.sinceTurn += take;
      start += take;
      if (this.count === this.options.chunkSize) (waits ??= []).push(this.flush());
    }
    if (waits === undefined) return this.maybeTurn();
    return Promise.all(waits).then(() => undefined);
  }

  /**
   * Appends `count` lines of list-file text (each ended by "\n"); `restart` says its first key
   * may sort before the keys appended so far, so it starts a new chunk.
   */
  async appendText(text: string | Buffer, count: number, restart: boolean): Promise<void> {
    if (restart && this.count > 0) await this.flush();
    let from = 0;
    let left = count;
    while (left > 0) {
      const room = this.options.chunkSize - this.count;
      if (left <= room) {
        this.parts.push(from === 0 ? text : cut(text, from));
        this.count += left;
        left = 0;
      } else {
        // Escaped lines hold no raw "\n" (nor does UTF-8 inside a character), so the
        // room-th "\n" ends this chunk's share.
        let at = from;
        for (let k = 0; k < room; k++) at = text.indexOf("\n", at) + 1;
        this.parts.push(cut(text, from, at));
        this.count += room;
        left -= room;
        from = at;
      }
      if (this.count === this.options.chunkSize) await this.flush();
    }
  }

  /** Writes the last, partial chunk and waits for every write; throws the first failure. */
  async finish(): Promise<void> {
    if (this.count > 0) await this.flush();
    await this.settle();
    if (this.failure) throw this.failure;
  }

  /** Waits for the writes in flight without adding any (used on the way out of a failed run). */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private flush(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    this.chunkNo++;
    if (this.chunkNo > MAX_CHUNK_NUMBER) {
      return Promise.reject(
        new Error(`more than ${MAX_CHUNK_NUMBER} chunks: use a larger --chunk-size`),
      );
    }
    const text = toBytes(this.parts);
    this.parts = [];
    this.count = 0;
    const path = join(this.options.outputDir, chunkFileName(this.chunkNo));
    const writing: Promise<void> = writeListText(path, text).then(
      () => {
        this.written++;
        this.inFlight.delete(writing);
      },
      (err: unknown) => {
        this.failure ??= new Error(`writing ${path}: ${(err as Error).message ?? String(err)}`);
        this.inFlight.delete(writing);
      },
    );
    this.inFlight.add(writing);
    if (this.inFlight.size >= this.options.maxWrites) {
      return Promise.race(this.inFlight).then(() => {
        if (this.failure) throw this.failure;
      });
    }
    return undefined;
  }

  private maybeTurn(): Promise<void> | undefined {
    if (this.sinceTurn < KEYS_PER_TURN || this.inFlight.size === 0) return undefined;
    this.sinceTurn = 0;
    return yieldToLoop();
  }
}

function cut(text: string | Buffer, from: number, to?: number): string | Buffer {
  return typeof text === "string" ? text.slice(from, to) : text.subarray(from, to);
}

/** One buffer for a chunk: consecutive strings joined and encoded once, buffers as they are. */
function toBytes(parts: Array<string | Buffer>): Buffer {
  const buffers: Buffer[] = [];
  let strings: string[] = [];
  for (const part of parts) {
    if (typeof part === "string") {
      strings.push(part);
      continue;
    }
    if (strings.length > 0) buffers.push(Buffer.from(strings.join(""), "utf8"));
    strings = [];
    buffers.push(part);
  }
  if (strings.length > 0) buffers.push(Buffer.from(strings.join(""), "utf8"));
  return buffers.length === 1 ? (buffers[0] as Buffer) : Buffer.concat(buffers);
}
