/**
 * Worker thread body: walks whole subtrees (walk.ts, in byte order) and sends their keys back
 * as list-file text in blocks, so the directory reads — the cost of s3find — run on several
 * cores. The main thread puts the blocks in order and cuts chunks (walk-pool.ts).
 *
 * Back-pressure: at most `maxBlocksAhead` blocks may wait unread in the main thread; then the
 * worker waits for credit, which bounds memory when a later subtree finishes before an
 * earlier one.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runLines } from "./list-file.js";
import { newWalkStats, walkRuns, type WalkIssue, type WalkStats } from "./walk.js";

/** Settings fixed for the worker's life. */
export interface WalkWorkerData {
  /** The walked root. */
  root: string;
  /** Same meaning as WalkOptions. */
  modifiedSinceMs: number | undefined;
  /** Same meaning as WalkOptions. */
  excludeDirs: readonly string[] | undefined;
  /** Same meaning as WalkOptions. */
  batchEntries: number;
  /** Text size at which a block is sent. */
  blockBytes: number;
  /** Blocks sent and not yet read by the main thread before the worker waits. */
  maxBlocksAhead: number;
}

/** What the main thread sends: a subtree to walk, or credit for blocks it has read. */
export type ToWalkWorker =
  { type: "task"; id: number; subtree: string } | { type: "credit"; blocks: number };

/** What a worker sends back. */
export type FromWalkWorker =
  | {
      type: "block";
      id: number;
      /** List-file lines, each ended by "\n", as UTF-8 (its buffer is transferred). */
      bytes: Uint8Array;
      count: number;
      /** The block's first key may sort before the task's earlier keys. */
      restart: boolean;
      /** Counters since the previous message. */
      stats: WalkStats;
    }
  | { type: "issue"; issue: WalkIssue }
  | { type: "done"; id: number; stats: WalkStats };

const port = parentPort;
if (port !== null) {
  const settings = workerData as WalkWorkerData;
  let outstanding = 0;
  let wakeOnCredit: (() => void) | undefined;
  const queue: Array<{ id: number; subtree: string }> = [];
  let running = false;

  const post = (message: FromWalkWorker, transfer?: ArrayBuffer[]): void =>
    port.postMessage(message, transfer);

  const runTask = async (id: number, subtree: string): Promise<void> => {
    // walkRuns updates `stats` in place; each message carries the change since the last one.
    const stats = newWalkStats();
    const sent = newWalkStats();
    const delta = (): WalkStats => {
      const d = newWalkStats();
      for (const k of Object.keys(d) as Array<keyof WalkStats>) {
        d[k] = stats[k] - sent[k];
        sent[k] = stats[k];
      }
      return d;
    };
    let parts: string[] = [];
    let count = 0;
    let size = 0;
    let restart = false;
    const send = async (): Promise<void> => {
      if (count === 0) return;
      // Encoded here and transferred, not copied: the main thread writes bytes anyway, and
      // a string would be copied by postMessage and encoded again there.
      let bytes: Uint8Array = Buffer.from(parts.join(""), "utf8");
      if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
        bytes = new Uint8Array(bytes); // a pooled small buffer: send a copy of its own
      }
      const buffer = bytes.buffer as ArrayBuffer;
      post({ type: "block", id, bytes, count, restart, stats: delta() }, [buffer]);
      parts = [];
      count = 0;
      size = 0;
      restart = false;
      outstanding++;
      while (outstanding >= settings.maxBlocksAhead) {
        await new Promise<void>((resolve) => (wakeOnCredit = resolve));
      }
    };
    for (const item of walkRuns(settings.root, stats, {
      startDir: subtree,
      modifiedSinceMs: settings.modifiedSinceMs,
      excludeDirs: settings.excludeDirs,
      batchEntries: settings.batchEntries,
      onIssue: (issue) => post({ type: "issue", issue }),
    })) {
      if ("subtree" in item) continue; // no delegation inside a worker
      if (item.restart) {
        await send();
        restart = true;
      }
      const text = runLines(item);
      parts.push(text);
      count += item.end - item.start;
      size += text.length;
      if (size >= settings.blockBytes) await send();
    }
    await send();
    post({ type: "done", id, stats: delta() });
  };

  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
      await runTask(task.id, task.subtree);
    }
    running = false;
  };

  port.on("message", (message: ToWalkWorker) => {
    if (message.type === "credit") {
      outstanding -= message.blocks;
      const wake = wakeOnCredit;
      wakeOnCredit = undefined;
      wake?.();
    } else {
      queue.push({ id: message.id, subtree: message.subtree });
      // A failure is a bug or a broken filesystem: let it reach the main thread as an error.
      pump().catch((err: unknown) => {
        throw err;
      });
    }
  });
}
