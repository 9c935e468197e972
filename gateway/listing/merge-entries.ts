/**
 * The streaming k-way merge of the two sides, with the delimiter roll-up applied on each side
 * before merging. It works on *groups*: all consecutive entries of one side that share a name
 * after roll-up. A CommonPrefix is one group however many keys it folds (they are dropped as
 * they stream by, never held); a key is one group holding its object, or the chain of its
 * uploads or versions. The merge then takes the smaller name of the two sides' head groups and,
 * on a tie, applies the operation's rule (below). Memory: one group per side plus the readers'
 * pages, whatever the number of keys under one prefix.
 */
import { compareKeys, foldCommonPrefix } from "../../s3/key-order.js";
import { lastKeyUnder } from "../../s3/listing-bounds.js";
import { BackendListingFault, entryName, type SideReader } from "./side-reader.js";
import type { BackendEntry, ListingMetrics, SideName } from "./listing-types.js";

/** One name of the merged listing: a CommonPrefix, or a key with its entries. */
export type MergedGroup =
  | { readonly kind: "prefix"; readonly name: string }
  | { readonly kind: "key"; readonly name: string; readonly entries: readonly BackendEntry[] };

/**
 * What happens when both sides hold the same key:
 * - `target-wins` (objects, versions): the target's entry or version chain, the source's is
 *   dropped (a copied object is the same object; the target is the system of record);
 * - `concatenate` (uploads): both sides' uploads, the target's first (they are different
 *   uploads that happen to have the same key).
 */
export type TieRule = "target-wins" | "concatenate";

/** The largest chain of one key (uploads or versions) a merge holds before it gives up. */
export const MAX_GROUP_ENTRIES = 10_000;

/** How one side's entries are grouped. */
export interface GroupingOptions {
  /** The listing's prefix. */
  readonly prefix: string;
  /** The listing's delimiter (any string), or undefined. */
  readonly delimiter?: string;
  /** Only names strictly after it are kept (already normalised into the prefix's range). */
  readonly after?: string;
  /**
   * Whether the backend does not fold by this delimiter itself (anything but `/`): after a
   * CommonPrefix the reader is told to jump past its keys.
   */
  readonly skipFoldedKeys: boolean;
}

/**
 * One side's groups in order: roll-up by the delimiter, names at or before `after` dropped
 * (so a CommonPrefix that contains the start position is not listed again, as S3 does for
 * NextMarker), consecutive equal names merged.
 */
export async function* sideGroups(
  reader: SideReader,
  options: GroupingOptions,
): AsyncGenerator<MergedGroup> {
  let current:
    | { kind: "prefix"; name: string }
    | { kind: "key"; name: string; entries: BackendEntry[] }
    | undefined;
  let previous: string | undefined;
  for (;;) {
    const entry = await reader.next();
    if (entry === undefined) break;
    const key = entryName(entry);
    if (!key.startsWith(options.prefix)) {
      throw new BackendListingFault(reader.name, "the backend listed a key outside the prefix");
    }
    // A backend's CommonPrefix is folded again: S3's rule is applied here, not trusted (versitygw
    // lists deeper CommonPrefixes, `a/k/` next to `a/`, in ListObjectVersions).
    const folded = foldCommonPrefix(key, options.prefix, options.delimiter);
    if (entry.type === "prefix" && folded === undefined) {
      throw new BackendListingFault(
        reader.name,
        "the backend listed a CommonPrefix without the delimiter",
      );
    }
    const name = folded ?? key;
    if (previous !== undefined && compareKeys(name, previous) < 0) {
      throw new BackendListingFault(reader.name, "the backend listed keys out of order");
    }
    previous = name;
    if (options.after !== undefined && compareKeys(name, options.after) <= 0) {
      if (folded !== undefined && options.skipFoldedKeys) skipPast(reader, folded);
      continue;
    }
    if (current !== undefined && current.name === name) {
      if (current.kind === "key") {
        if (current.entries.length >= MAX_GROUP_ENTRIES) {
          throw new BackendListingFault(
            reader.name,
            `more than ${MAX_GROUP_ENTRIES} entries for one key`,
          );
        }
        // A repeated object (a backend paging by the last key may repeat it) is the same one.
        if (entry.type !== "object") current.entries.push(entry);
      }
      continue;
    }
    if (current !== undefined) yield current;
    if (folded !== undefined) {
      current = { kind: "prefix", name };
      if (options.skipFoldedKeys) skipPast(reader, folded);
    } else {
      current = { kind: "key", name, entries: [entry] };
    }
  }
  if (current !== undefined) yield current;
}

function skipPast(reader: SideReader, commonPrefix: string): void {
  const bound = lastKeyUnder(commonPrefix);
  if (bound !== undefined) reader.skipThrough(bound);
}

/**
 * Merges the target's and the source's groups into one sequence in UTF-8 byte order, each name
 * once. Either side's failure rejects the merge (never a partial listing).
 */
export async function* mergeGroups(
  target: AsyncGenerator<MergedGroup>,
  source: AsyncGenerator<MergedGroup>,
  options: { readonly tie: TieRule; readonly metrics?: ListingMetrics },
): AsyncGenerator<MergedGroup> {
  const sides: Array<{ name: SideName; it: AsyncGenerator<MergedGroup> }> = [
    { name: "target", it: target },
    { name: "source", it: source },
  ];
  const heads: Array<MergedGroup | undefined> = [undefined, undefined];
  const pull = async (i: number): Promise<void> => {
    const r = await (sides[i] as { it: AsyncGenerator<MergedGroup> }).it.next();
    heads[i] = r.done === true ? undefined : r.value;
  };
  try {
    await Promise.all([pull(0), pull(1)]);
    for (;;) {
      const [t, s] = heads;
      if (t === undefined && s === undefined) return;
      const order = t === undefined ? 1 : s === undefined ? -1 : compareKeys(t.name, s.name);
      if (order < 0) {
        yield t as MergedGroup;
        await pull(0);
      } else if (order > 0) {
        yield s as MergedGroup;
        await pull(1);
      } else {
        options.metrics?.duplicatesFolded?.(1);
        yield combine(t as MergedGroup, s as MergedGroup, options.tie);
        await Promise.all([pull(0), pull(1)]);
      }
    }
  } finally {
    await Promise.all([target.return(undefined), source.return(undefined)]);
  }
}

function combine(target: MergedGroup, source: MergedGroup, tie: TieRule): MergedGroup {
  if (target.kind === "prefix" || source.kind === "prefix" || tie === "target-wins") return target;
  return { kind: "key", name: target.name, entries: [...target.entries, ...source.entries] };
}
