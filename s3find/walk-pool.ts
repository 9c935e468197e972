/**
 * The parallel walk: the main thread walks the top `delegateDepth` levels of the tree itself
 * and hands each directory at that depth, as a whole subtree, to one of `jobs` worker threads
 * (walk-worker.ts). Every subtree's keys form one contiguous range of the byte order, so the
 * main thread only has to append, in walk order, its own runs and each subtree's blocks as
 * they arrive — the chunks come out exactly as a single-threaded walk would cut them.
 *
 * Memory: at most `maxTasksAhead` subtrees are handed out or queued beyond the one being
 * appended, and each worker may have at most `maxBlocksAhead` blocks waiting.
 */
import { opendirSync, type Dir } from "node:fs";
import { Worker } from "node:worker_threads";
import type { ChunkWriter } from "./chunk-writer.js";
import { runLines } from "./list-file.js";
import type { FromWalkWorker, ToWalkWorker, WalkWorkerData } from "./walk-worker.js";
import { walkRuns, type WalkOptions, type WalkStats } from "./walk.js";

/** Options of walkParallel. */
export interface ParallelWalkOptions {
  /** The walked root. */
  root: string;
  /** Counters of the whole walk (main thread and workers), updated as results arrive. */
  stats: WalkStats;
  /** The walk's filters and reporting; startDir and delegateDepth are set here. */
  walk: WalkOptions;
  /** Where the ordered keys go. */
  writer: ChunkWriter;
  /** Worker threads, at least 1. */
  jobs: number;
  /** Directories this deep are subtrees for the workers (see chooseDelegateDepth). */
  delegateDepth: number;
}

const BLOCK_BYTES = 256 * 1024;
const MAX_BLOCKS_AHEAD = 16;
// Text of the main thread's own runs queued behind unfinished subtrees, before it pauses.
const MAX_QUEUED_TEXT = 8 * 1024 * 1024;

interface Block {
  text: string | Buffer;
  count: number;
  restart: boolean;
}

type Segment =
  | { kind: "text"; block: Block }
  | {
      kind: "task";
      id: number;
      subtree: string;
      restart: boolean;
      blocks: Block[];
      done: boolean;
      slot: Slot | undefined;
    };

interface Slot {
  worker: Worker;
  task: Extract<Segment, { kind: "task" }> | undefined;
}

/**
 * The shallowest depth (1..4) with at least 8 directories per job, found by counting
 * subdirectories level by level (at most 200,000 entries read); undefined when the tree is too
 * small or too narrow to be worth worker threads.
 */
export function chooseDelegateDepth(root: string, jobs: number): number | undefined {
  let level = [""];
  let budget = 200_000;
  const wanted = 8 * jobs;
  for (let depth = 1; depth <= 4; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      let dir: Dir;
      try {
        dir = opendirSync(rel === "" ? root : `${root}/${rel}`, { bufferSize: 256 });
      } catch {
        continue; // the walk itself reports it
      }
      try {
        for (let e = dir.readSync(); e !== null && budget > 0; e = dir.readSync()) {
          budget--;
          if (e.isDirectory()) next.push(rel === "" ? e.name : `${rel}/${e.name}`);
        }
      } catch {
        // likewise reported by the walk
      } finally {
        dir.closeSync();
      }
      if (next.length >= wanted) return depth;
      if (budget <= 0) return undefined;
    }
    if (next.length === 0) return undefined;
    level = next;
  }
  return undefined;
}

function startWorker(data: WalkWorkerData): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./walk-worker.js", import.meta.url), { workerData: data });
  }
  // Running from source (tests, tsx): a worker does not inherit the parent's module loader, so
  // a tiny bootstrap registers tsx in the worker before importing the TypeScript worker file.
  const target = JSON.stringify(new URL("./walk-worker.ts", import.meta.url).href);
  return new Worker(
    `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${target}); });`,
    { eval: true, workerData: data },
  );
}

function addStats(into: WalkStats, delta: WalkStats): void {
  into.scanned += delta.scanned;
  into.files += delta.files;
  into.directories += delta.directories;
  into.symlinks += delta.symlinks;
  into.others += delta.others;
  into.olderThanCutoff += delta.olderThanCutoff;
  into.errors += delta.errors;
}

