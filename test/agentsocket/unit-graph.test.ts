import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MAX_UNIT_NAME_BYTES, MAX_UNITS, UnitError, UnitGraph, type UnitStatus } from "../../src/agentsocket/unit-graph.js";

const NAMES = ["a", "b", "c", "d", "e", "f"];
const name = fc.constantFrom(...NAMES);
type Op = { op: "want"; unit: string; dependsOn: string } | { op: "start"; unit: string } | { op: "complete"; unit: string };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("want" as const), unit: name, dependsOn: name }),
  fc.record({ op: fc.constant("start" as const), unit: name }),
  fc.record({ op: fc.constant("complete" as const), unit: name }),
);

/** The outcome of `fn`: "ok" or the kind of the UnitError it threw. */
function outcome(fn: () => void): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    if (err instanceof UnitError) return err.kind;
    throw err;
  }
}

function apply(g: UnitGraph, o: Op): string {
  if (o.op === "want") return outcome(() => g.want(o.unit, o.dependsOn));
  if (o.op === "start") return outcome(() => g.start(o.unit));
  return outcome(() => g.complete(o.unit));
}

/** A deliberately plain model of the spec: an edge list and a status table. */
class Model {
  status: Record<string, UnitStatus> = {};
  edges: [string, string][] = [];

  get(u: string): UnitStatus {
    return this.status[u] ?? "";
  }

  ready(u: string): boolean {
    return this.edges.filter(([from]) => from === u).every(([, to]) => this.get(to) === "completed");
  }

  /** Every unit reachable from `u`, `u` included. */
  closure(u: string): string[] {
    const out = [u];
    for (let i = 0; i < out.length; i++) {
      for (const [from, to] of this.edges) if (from === out[i] && !out.includes(to)) out.push(to);
    }
    return out;
  }

  apply(o: Op): string {
    if (o.op === "want") {
      if (!this.get(o.unit)) this.status[o.unit] = "pending";
      if (this.edges.some(([f, t]) => f === o.unit && t === o.dependsOn)) return "ok";
      if (this.closure(o.dependsOn).includes(o.unit)) return "cycle";
      this.edges.push([o.unit, o.dependsOn]);
      return "ok";
    }
    if (o.op === "start") {
      if (!this.get(o.unit)) this.status[o.unit] = "pending";
      if (!this.ready(o.unit)) return "not_ready";
      if (this.get(o.unit) === "started") return "same_status";
      this.status[o.unit] = "started";
      return "ok";
    }
    if (!this.get(o.unit)) return "not_found";
    if (this.get(o.unit) === "completed") return "same_status";
    this.status[o.unit] = "completed";
    return "ok";
  }
}

/** Coder's text for a cycle: the wrapped manager error, then errors.Join's second line from the graph. */
const cycle = (unit: string, dependsOn: string) =>
  `cannot add dependency: adding edge for unit "${unit}": failed to add dependency\nadding edge (${unit} -> ${dependsOn}) would create a cycle`;

describe("unit graph semantics, with Coder's error texts", () => {
  test("SyncStart registers the unit and marks it started; starting it again fails 'same status already set'", () => {
    const g = new UnitGraph();
    g.start("a");
    assert.equal(g.status("a"), "started");
    assert.throws(() => g.start("a"), { message: 'cannot start unit "a": checking status for unit "a": same status already set' });
  });

  test("a unit waits for its dependency to complete, and a completed unit may be started again", () => {
    const g = new UnitGraph();
    g.want("b", "a");
    assert.equal(g.status("b"), "pending");
    assert.equal(g.status("a"), "", "the dependency stays unregistered");
    assert.throws(() => g.start("b"), { message: 'cannot start unit "b": unit not ready' });
    g.start("a");
    assert.equal(g.ready("b"), false);
    g.complete("a");
    assert.equal(g.ready("b"), true);
    g.start("a");
    assert.equal(g.ready("b"), false, "readiness follows the dependency's current status");
  });

  test("self-dependencies and edges closing a cycle fail with the edge that would close it", () => {
    const g = new UnitGraph();
    assert.throws(() => g.want("a", "a"), { message: cycle("a", "a") });
    g.want("a", "b");
    g.want("b", "c");
    assert.throws(() => g.want("c", "a"), { message: cycle("c", "a") });
  });

  test("empty names fail 'unit name is required', wrapped as each RPC of Coder's wraps it", () => {
    const g = new UnitGraph();
    const cases: [() => unknown, string][] = [
      [() => g.start(""), 'SyncStart: registering unit "": unit name is required'],
      [() => g.want("", "a"), 'cannot add dependency: registering unit "": unit name is required'],
      [() => g.want("a", ""), "cannot add dependency: dependency name cannot be empty: unit name is required"],
      [() => g.complete(""), 'cannot complete unit "": updating status for unit "": unit name is required'],
      [() => g.ready(""), "cannot check readiness: unit ID cannot be empty: unit name is required"],
      [() => g.describe(""), "cannot check readiness: unit ID cannot be empty: unit name is required"],
    ];
    for (const [fn, message] of cases) assert.throws(fn, { name: "UnitError", kind: "name_required", message });
  });

  test("names in error texts are quoted as Go's %q quotes them", () => {
    const g = new UnitGraph();
    assert.throws(() => g.complete('a"b\tc\u0001'), { message: 'cannot complete unit "a\\"b\\tc\\x01": unit "a\\"b\\tc\\x01" must be registered first: unit not found' });
  });

  test("SyncWant registers the dependent before it checks the dependency, as Coder's service does", () => {
    const g = new UnitGraph();
    assert.throws(() => g.want("a", ""), { kind: "name_required" });
    assert.equal(g.status("a"), "pending");
    assert.throws(() => g.want("b", "b"), { message: cycle("b", "b") });
    assert.equal(g.status("b"), "pending");
  });

  test("SyncComplete needs a registered unit; SyncReady on an unregistered unit is true", () => {
    const g = new UnitGraph();
    assert.throws(() => g.complete("x"), { message: 'cannot complete unit "x": unit "x" must be registered first: unit not found' });
    g.start("x");
    g.complete("x");
    assert.throws(() => g.complete("x"), { message: 'cannot complete unit "x": checking status for unit "x": same status already set' });
    assert.equal(g.ready("x"), true);
  });

  test("SyncStatus lists each dependency with its required and current status", () => {
    const g = new UnitGraph();
    g.want("b", "a");
    g.start("a");
    assert.deepEqual(g.describe("b"), {
      status: "pending",
      isReady: false,
      dependencies: [{ unit: "b", dependsOn: "a", requiredStatus: "completed", currentStatus: "started", isSatisfied: false }],
    });
  });
});

