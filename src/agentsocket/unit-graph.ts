import { goQuote } from "../go-quote.js";

/**
 * A unit's status as Coder's unit manager names it: "" means the unit was
 * never registered (it may still be depended on).
 */
export type UnitStatus = "" | "pending" | "started" | "completed";

/** The status a dependency must reach: SyncWant always requires `completed` (agent/unit). */
export const REQUIRED_STATUS: UnitStatus = "completed";
/** Registered units kept at once; past it registering fails, so a runaway script cannot grow the graph forever. */
export const MAX_UNITS = 10_000;
/** Dependencies one unit may declare. */
export const MAX_DEPENDENCIES_PER_UNIT = 1_000;
/** Longest unit name accepted, in UTF-8 bytes; with MAX_UNITS it bounds the graph's memory. */
export const MAX_UNIT_NAME_BYTES = 1024;

/** Why a unit operation failed. */
export type UnitErrorKind = "name_required" | "not_found" | "not_ready" | "same_status" | "cycle" | "limit";

/** The sentinel errors of agent/unit/manager.go that Coder's texts end with. */
const ERR_UNIT_NAME_REQUIRED = "unit name is required";
const ERR_UNIT_NOT_FOUND = "unit not found";
const ERR_SAME_STATUS = "same status already set";
const ERR_FAILED_TO_ADD_DEPENDENCY = "failed to add dependency";

/**
 * A unit operation that the graph refused. `message` is the text Coder's
 * agent socket service sends for the same failure, byte for byte: the RPC's
 * context (agent/agentsocket/service.go) wrapping the unit manager's error
 * (agent/unit/manager.go), e.g. `cannot complete unit "x": unit "x" must be
 * registered first: unit not found`. The `limit` kind is agentd's own bound.
 */
export class UnitError extends Error {
  constructor(
    readonly kind: UnitErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "UnitError";
  }

  /** The same failure with Go's `%w` wrapping: `<context>: <message>`. */
  wrap(context: string): UnitError {
    return new UnitError(this.kind, `${context}: ${this.message}`);
  }
}

/** SyncStart's text for a unit whose dependencies are not all complete. */
export function notReadyMessage(unit: string): string {
  return `cannot start unit ${goQuote(unit)}: unit not ready`;
}

/** Runs `fn`, wrapping a UnitError it throws in `context`. */
function within<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw err instanceof UnitError ? err.wrap(context) : err;
  }
}

/** One edge as SyncStatus reports it. */
export interface DependencyInfo {
  unit: string;
  dependsOn: string;
  requiredStatus: UnitStatus;
  currentStatus: UnitStatus;
  isSatisfied: boolean;
}

/** One registered unit as SyncList reports it. */
export interface UnitInfo {
  unit: string;
  status: UnitStatus;
  isReady: boolean;
}

/** Refuses an empty name with the manager's text, `context` saying where. */
function requireName(name: string, context: string): void {
  if (name === "") throw new UnitError("name_required", `${context}: ${ERR_UNIT_NAME_REQUIRED}`);
}

/** Refuses a name over MAX_UNIT_NAME_BYTES before anything else, so that no error text repeats it. */
function requireShort(...names: string[]): void {
  for (const name of names) {
    if (Buffer.byteLength(name, "utf8") > MAX_UNIT_NAME_BYTES) {
      throw new UnitError("limit", `unit name is longer than ${MAX_UNIT_NAME_BYTES} bytes`);
    }
  }
}

/**
 * The dependency graph behind `coder exp sync`: units register, declare
 * that they want other units completed, start when ready and complete.
 * Readiness is derived from the current statuses on every read, so a status
 * change is reflected in every dependent at once and can never go stale.
 */
export class UnitGraph {
  private readonly statuses = new Map<string, UnitStatus>();
  /** unit → the units it depends on, in the order they were wanted. */
  private readonly dependencies = new Map<string, Set<string>>();

  /** The unit's status; "" when it was never registered. */
  status(unit: string): UnitStatus {
    return this.statuses.get(unit) ?? "";
  }

  /** True when every dependency has reached its required status; an unregistered unit is ready. */
  isReady(unit: string): boolean {
    for (const dep of this.dependencies.get(unit) ?? []) {
      if (this.status(dep) !== REQUIRED_STATUS) return false;
    }
    return true;
  }

