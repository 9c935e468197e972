/**
 * Key sources: where the keys to copy come from, as one globally sorted, deduplicated async
 * stream, and the classification of each key (other shard, already on the target, to copy).
 *
 * Inputs are s3find list folders (each file sorted in UTF-8 byte order, see
 * s3find/list-file.ts) merged k-way with a binary heap, so memory is O(number of files) and not
 * O(number of keys) — the merge-join of s5cmd's sync and MinIO's listing merge, in small.
 */
import { listFilesIn, readListFile } from "../s3find/list-file.js";
import { MinHeap } from "./heap.js";
import { shardOf } from "./shard.js";

/** Orders keys; must be UTF-8 byte order to agree with s3find and ListObjectsV2. */
export type KeyCompare = (a: string, b: string) => number;

/** A key source that is not usable: an unsorted list file, an empty folder. */
export class KeySourceError extends Error {
  /** Stable error code. */
  readonly code = "KeySourceError";

  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "KeySourceError";
  }
}

/** Options of {@link mergeSortedKeys}. */
export interface MergeOptions {
  /** The order every source is sorted in. */
  readonly compare: KeyCompare;
  /** A name per source (e.g. its file path), for the error when one is not sorted. */
  readonly names?: readonly string[];
}

interface HeapEntry {
  key: string;
  source: number;
}

/**
 * Merges sorted key streams into one sorted stream without duplicates. A source that goes
 * backwards is an error (its keys would otherwise be silently skipped or reordered).
 */
export async function* mergeSortedKeys(
  sources: readonly AsyncIterable<string>[],
  options: MergeOptions,
): AsyncGenerator<string> {
  const { compare } = options;
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  // Ties between sources are broken by source index so the order is fully determined.
  const heap = new MinHeap<HeapEntry>((a, b) => compare(a.key, b.key) || a.source - b.source);
  try {
    const firsts = await Promise.all(iterators.map((it) => it.next()));
    firsts.forEach((r, source) => {
      if (!r.done) heap.push({ key: r.value, source });
    });
    let last: string | undefined;
    while (heap.size > 0) {
      const top = heap.pop() as HeapEntry;
      if (last === undefined || compare(top.key, last) !== 0) {
        last = top.key;
        yield top.key;
      }
      const it = iterators[top.source] as AsyncIterator<string>;
      const next = await it.next();
      if (next.done) continue;
      if (compare(next.value, top.key) < 0) {
        const name = options.names?.[top.source] ?? `source ${top.source}`;
        throw new KeySourceError(
          `${name} is not sorted in UTF-8 byte order: ${JSON.stringify(next.value)} after ${JSON.stringify(top.key)}`,
        );
      }
      heap.push({ key: next.value, source: top.source });
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.().catch(() => undefined)));
  }
}

/** Options of {@link folderKeys}. */
export interface FolderKeysOptions {
  /** The key order of the list files. */
  readonly compare: KeyCompare;
  /** Accept a folder without list files (an empty stream) instead of throwing. */
  readonly allowEmpty?: boolean;
}

/** Every list file of a folder (s3find output), merged into one sorted, deduplicated stream. */
export async function folderKeys(
  dir: string,
  options: FolderKeysOptions,
): Promise<AsyncIterable<string>> {
  let files: string[];
  try {
    files = await listFilesIn(dir);
  } catch (err) {
    // A dest folder that does not exist yet simply holds no lists of the target's keys.
    if (options.allowEmpty && (err as NodeJS.ErrnoException).code === "ENOENT") files = [];
    else
      throw new KeySourceError(
        `cannot read list folder ${dir} (${(err as NodeJS.ErrnoException).code ?? err})`,
      );
  }
  if (files.length === 0 && !options.allowEmpty) {
    throw new KeySourceError(`list folder ${dir} holds no list files`);
  }
  return mergeSortedKeys(
    files.map((f) => readListFile(f)),
    { compare: options.compare, names: files },
  );
}

/** What happens to a key in this run. */
export type KeyClass =
  /** Another shard's key (`--hash-count/--hash-value`). */
  | "ign"
  /** Listed in `--dest-folder`: already on the target. */
  | "exist"
  /** To be copied. */
  | "work";

/** A key and its class. */
export interface ClassifiedKey {
  readonly key: string;
  readonly cls: KeyClass;
}

/** Options of {@link classifyKeys}. */
export interface ClassifyOptions {
  /** The key order of both streams. */
  readonly compare: KeyCompare;
  /** Keys up to and including this one are dropped (`--start-after`, `--resume`). */
  readonly startAfter?: string;
  /** Stop after this many keys (counted after `startAfter`, before sharding). */
  readonly first?: number;
  /** Number of shards. */
  readonly hashCount: number;
  /** This host's shard. */
  readonly hashValue: number;
  /** The sorted keys already on the target (`--dest-folder`), walked in lockstep. */
  readonly destKeys?: AsyncIterable<string>;
  /** Called for each key dropped by `startAfter` (for the progress percentage). */
  readonly onBefore?: () => void;
}

/**
 * Classifies a sorted key stream: drops keys up to `startAfter`, stops after `first`, marks
 * other shards' keys `ign` and keys present in the sorted `destKeys` `exist` (a merge-join:
 * both streams advance together, so memory stays constant).
 */
export async function* classifyKeys(
  keys: AsyncIterable<string>,
  options: ClassifyOptions,
): AsyncGenerator<ClassifiedKey> {
  const { compare, startAfter, first, hashCount, hashValue } = options;
  const dest = options.destKeys?.[Symbol.asyncIterator]();
  let destKey: string | undefined;
  let destDone = dest === undefined;
  let taken = 0;
  try {
    for await (const key of keys) {
      if (startAfter !== undefined && compare(key, startAfter) <= 0) {
        options.onBefore?.();
        continue;
      }
      if (first !== undefined && taken >= first) return;
      taken++;
      if (hashCount > 1 && shardOf(key, hashCount) !== hashValue) {
        yield { key, cls: "ign" };
        continue;
      }
      while (!destDone && (destKey === undefined || compare(destKey, key) < 0)) {
        const r = await (dest as AsyncIterator<string>).next();
        if (r.done) destDone = true;
        else destKey = r.value;
      }
      const exists = destKey !== undefined && compare(destKey, key) === 0;
      yield { key, cls: exists ? "exist" : "work" };
    }
  } finally {
    await dest?.return?.().catch(() => undefined);
  }
}

/** Counts the distinct keys of a folder's list files (the merged stream), for the progress percentage. */
export async function countFolderKeys(dir: string, compare: KeyCompare): Promise<number> {
  let n = 0;
  for await (const _ of await folderKeys(dir, { compare, allowEmpty: true })) n++;
  return n;
}