describe("unit graph bounds", () => {
  test(`a unit name over ${MAX_UNIT_NAME_BYTES} bytes is refused`, () => {
    const g = new UnitGraph();
    g.start("n".repeat(MAX_UNIT_NAME_BYTES));
    assert.throws(() => g.want("ok", "n".repeat(MAX_UNIT_NAME_BYTES + 1)), {
      message: `unit name is longer than ${MAX_UNIT_NAME_BYTES} bytes`,
    });
  });


  test(`registering more than ${MAX_UNITS} units fails clearly and leaves existing units working`, () => {
    const g = new UnitGraph();
    for (let i = 0; i < MAX_UNITS; i++) g.start(`u${i}`);
    assert.throws(() => g.start("one-more"), {
      message: `SyncStart: registering unit "one-more": too many units: at most ${MAX_UNITS} can be registered`,
    });
    assert.equal(g.status("one-more"), "");
    g.complete("u0");
    assert.equal(g.status("u0"), "completed");
  });
});

describe("unit graph properties", () => {
  test("every operation's outcome, status and readiness equal the reference model", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const g = new UnitGraph();
        const m = new Model();
        for (const o of ops) {
          assert.equal(apply(g, o), m.apply(o), JSON.stringify(o));
          for (const u of NAMES) {
            assert.equal(g.status(u), m.get(u));
            assert.equal(g.isReady(u), m.ready(u));
          }
        }
        assert.deepEqual(g.list().map((u) => u.unit), NAMES.filter((u) => m.get(u)).sort());
      }),
      { numRuns: 300 },
    );
  });

  test("cycles are always rejected: the graph stays acyclic and no path can be closed", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const g = new UnitGraph();
        ops.forEach((o) => apply(g, o));
        const deps = (u: string) => g.describe(u).dependencies.map((d) => d.dependsOn);
        const reaches = (from: string, to: string, seen = new Set<string>()): boolean =>
          deps(from).some((d) => d === to || (!seen.has(d) && (seen.add(d), reaches(d, to, seen))));
        for (const a of NAMES) {
          assert.equal(reaches(a, a), false, `cycle through ${a}`);
          for (const b of NAMES) if (reaches(a, b)) assert.throws(() => g.want(b, a), { message: cycle(b, a) });
        }
      }),
      { numRuns: 200 },
    );
  });

  test("random dependency graphs never deadlock: every unit can be started and completed in some order", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const g = new UnitGraph();
        ops.forEach((o) => apply(g, o));
        const units = new Set([...g.list().map((u) => u.unit), ...NAMES]);
        let progressed = true;
        while (progressed) {
          progressed = false;
          for (const u of units) {
            if (g.status(u) === "completed" || !g.isReady(u)) continue;
            if (g.status(u) !== "started") g.start(u);
            g.complete(u);
            progressed = true;
          }
        }
        for (const u of units) assert.equal(g.status(u), "completed", `${u} never became ready`);
      }),
      { numRuns: 200 },
    );
  });
});