  /** SyncStart: registers the unit if needed, then marks it started once its dependencies are met. */
  start(unit: string): void {
    requireShort(unit);
    within("SyncStart", () => this.register(unit));
    if (!this.isReady(unit)) throw new UnitError("not_ready", notReadyMessage(unit));
    within(`cannot start unit ${goQuote(unit)}`, () => this.updateStatus(unit, "started"));
  }

  /**
   * SyncWant: `unit` waits for `dependsOn` to complete. The dependent is
   * registered first, even when the edge is then refused; the dependency may
   * stay unregistered until it starts. An edge that would close a cycle
   * (including a self-dependency) is refused.
   */
  want(unit: string, dependsOn: string): void {
    requireShort(unit, dependsOn);
    within("cannot add dependency", () => {
      this.register(unit);
      this.addDependency(unit, dependsOn);
    });
  }

  /** SyncComplete: marks a registered unit completed. */
  complete(unit: string): void {
    requireShort(unit);
    within(`cannot complete unit ${goQuote(unit)}`, () => this.updateStatus(unit, "completed"));
  }

  /** SyncReady: true when every dependency is complete; an unregistered unit is ready. */
  ready(unit: string): boolean {
    requireShort(unit);
    return within("cannot check readiness", () => {
      requireName(unit, "unit ID cannot be empty");
      return this.isReady(unit);
    });
  }

  /** SyncStatus: the unit's status, readiness and every declared dependency. */
  describe(unit: string): { status: UnitStatus; isReady: boolean; dependencies: DependencyInfo[] } {
    const isReady = this.ready(unit);
    const dependencies = [...(this.dependencies.get(unit) ?? [])].map((dependsOn) => {
      const currentStatus = this.status(dependsOn);
      return {
        unit,
        dependsOn,
        requiredStatus: REQUIRED_STATUS,
        currentStatus,
        isSatisfied: currentStatus === REQUIRED_STATUS,
      };
    });
    return { status: this.status(unit), isReady, dependencies };
  }

  /** SyncList: every registered unit, by name. */
  list(): UnitInfo[] {
    return [...this.statuses.keys()]
      .sort()
      .map((unit) => ({ unit, status: this.status(unit), isReady: this.isReady(unit) }));
  }

  /** The manager's Register; registering a registered unit changes nothing. */
  private register(unit: string): void {
    requireName(unit, `registering unit ${goQuote(unit)}`);
    if (this.statuses.has(unit)) return;
    if (this.statuses.size >= MAX_UNITS) {
      throw new UnitError("limit", `registering unit ${goQuote(unit)}: too many units: at most ${MAX_UNITS} can be registered`);
    }
    this.statuses.set(unit, "pending");
  }

  /** The manager's AddDependency: `unit` must be registered; `dependsOn` need not be. */
  private addDependency(unit: string, dependsOn: string): void {
    requireName(dependsOn, "dependency name cannot be empty");
    const deps = this.dependencies.get(unit) ?? new Set<string>();
    if (deps.has(dependsOn)) return;
    if (unit === dependsOn || this.reaches(dependsOn, unit)) {
      // errors.Join(ErrFailedToAddDependency, graph error): the two texts on two lines; %v prints names unquoted.
      const detail = `adding edge (${unit} -> ${dependsOn}) would create a cycle`;
      throw new UnitError("cycle", `adding edge for unit ${goQuote(unit)}: ${ERR_FAILED_TO_ADD_DEPENDENCY}\n${detail}`);
    }
    if (deps.size >= MAX_DEPENDENCIES_PER_UNIT) {
      throw new UnitError("limit", `unit ${goQuote(unit)} already has ${MAX_DEPENDENCIES_PER_UNIT} dependencies`);
    }
    deps.add(dependsOn);
    this.dependencies.set(unit, deps);
  }

  /** The manager's UpdateStatus: the unit must be registered and the status must change. */
  private updateStatus(unit: string, status: UnitStatus): void {
    requireName(unit, `updating status for unit ${goQuote(unit)}`);
    const current = this.status(unit);
    if (current === "") throw new UnitError("not_found", `unit ${goQuote(unit)} must be registered first: ${ERR_UNIT_NOT_FOUND}`);
    if (current === status) throw new UnitError("same_status", `checking status for unit ${goQuote(unit)}: ${ERR_SAME_STATUS}`);
    this.statuses.set(unit, status);
  }

  /** True when `to` can be reached from `from` along dependency edges. */
  private reaches(from: string, to: string): boolean {
    const seen = new Set<string>([from]);
    const stack = [from];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node === to) return true;
      for (const next of this.dependencies.get(node) ?? []) {
        if (!seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    return false;
  }
}
