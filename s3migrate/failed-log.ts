/**
 * `failed.log`: one JSON line per key that could not be copied after its retries,
 * `{"key","code","message","attempts"}` — data a person can read and a program can parse
 * (STYLE.md rule 7) — and its conversion into a list folder for a second run
 * (`--failed-to-folder DIR`, then `--src-folder DIR`).
 */
import { createReadStream } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chunkFileName, writeListFile } from "../s3find/list-file.js";
import type { KeyCompare } from "./key-source.js";

/** One line of failed.log. */
export interface FailedEntry {
  /** The object key. */
  readonly key: string;
  /** The S3 error code or our own code (e.g. `BadDigest`, `ETIMEDOUT`, `ETagMismatch`). */
  readonly code: string;
  /** A one-line message, free of secrets. */
  readonly message: string;
  /** How many attempts were made. */
  readonly attempts: number;
}

/** Options of {@link FailedLog.open}. */
export interface FailedLogOptions {
  /** Keep existing lines (resume) instead of starting an empty file. */
  readonly append: boolean;
}

/** An append-only JSON-lines writer for failed.log; lines are written at once (they are rare). */
export class FailedLog {
  private writing: Promise<void> = Promise.resolve();
  private count = 0;

  private constructor(private readonly fh: FileHandle) {}

  /** Opens or creates the file. */
  static async open(path: string, options: FailedLogOptions): Promise<FailedLog> {
    return new FailedLog(await open(path, options.append ? "a" : "w", 0o644));
  }

  /** Keys recorded by this writer. */
  get recorded(): number {
    return this.count;
  }

  /** Appends one entry; resolves once the line reached the file. */
  add(entry: FailedEntry): Promise<void> {
    this.count++;
    const line = JSON.stringify({
      key: entry.key,
      code: entry.code,
      message: entry.message,
      attempts: entry.attempts,
    });
    // A torn line can only be the last one; appending "\n" first would be safer for readers
    // but readFailedKeys skips unparsable lines anyway.
    this.writing = this.writing.then(() =>
      this.fh.write(line + "\n", null, "utf8").then(() => undefined),
    );
    return this.writing;
  }

  /** Writes pending lines, fsyncs and closes. */
  async close(): Promise<void> {
    await this.writing;
    await this.fh.sync().catch(() => undefined);
    await this.fh.close();
  }
}

/** Streams the entries of a failed.log; a torn or unparsable line is skipped. */
export async function* readFailedLog(path: string): AsyncGenerator<FailedEntry> {
  const rl = createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === "") continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const e = entry as Partial<FailedEntry>;
    if (typeof e.key === "string" && e.key !== "") {
      yield {
        key: e.key,
        code: String(e.code ?? ""),
        message: String(e.message ?? ""),
        attempts: Number(e.attempts ?? 0),
      };
    }
  }
}

/** Options of {@link failedToFolder}. */
export interface FailedToFolderOptions {
  /** Key order of the list files written. */
  readonly compare: KeyCompare;
  /** Keys per list file (s3find's chunk size by default). */
  readonly chunkSize?: number;
}

/**
 * Turns failed.log into a list folder: keys deduplicated and sorted in UTF-8 byte order, in
 * s3find's chunk files. Holds the failed keys in memory (a failed set is small next to a bucket).
 * Returns the number of keys written.
 */
export async function failedToFolder(
  failedLogPath: string,
  dir: string,
  options: FailedToFolderOptions,
): Promise<number> {
  const keys = new Set<string>();
  for await (const e of readFailedLog(failedLogPath)) keys.add(e.key);
  const sorted = [...keys].sort(options.compare);
  await mkdir(dir, { recursive: true });
  const chunk = options.chunkSize ?? 100_000;
  let n = 1;
  for (let i = 0; i < sorted.length || n === 1; i += chunk, n++) {
    await writeListFile(join(dir, chunkFileName(n)), sorted.slice(i, i + chunk));
    if (sorted.length === 0) break;
  }
  return sorted.length;
}
