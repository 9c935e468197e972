/**
 * Tombstones of client deletes in migrate mode (DESIGN 3.4, PITFALLS "Migrate mode"). Before a
 * client's delete goes out to either side, its key gets a durable tombstone in the shared state
 * store, and the delete waits until no migration write holds a claim on the key. From then on
 * no migration write can claim it (the copier's copy of the old object is refused), and a
 * fallback read never serves the source's copy of it. Tombstones live until detach.
 */
import { S3Error } from "../../s3/errors.js";
import type { ExecContext } from "./context.js";

/** The longest a client delete waits for in-flight migration writes of its keys. */
export const CLAIM_WAIT_MS = 60_000;

/**
 * Writes the tombstones of `keys` (durable on return) and waits until none of them is claimed
 * by a migration write. A wait past {@link CLAIM_WAIT_MS} answers 503: the tombstones stand, so
 * a retry finishes the delete and no copy can land in between.
 */
export async function tombstoneAndWait(
  ctx: ExecContext,
  bucket: string,
  keys: readonly string[],
): Promise<void> {
  // Bounded parallelism: a DeleteObjects names up to 1,000 keys.
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map((k) => ctx.keys.addTombstone(bucket, k)));
  }
  ctx.metrics.tombstones(keys.length);
  const deadline = Date.now() + CLAIM_WAIT_MS;
  let pending = [...keys];
  for (let delay = 5; pending.length > 0; delay = Math.min(delay * 2, 250)) {
    const still: string[] = [];
    for (const k of pending) {
      if ((await ctx.keys.activeClaims(bucket, k)).length > 0) still.push(k);
    }
    pending = still;
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      throw new S3Error("ServiceUnavailable", {
        message: "A copy of this key is still being written; retry the delete.",
      });
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delay);
      ctx.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(ctx.signal.reason as Error);
        },
        { once: true },
      );
    });
  }
}