/** Walks the tree with worker threads and appends every key, in walk order, to the writer. */
export async function walkParallel(options: ParallelWalkOptions): Promise<void> {
  const { stats, writer, walk } = options;
  const queue: Segment[] = [];
  const unassigned: Array<Extract<Segment, { kind: "task" }>> = [];
  const slots: Slot[] = [];
  let queuedText = 0;
  // A restart whose segment brought no keys (an empty subtree) passes to the next one.
  let carry = false;
  let closing = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const signal = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const changed = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  const fail = (err: Error): void => {
    failure ??= err;
    signal();
  };

  const assign = (): void => {
    for (const slot of slots) {
      if (slot.task !== undefined) continue;
      const task = unassigned.shift();
      if (task === undefined) return;
      slot.task = task;
      task.slot = slot;
      slot.worker.postMessage({
        type: "task",
        id: task.id,
        subtree: task.subtree,
      } satisfies ToWalkWorker);
    }
  };

  const workerData: WalkWorkerData = {
    root: options.root,
    modifiedSinceMs: walk.modifiedSinceMs,
    excludeDirs: walk.excludeDirs,
    batchEntries: walk.batchEntries ?? 100_000,
    blockBytes: BLOCK_BYTES,
    maxBlocksAhead: MAX_BLOCKS_AHEAD,
  };
  const tasks = new Map<number, Extract<Segment, { kind: "task" }>>();
  for (let j = 0; j < options.jobs; j++) {
    const slot: Slot = { worker: startWorker(workerData), task: undefined };
    slot.worker.on("message", (message: FromWalkWorker) => {
      if (message.type === "issue") {
        walk.onIssue?.(message.issue);
        return;
      }
      addStats(stats, message.stats);
      walk.onTick?.(); // lets the caller's progress report see the workers' counts
      const task = tasks.get(message.id);
      if (task === undefined) return;
      if (message.type === "block") {
        const { bytes } = message;
        const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        task.blocks.push({ text, count: message.count, restart: message.restart });
      } else {
        task.done = true;
        slot.task = undefined;
        assign();
      }
      signal();
    });
    slot.worker.on("error", fail);
    slot.worker.on("exit", (code) => {
      if (!closing && (slot.task !== undefined || code !== 0)) {
        fail(new Error(`walk worker exited with code ${code}`));
      }
    });
    slots.push(slot);
  }

  // Appends what is ready at the head of the queue, in order; returns when it must wait.
  const drain = async (): Promise<void> => {
    for (;;) {
      const head = queue[0];
      if (head === undefined) return;
      if (head.kind === "text") {
        queue.shift();
        queuedText -= head.block.text.length;
        const restart = head.block.restart || carry;
        carry = false;
        await writer.appendText(head.block.text, head.block.count, restart);
        continue;
      }
      let read = 0;
      for (let b = head.blocks.shift(); b !== undefined; b = head.blocks.shift()) {
        const restart = b.restart || head.restart || carry;
        head.restart = false;
        carry = false;
        await writer.appendText(b.text, b.count, restart);
        read++;
      }
      if (read > 0 && head.slot !== undefined) {
        head.slot.worker.postMessage({ type: "credit", blocks: read } satisfies ToWalkWorker);
      }
      if (!head.done) return;
      if (head.restart) carry = true;
      queue.shift();
      tasks.delete(head.id);
    }
  };

  try {
    let nextId = 0;
    for (const item of walkRuns(options.root, stats, {
      ...walk,
      delegateDepth: options.delegateDepth,
    })) {
      if (failure) throw failure;
      if ("subtree" in item) {
        const task: Extract<Segment, { kind: "task" }> = {
          kind: "task",
          id: nextId++,
          subtree: item.subtree,
          restart: item.restart,
          blocks: [],
          done: false,
          slot: undefined,
        };
        tasks.set(task.id, task);
        queue.push(task);
        unassigned.push(task);
        assign();
      } else if (queue.length === 0) {
        const waiting = writer.appendRun(carry ? { ...item, restart: true } : item);
        carry = false;
        if (waiting) await waiting;
        continue;
      } else {
        const text = runLines(item);
        queuedText += text.length;
        queue.push({
          kind: "text",
          block: { text, count: item.end - item.start, restart: item.restart },
        });
      }
      await drain();
      // Stay at most a few subtrees ahead of the workers, and bound the text held meanwhile.
      while (!failure && (unassigned.length >= options.jobs || queuedText > MAX_QUEUED_TEXT)) {
        await changed();
        await drain();
      }
    }
    while (!failure && queue.length > 0) {
      await drain();
      if (queue.length > 0) await changed();
    }
    if (failure) throw failure;
  } finally {
    closing = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
