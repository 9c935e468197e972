/**
 * The list-file format shared by s3find (writer) and s3migrate (reader).
 *
 * A list file holds S3 object keys, one per line, each line terminated by "\n". A key is
 * written as its raw UTF-8 bytes, except three characters that would break the line
 * structure or the escape itself:
 *
 * | in the key        | on the line |
 * |-------------------|-------------|
 * | `\` (0x5C)        | `\\`        |
 * | line feed (0x0A)  | `\n`        |
 * | carriage return (0x0D) | `\r`   |
 *
 * Nothing else is escaped and nothing is normalised (NFC and NFD spellings of the same name are
 * different S3 keys). Because 0x0A, 0x0D and 0x5C never occur inside a multi-byte UTF-8
 * sequence, escaping characters and escaping bytes are the same thing. Empty lines carry no
 * key (S3 keys are never empty) and are skipped; a final line without "\n" is accepted; a
 * "\r" right before the "\n" is dropped so files edited on Windows still read (our writer
 * never emits a raw "\r"). See docs/s3find.md for the full description.
 *
 * S3 key rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
 */
import { createReadStream } from "node:fs";
import { open, readdir, rename, rm, lstat, type FileHandle } from "node:fs/promises";
import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

/** A list file (or a line of one) that does not follow the format, or a key that cannot be written. */
export class ListFileError extends Error {
  /** Stable error code, for callers that switch on codes rather than classes. */
  readonly code = "ListFileError";

  /** Builds the error; `path` and `line` locate it when it came from a file. */
  constructor(
    message: string,
    readonly path?: string,
    readonly line?: number,
  ) {
    super(path === undefined ? message : `${path}:${line ?? 0}: ${message}`);
    this.name = "ListFileError";
  }
}

/** Longest line the reader accepts; keeps memory bounded on a file that is not a list file. */
export const MAX_LINE_BYTES = 1 << 20;

const ESCAPE_ALL = /[\\\n\r]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r" };
const UNESCAPES: Record<string, string> = { "\\": "\\", n: "\n", r: "\r" };
// A lone UTF-16 surrogate has no UTF-8 form; Buffer.from would silently turn it into U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const WRITE_BATCH = 8192;
const HAS_ESCAPE = 1;
const HAS_SURROGATE = 2;

/** One pass over the code units: does the key need escaping, does it hold surrogates? */
function scanKey(key: string): number {
  // A plain loop: measured several times faster than running regexes on every key.
  let flags = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x5c || c === 0x0a || c === 0x0d) flags |= HAS_ESCAPE;
    else if (c >= 0xd800 && c <= 0xdfff) flags |= HAS_SURROGATE;
  }
  return flags;
}

/** The line for one key, refusing keys that could not be read back as written. */
function lineOf(key: string): string {
  if (key.length === 0) throw new ListFileError("an empty key cannot be written");
  const flags = scanKey(key);
  if (flags & HAS_SURROGATE && LONE_SURROGATE.test(key)) {
    throw new ListFileError("key contains a lone UTF-16 surrogate (not valid UTF-8)");
  }
  return flags & HAS_ESCAPE ? key.replace(ESCAPE_ALL, (c) => ESCAPES[c] ?? c) : key;
}

/** Escapes a key for one line: "\\" → "\\\\", "\n" → "\\n", "\r" → "\\r"; all else raw UTF-8. */
export function escapeKey(key: string): string {
  // Most keys need nothing: scan first so the common case allocates no new string.
  return scanKey(key) & HAS_ESCAPE ? key.replace(ESCAPE_ALL, (c) => ESCAPES[c] ?? c) : key;
}

/** Inverse of escapeKey; throws ListFileError on an invalid escape. */
export function unescapeKey(line: string): string {
  let at = line.indexOf("\\");
  if (at < 0) return line;
  let out = "";
  let from = 0;
  while (at >= 0) {
    const next = line[at + 1];
    const plain = next === undefined ? undefined : UNESCAPES[next];
    if (plain === undefined) {
      throw new ListFileError(
        next === undefined
          ? "line ends with a lone backslash"
          : `invalid escape "\\${next}" at character ${at}`,
      );
    }
    out += line.slice(from, at) + plain;
    from = at + 2;
    at = line.indexOf("\\", from);
  }
  return out + line.slice(from);
}

/** Streams the keys (unescaped) of one list file, bounded memory, any size; tolerates a final line without "\n"; skips empty lines. */
export async function* readListFile(path: string): AsyncIterable<string> {
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  let carry: Buffer | undefined;
  let lineNo = 0;
  const decode = (bytes: Buffer): string | undefined => {
    lineNo++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    if (end === 0) return undefined;
    const body = bytes.subarray(0, end);
    if (!isUtf8(body)) throw new ListFileError("line is not valid UTF-8", path, lineNo);
    try {
      return unescapeKey(body.toString("utf8"));
    } catch (err) {
      throw new ListFileError((err as Error).message, path, lineNo);
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
      carry = undefined;
      let from = 0;
      let nl = buf.indexOf(0x0a, from);
      while (nl >= 0) {
        const key = decode(buf.subarray(from, nl));
        if (key !== undefined) yield key;
        from = nl + 1;
        nl = buf.indexOf(0x0a, from);
      }
      if (from < buf.length) {
        if (buf.length - from > MAX_LINE_BYTES) {
          throw new ListFileError(`line longer than ${MAX_LINE_BYTES} bytes`, path, lineNo + 1);
        }
        // Copy the tail so the big read buffer it points into can be released.
        carry = Buffer.from(buf.subarray(from));
      }
    }
    if (carry !== undefined) {
      const key = decode(carry);
      if (key !== undefined) yield key;
    }
  } finally {
    stream.destroy();
  }
}

