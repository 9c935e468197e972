/**
 * The per-bucket migration modes and the rules for moving between them (DESIGN 3.2), as a pure
 * function the state store, the admin API and the CLI all share.
 */

/** A bucket's migration mode while attached. */
export type MigrationMode = "ready" | "forward" | "migrate";

/** Every mode, in lifecycle order. */
export const MIGRATION_MODES: readonly MigrationMode[] = ["ready", "forward", "migrate"];

/** A mode or the absence of migration state (before attach, after detach). */
export type LifecycleState = MigrationMode | "detached";

/** The names of the transition rules; a refusal always names one. */
export type TransitionRule =
  | "attach-starts-in-ready"
  | "migrate-only-from-forward"
  | "migrate-is-irreversible"
  | "migrate-to-ready-needs-force"
  | "detach-only-from-ready-or-migrate"
  | "already-detached";

/** What each rule says, for messages and docs. */
export const TRANSITION_RULES: Readonly<Record<TransitionRule, string>> = {
  "attach-starts-in-ready": "a bucket is attached in mode ready",
  "migrate-only-from-forward": "migrate mode is entered from forward only",
  "migrate-is-irreversible":
    "migrate mode can only be left to ready with --force (after copying back) or by detach",
  "migrate-to-ready-needs-force":
    "migrate → ready is the rollback of last resort and needs --force (copy new writes back to the source first)",
  "detach-only-from-ready-or-migrate": "detach is allowed from ready or migrate only",
  "already-detached": "the bucket is not attached",
};

/** The verdict of {@link checkTransition}. */
export type TransitionVerdict =
  | { readonly allowed: true; readonly noop: boolean }
  | { readonly allowed: false; readonly rule: TransitionRule; readonly message: string };

/** Options for {@link checkTransition}. */
export interface TransitionOptions {
  /** The operator asked for `--force` (only migrate → ready honours it). */
  force?: boolean;
}

/**
 * Decides whether `from → to` is allowed by DESIGN 3.2: attach → ready; ready ↔ forward;
 * forward → migrate; migrate → ready only with force; detach from ready or migrate.
 * Moving to the current mode is an allowed no-op.
 */
export function checkTransition(
  from: LifecycleState,
  to: LifecycleState,
  options: TransitionOptions = {},
): TransitionVerdict {
  if (from === to) {
    if (from === "detached") return refuse("already-detached", from, to);
    return { allowed: true, noop: true };
  }
  if (from === "detached") {
    return to === "ready" ? ok() : refuse("attach-starts-in-ready", from, to);
  }
  if (to === "detached") {
    return from === "ready" || from === "migrate"
      ? ok()
      : refuse("detach-only-from-ready-or-migrate", from, to);
  }
  switch (from) {
    case "ready":
      return to === "forward" ? ok() : refuse("migrate-only-from-forward", from, to);
    case "forward":
      // forward → ready (rollback) and forward → migrate are both allowed here; the CLI asks
      // for confirmation of the latter and the admin API wants it acknowledged.
      return ok();
    case "migrate":
      if (to === "ready") {
        return options.force ? ok() : refuse("migrate-to-ready-needs-force", from, to);
      }
      return refuse("migrate-is-irreversible", from, to);
  }
}

/** Whether `from → to` is the point of no return that needs explicit confirmation. */
export function isIrreversible(from: LifecycleState, to: LifecycleState): boolean {
  return from === "forward" && to === "migrate";
}

function ok(): TransitionVerdict {
  return { allowed: true, noop: false };
}

function refuse(rule: TransitionRule, from: LifecycleState, to: LifecycleState): TransitionVerdict {
  return {
    allowed: false,
    rule,
    message: `${from} → ${to} refused by rule ${rule}: ${TRANSITION_RULES[rule]}`,
  };
}
