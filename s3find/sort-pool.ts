/**
 * A bounded pool of sort workers. At most `jobs` chunks are being sorted and written at once;
 * `submit` waits for a free worker, which is the back-pressure that keeps the walk's memory at
 * (jobs + 1) chunks whatever the tree size.
 */
import { Worker } from "node:worker_threads";
import type { SortJob, SortResult } from "./sort-worker.js";

/** Options of SortPool. */
export interface SortPoolOptions {
  /** Number of worker threads, at least 1. */
  jobs: number;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  done?: (result: SortResult) => void;
}

function startWorker(): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./sort-worker.js", import.meta.url));
  }
  // Running from source (tests, tsx): a worker does not inherit the parent's module loader, so
  // a tiny bootstrap registers tsx in the worker before importing the TypeScript worker file.
  const target = JSON.stringify(new URL("./sort-worker.ts", import.meta.url).href);
  return new Worker(
    `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${target}); });`,
    { eval: true },
  );
}

/** Sorts and writes chunks in worker threads, `jobs` at a time. */
export class SortPool {
  private readonly slots: Slot[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private closed = false;
  /** Chunks fully written (renamed into place). */
  written = 0;

  /** Prepares the pool; workers start on first use. */
  constructor(private readonly options: SortPoolOptions) {
    if (!Number.isInteger(options.jobs) || options.jobs < 1) {
      throw new RangeError(`jobs must be a positive integer: ${options.jobs}`);
    }
  }

  /** Hands one chunk to a worker once one is free; the sort and write go on in the background. */
  async submit(path: string, keys: string[]): Promise<void> {
    const slot = await this.acquire();
    const job: SortJob = { path, joined: keys.join("\0") };
    const done = new Promise<void>((resolve) => {
      slot.done = (result) => {
        slot.done = undefined;
        if (result.ok) this.written++;
        else this.failure ??= new Error(`writing ${path}: ${result.error}`);
        this.release(slot);
        resolve();
      };
    });
    this.inFlight.add(done);
    void done.then(() => this.inFlight.delete(done));
    slot.worker.postMessage(job);
  }

  /** Waits for every submitted chunk, stops the workers, and throws the first failure if any. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.inFlight]);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
    if (this.failure) throw this.failure;
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.closed) throw new Error("sort pool is closed");
      const free = this.slots.find((s) => !s.busy);
      if (free) {
        free.busy = true;
        return free;
      }
      if (this.slots.length < this.options.jobs) {
        const slot = this.spawn();
        slot.busy = true;
        return slot;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private release(slot: Slot): void {
    slot.busy = false;
    this.waiters.shift()?.();
  }

  private spawn(): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, busy: false };
    worker.on("message", (result: SortResult) => slot.done?.(result));
    const crashed = (err: Error): void => {
      this.failure ??= err;
      slot.done?.({ ok: false, error: err.message });
      // A dead worker must not be handed work again, and waiters must wake to see the failure.
      for (const wake of this.waiters.splice(0)) wake();
    };
    worker.on("error", crashed);
    worker.on("exit", (code) => {
      if (!this.closed || slot.done) crashed(new Error(`sort worker exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }
}
