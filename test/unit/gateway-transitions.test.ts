import { describe, expect, it } from "vitest";
import {
  checkTransition,
  type LifecycleState,
  type TransitionRule,
} from "../../gateway/state/transitions.js";

// Every (from, to) pair of DESIGN 3.2, without and with --force. "noop" = allowed, no change;
// "ok" = allowed; otherwise the rule that refuses.
type Expect = "ok" | "noop" | TransitionRule;
const TABLE: [from: LifecycleState, to: LifecycleState, plain: Expect, forced: Expect][] = [
  ["detached", "ready", "ok", "ok"],
  ["detached", "forward", "attach-starts-in-ready", "attach-starts-in-ready"],
  ["detached", "migrate", "attach-starts-in-ready", "attach-starts-in-ready"],
  ["detached", "detached", "already-detached", "already-detached"],
  ["ready", "ready", "noop", "noop"],
  ["ready", "forward", "ok", "ok"],
  ["ready", "migrate", "migrate-only-from-forward", "migrate-only-from-forward"],
  ["ready", "detached", "ok", "ok"],
  ["forward", "ready", "ok", "ok"],
  ["forward", "forward", "noop", "noop"],
  ["forward", "migrate", "ok", "ok"],
  ["forward", "detached", "detach-only-from-ready-or-migrate", "detach-only-from-ready-or-migrate"],
  ["migrate", "ready", "migrate-to-ready-needs-force", "ok"],
  ["migrate", "forward", "migrate-is-irreversible", "migrate-is-irreversible"],
  ["migrate", "migrate", "noop", "noop"],
  ["migrate", "detached", "ok", "ok"],
];

function outcome(from: LifecycleState, to: LifecycleState, force: boolean): Expect {
  const v = checkTransition(from, to, { force });
  if (!v.allowed) {
    expect(v.message).toContain(v.rule);
    expect(v.message).toContain(`${from} → ${to}`);
    return v.rule;
  }
  return v.noop ? "noop" : "ok";
}

describe("checkTransition (DESIGN 3.2)", () => {
  for (const [from, to, plain, forced] of TABLE) {
    it(`${from} → ${to}: ${plain}, with force: ${forced}`, () => {
      expect(outcome(from, to, false)).toBe(plain);
      expect(outcome(from, to, true)).toBe(forced);
    });
  }
  it("the table covers every pair", () => {
    expect(new Set(TABLE.map(([f, t]) => `${f}>${t}`)).size).toBe(16);
  });
});
