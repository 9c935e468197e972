/**
 * A small binary min-heap, used by the k-way merge of sorted key lists: with k lists it holds
 * at most k entries, so memory stays O(k) whatever the number of keys.
 */

/** A binary min-heap ordered by a comparison function. */
export class MinHeap<T> {
  private readonly items: T[] = [];

  /** Creates an empty heap ordered by `compare` (negative: `a` comes first). */
  constructor(private readonly compare: (a: T, b: T) => number) {}

  /** Number of entries. */
  get size(): number {
    return this.items.length;
  }

  /** The smallest entry without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds an entry. */
  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(items[i] as T, items[parent] as T) >= 0) break;
      [items[i], items[parent]] = [items[parent] as T, items[i] as T];
      i = parent;
    }
  }

  /** Removes and returns the smallest entry. */
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && this.compare(items[l] as T, items[m] as T) < 0) m = l;
      if (r < items.length && this.compare(items[r] as T, items[m] as T) < 0) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m] as T, items[i] as T];
      i = m;
    }
    return top;
  }
}