/** Writes keys (escaped, one a line) to `path` atomically: a hidden temp file in the same dir, fsync, rename. */
export async function writeListFile(
  path: string,
  keys: Iterable<string> | AsyncIterable<string>,
): Promise<void> {
  await writeAtomically(path, async (fh) => {
    // Lines are gathered in batches and written with one call each; a sync iterable (an
    // array) is walked without for-await, which would cost a promise per key.
    let batch: string[] = [];
    const add = (key: string): Promise<void> | undefined => {
      batch.push(lineOf(key));
      if (batch.length < WRITE_BATCH) return undefined;
      const text = batch.join("\n") + "\n";
      batch = [];
      return fh.writeFile(text, "utf8");
    };
    if (Symbol.asyncIterator in keys) {
      for await (const key of keys) await add(key);
    } else {
      for (const key of keys) {
        const writing = add(key);
        if (writing) await writing;
      }
    }
    if (batch.length > 0) await fh.writeFile(batch.join("\n") + "\n", "utf8");
  });
}

/** Keys sharing one directory prefix, consecutive in a walk: prefix + names[i] for start ≤ i < end. */
export interface KeyRun {
  /** "" or a directory path ending in "/". */
  prefix: string;
  /** Entry names; only [start, end) belong to the run. */
  names: readonly string[];
  /** First index of the run. */
  start: number;
  /** One past the last index of the run. */
  end: number;
  /** Whether some key of the run (prefix or name) holds a character to escape; false skips the scan. */
  needsEscape: boolean;
}

/**
 * The list-file lines of a run, each ended by "\n", ready to be appended to a list file's
 * text. The common case (nothing to escape) is one `join` per directory instead of work per key.
 */
export function runLines(run: KeyRun): string {
  const { prefix, names, start, end } = run;
  if (end <= start) return "";
  if (run.needsEscape) {
    let text = "";
    for (let i = start; i < end; i++) text += `${escapeKey(prefix + (names[i] as string))}\n`;
    return text;
  }
  const part = start === 0 && end === names.length ? names : names.slice(start, end);
  return `${prefix}${part.join(`\n${prefix}`)}\n`;
}

/**
 * Writes text already in list-file form (escaped lines, each ended by "\n", e.g. from
 * runLines; a string or its UTF-8 bytes) to `path` atomically, like writeListFile. The caller
 * vouches for the order.
 */
export async function writeListText(path: string, text: string | Uint8Array): Promise<void> {
  await writeAtomically(path, async (fh) => {
    await fh.writeFile(text, typeof text === "string" ? "utf8" : undefined);
  });
}

/** Runs `write` on a hidden temp file in the same directory, then fsync, rename, fsync dir. */
async function writeAtomically(
  path: string,
  write: (fh: FileHandle) => Promise<void>,
): Promise<void> {
  const dir = dirname(path);
  // Hidden (leading dot) so listFilesIn never picks up a half-written file, and in the same
  // directory so rename(2) is atomic (same filesystem).
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o644);
  let closed = false;
  try {
    await write(fh);
    await fh.sync();
    closed = true;
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** Makes a rename durable: fsync the directory that holds the new name (see rename(2), fsync(2)). */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename itself is still atomic.
  } finally {
    await dh.close();
  }
}

/** The list files of a folder: regular, non-hidden files whose names do not end in ".log" or ".json" (s3migrate writes migrate.log, failed.log, summary JSON there), sorted by name. */
export async function listFilesIn(dir: string): Promise<string[]> {
  // Returns full paths (dir joined with the name), ready for readListFile, in byte order of the
  // names; chunkFileName's zero padding makes that the chunk order.
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const name = entry.name;
    if (name.startsWith(".") || name.endsWith(".log") || name.endsWith(".json")) continue;
    let regular = entry.isFile();
    if (!regular && !entry.isDirectory() && !entry.isSymbolicLink()) {
      // d_type unknown on this filesystem: ask lstat.
      regular = (await lstat(join(dir, name))).isFile();
    }
    if (regular) names.push(name);
  }
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return names.map((name) => join(dir, name));
}

/** Highest chunk number; six digits keep names in numeric order when sorted as text. */
export const MAX_CHUNK_NUMBER = 999_999;

/** Chunk file name for chunk number n (1-based): "keys-000001.txt" style, documented. */
export function chunkFileName(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHUNK_NUMBER) {
    throw new RangeError(`chunk number must be an integer from 1 to ${MAX_CHUNK_NUMBER}: ${n}`);
  }
  return `keys-${String(n).padStart(6, "0")}.txt`;
}
