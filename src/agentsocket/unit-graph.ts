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

/** Why a unit operation failed; each kind has one fixed text, Coder's where Coder has one. */
export type UnitErrorKind = "name_required" | "not_found" | "not_ready" | "same_status" | "cycle" | "limit";

/** Error texts of agent/unit and agent/agentsocket, byte for byte; `limit` is agentd's own bound. */
const UNIT_ERROR_TEXT: Record<UnitErrorKind, string> = {
  name_required: "unit name is required",
  not_found: "unit not found",
  not_ready: "unit not ready",
  same_status: "same status already set",
  cycle: "cycle detected",
  limit: "unit graph limit reached",
};

/** A unit operation that the graph refused; `message` is the fixed text for `kind` unless a limit names itself. */
export class UnitError extends Error {
  constructor(
    readonly kind: UnitErrorKind,
    message: string = UNIT_ERROR_TEXT[kind],
  ) {
    super(message);
    this.name = "UnitError";
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

function requireName(name: string): void {
  if (name === "") throw new UnitError("name_required");
  if (Buffer.byteLength(name, "utf8") > MAX_UNIT_NAME_BYTES) {
    throw new UnitError("limit", `unit name is longer than ${MAX_UNIT_NAME_BYTES} bytes`);
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
    requireName(unit);
    this.register(unit);
    if (!this.isReady(unit)) throw new UnitError("not_ready");
    this.setStatus(unit, "started");
  }

  /**
   * SyncWant: `unit` waits for `dependsOn` to complete. The dependent is
   * registered first, even when the edge is then refused; the dependency may
   * stay unregistered until it starts. An edge that would close a cycle
   * (including a self-dependency) is refused.
   */
  want(unit: string, dependsOn: string): void {
    requireName(unit);
    this.register(unit);
    requireName(dependsOn);
    const deps = this.dependencies.get(unit) ?? new Set<string>();
    if (deps.has(dependsOn)) return;
    if (unit === dependsOn || this.reaches(dependsOn, unit)) throw new UnitError("cycle");
    if (deps.size >= MAX_DEPENDENCIES_PER_UNIT) {
      throw new UnitError("limit", `unit ${JSON.stringify(unit)} already has ${MAX_DEPENDENCIES_PER_UNIT} dependencies`);
    }
    deps.add(dependsOn);
    this.dependencies.set(unit, deps);
  }

  /** SyncComplete: marks a registered unit completed. */
  complete(unit: string): void {
    requireName(unit);
    if (this.status(unit) === "") throw new UnitError("not_found");
    this.setStatus(unit, "completed");
  }

  /** SyncReady. */
  ready(unit: string): boolean {
    requireName(unit);
    return this.isReady(unit);
  }

  /** SyncStatus: the unit's status, readiness and every declared dependency. */
  describe(unit: string): { status: UnitStatus; isReady: boolean; dependencies: DependencyInfo[] } {
    requireName(unit);
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
    return { status: this.status(unit), isReady: this.isReady(unit), dependencies };
  }

  /** SyncList: every registered unit, by name. */
  list(): UnitInfo[] {
    return [...this.statuses.keys()]
      .sort()
      .map((unit) => ({ unit, status: this.status(unit), isReady: this.isReady(unit) }));
  }

  private register(unit: string): void {
    if (this.statuses.has(unit)) return;
    if (this.statuses.size >= MAX_UNITS) {
      throw new UnitError("limit", `too many units: at most ${MAX_UNITS} can be registered`);
    }
    this.statuses.set(unit, "pending");
  }

  private setStatus(unit: string, status: UnitStatus): void {
    if (this.status(unit) === status) throw new UnitError("same_status");
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
