// The 5,000-key bucket layout of the real-client listing test (gateway-listing-clients), shared
// with the backend fault test that found MinIO's short pages on it (listing-backend-faults).
import type { Rng } from "./listing-model.js";

/** Where the keys of one prefix live: a mix of the three kinds, or one side only. */
type Placement = "mixed" | "target" | "source";

/**
 * The bucket's layout: 5,000 keys. The mixed prefixes hold 2,000 keys on both sides, 400 on the
 * target only and 400 on the source only, shuffled; with the two one-sided prefixes that makes
 * 2,000 / 1,500 / 1,500. The one-sided prefixes are longer than a 1,000-key page.
 */
const LAYOUT: readonly {
  readonly prefix: string;
  readonly keys: number;
  readonly on: Placement;
}[] = [
  { prefix: "", keys: 300, on: "mixed" },
  { prefix: "a-b/", keys: 150, on: "mixed" },
  { prefix: "a/", keys: 900, on: "mixed" },
  { prefix: "a/b/c/", keys: 500, on: "mixed" },
  { prefix: "a0/", keys: 150, on: "mixed" },
  { prefix: "archive/2019/q1/", keys: 1100, on: "source" },
  { prefix: "new/", keys: 1100, on: "target" },
  { prefix: "z/y/", keys: 800, on: "mixed" },
];
const MIXED = { both: 2000, target: 400, source: 400 };
/** Top-level names around the prefixes above in byte order ("-" < "." < "/" < "0"). */
const FIXED_TOP = ["a-a.txt", "a-c.txt", "a.txt", "a0.txt", "a1.txt", "archive.log", "z.txt"];
/** Leaf names: a letter or digit, then up to 8 of these (and "-", "_"), then an extension. */
const FIRST_CHARS = [..."abcdefghijklmnopqrstuvwxyz0123456789"];
const LEAF_CHARS = [...FIRST_CHARS, "_", "-"];
const EXTENSIONS = ["txt", "bin", "log", "json"];
/** The bodies are tiny; a target copy is 1..60 bytes, a source copy 61..120: never the same. */
const TARGET_SIZES = { min: 1, span: 60 };
const SOURCE_SIZES = { min: 61, span: 60 };

/** One key of the bucket: its size on each side where it exists. */
export interface Placed {
  readonly target?: number;
  readonly source?: number;
}

/**
 * The seeded key set. Leaf names always contain a "." and prefix segments never do, so no key is
 * also a "directory" of another (versitygw stores keys as files, and so do the CLIs).
 */
export function generateBucket(rng: Rng): Map<string, Placed> {
  const mixedSides: ("both" | "target" | "source")[] = [
    ...Array<"both">(MIXED.both).fill("both"),
    ...Array<"target">(MIXED.target).fill("target"),
    ...Array<"source">(MIXED.source).fill("source"),
  ];
  for (let i = mixedSides.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [mixedSides[i], mixedSides[j]] = [mixedSides[j] as "both", mixedSides[i] as "both"];
  }
  const targetSize = (): number => TARGET_SIZES.min + rng.int(TARGET_SIZES.span);
  const sourceSize = (): number => SOURCE_SIZES.min + rng.int(SOURCE_SIZES.span);
  const keys = new Map<string, Placed>();
  let nextMixed = 0;
  for (const { prefix, keys: count, on } of LAYOUT) {
    const leaves = new Set<string>(prefix === "" ? FIXED_TOP : []);
    while (leaves.size < count) {
      let leaf = rng.pick(FIRST_CHARS);
      const len = rng.int(9);
      for (let i = 0; i < len; i++) leaf += rng.pick(LEAF_CHARS);
      leaves.add(`${leaf}.${rng.pick(EXTENSIONS)}`);
    }
    for (const leaf of leaves) {
      const side = on === "mixed" ? mixedSides[nextMixed++] : on;
      keys.set(
        `${prefix}${leaf}`,
        side === "both"
          ? { target: targetSize(), source: sourceSize() }
          : side === "target"
            ? { target: targetSize() }
            : { source: sourceSize() },
      );
    }
  }
  return keys;
}
