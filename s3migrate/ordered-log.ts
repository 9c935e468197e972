/**
 * The ordered completion log (`migrate.log`) and its reader.
 *
 * Keys are handed out in sorted order and finish in any order (many workers). A key is appended
 * to the log only when it and every key admitted before it have finished, so the log is sorted
 * and its last line is always a safe `--start-after`: everything up to it is done. In-flight
 * keys live in a sliding window of bounded size; `admit` waits while the window is full, which
 * back-pressures the key reader when one slow object holds the window's head.
 *
 * The file is in s3find's list format (one escaped key a line, see s3find/list-file.ts), so a
 * migrate.log can also serve as a list file. Lines are written in order with appends; a SIGKILL
 * can at worst leave a torn last line, which {@link readLastLogKey} ignores and
 * {@link OrderedLog.open} truncates before appending.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { escapeKey, unescapeKey } from "../s3find/list-file.js";

/** The last complete line of a log and where the valid prefix of the file ends. */
export interface LastLine {
  /** The unescaped key of the last complete line, if any. */
  readonly key?: string;
  /** Length in bytes of the file up to and including the last "\n" (a torn tail excluded). */
  readonly validLength: number;
}

/**
 * Reads the last complete line of a log from its end (constant memory, any size). A tail
 * without "\n" is a torn write (SIGKILL, power loss) and is ignored. A missing file has no line.
 */
export async function readLastLogKey(path: string): Promise<LastLine> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { validLength: 0 };
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const chunk = 64 * 1024;
    let end = -1; // index of the "\n" ending the last complete line
    let tail: Buffer = Buffer.alloc(0); // bytes after the previous "\n" up to `end`
    let pos = size;
    while (pos > 0) {
      const len = Math.min(chunk, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      let scanFrom = len - 1;
      if (end < 0) {
        const nl = buf.lastIndexOf(0x0a);
        if (nl < 0) continue;
        end = pos + nl;
        tail = Buffer.alloc(0);
        scanFrom = nl - 1;
        if (scanFrom < 0) continue;
        const prev = buf.lastIndexOf(0x0a, scanFrom);
        if (prev >= 0) return finish(buf.subarray(prev + 1, nl), end);
        tail = Buffer.from(buf.subarray(0, nl));
        continue;
      }
      const prev = buf.lastIndexOf(0x0a, scanFrom);
      if (prev >= 0) return finish(Buffer.concat([buf.subarray(prev + 1), tail]), end);
      tail = Buffer.concat([buf, tail]);
      if (tail.length > 4 * 1024 * 1024) throw new Error(`${path}: last line is not a key`);
    }
    if (end < 0) return { validLength: 0 };
    return finish(tail, end);
  } finally {
    await fh.close();
  }
}

function finish(line: Buffer, end: number): LastLine {
  let text = line.toString("utf8");
  if (text.endsWith("\r")) text = text.slice(0, -1);
  return text === "" ? { validLength: end + 1 } : { key: unescapeKey(text), validLength: end + 1 };
}

/** Options of {@link OrderedLog.open}. */
export interface OrderedLogOptions {
  /** Keep the existing content (resume) instead of starting an empty log. */
  readonly append: boolean;
  /** Most keys in flight between the oldest unfinished key and the newest admitted one. */
  readonly windowSize: number;
  /** How often buffered lines are written to the file, in ms. */
  readonly flushIntervalMs?: number;
  /** How often the file is fsynced, in ms. */
  readonly syncIntervalMs?: number;
}

/** A slot in the window, returned by {@link OrderedLog.admit}; pass it to {@link OrderedLog.complete}. */
export interface LogTicket {
  readonly seq: number;
}

interface Slot {
  key: string;
  done: boolean;
  logged: boolean;
}

/** The sorted completion log with its sliding window of in-flight keys. */
export class OrderedLog {
  private readonly slots: Slot[] = [];
  private head = 0; // index into slots of the oldest unfinished key
  private base = 0; // seq number of slots[0]
  private nextSeq = 0;
  private pending = "";
  private writing: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private writeError: unknown;
  private lastLogged?: string;

  private constructor(
    private readonly fh: FileHandle,
    private readonly windowSize: number,
  ) {}

  /** Opens (or creates) the log; with `append`, a torn last line is cut off first. */
  static async open(path: string, options: OrderedLogOptions): Promise<OrderedLog> {
    let lastKey: string | undefined;
    if (options.append) {
      const last = await readLastLogKey(path);
      lastKey = last.key;
      const size = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (size > last.validLength) {
        const t = await open(path, "r+");
        try {
          await t.truncate(last.validLength);
          await t.sync();
        } finally {
          await t.close();
        }
      }
    }
    const fh = await open(path, options.append ? "a" : "w", 0o644);
    const log = new OrderedLog(fh, Math.max(1, options.windowSize));
    log.lastLogged = lastKey;
    const flush = setInterval(
      () => void log.flush().catch(() => undefined),
      options.flushIntervalMs ?? 1000,
    );
    const sync = setInterval(
      () => void log.sync().catch(() => undefined),
      options.syncIntervalMs ?? 5000,
    );
    flush.unref();
    sync.unref();
    log.timers.push(flush, sync);
    return log;
  }

  /** Keys admitted and not yet logged (the window's current size). */
  get inFlight(): number {
    return this.nextSeq - (this.base + this.head);
  }

  /** The last key appended to the log (or found there on open). */
  get lastKey(): string | undefined {
    return this.lastLogged;
  }

  /**
   * Takes the next key in sorted order into the window, waiting while the window is full.
   * Keys must be admitted in sorted order.
   */
  async admit(key: string): Promise<LogTicket> {
    while (!this.closed && this.inFlight >= this.windowSize) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.closed) throw new Error("ordered log is closed");
    this.slots.push({ key, done: false, logged: false });
    return { seq: this.nextSeq++ };
  }

  /** Marks an admitted key finished; it is logged once every earlier key is finished too. */
  complete(ticket: LogTicket): void {
    const slot = this.slots[ticket.seq - this.base];
    if (!slot || slot.done) throw new Error(`ordered log: bad ticket ${ticket.seq}`);
    slot.done = true;
    let advanced = false;
    while (this.head < this.slots.length && (this.slots[this.head] as Slot).done) {
      const s = this.slots[this.head] as Slot;
      this.pending += escapeKey(s.key) + "\n";
      this.lastLogged = s.key;
      this.head++;
      advanced = true;
    }
    if (!advanced) return;
    // Drop finished slots in batches so the array does not shift on every completion.
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.base += this.head;
      this.head = 0;
    }
    if (this.pending.length >= 64 * 1024) void this.flush().catch(() => undefined);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Writes buffered lines to the file (in order; appends are serialized). */
  flush(): Promise<void> {
    if (this.pending.length > 0) {
      const text = this.pending;
      this.pending = "";
      this.writing = this.writing.then(async () => {
        try {
          await this.fh.write(text, null, "utf8");
        } catch (err) {
          this.writeError ??= err;
        }
      });
    }
    return this.writing.then(() => {
      if (this.writeError !== undefined) throw this.writeError;
    });
  }

  /** Flushes and fsyncs the file. */
  async sync(): Promise<void> {
    await this.flush();
    this.writing = this.writing.then(() => this.fh.sync().catch(() => undefined));
    await this.writing;
  }

  /** Flushes, fsyncs and closes the log. Keys still in flight are not logged (the next run redoes them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    try {
      await this.sync();
    } finally {
      await this.fh.close();
    }
  }
}
