import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { NOT_CONNECTED_MESSAGE, type Upstream } from "../coderd/upstream.js";
import type { Logger } from "../log.js";
import type { AppStatusLog } from "./app-status-log.js";
import { UnitError, type UnitErrorKind, type UnitGraph } from "./unit-graph.js";

/** The Connect code each unit failure travels with; the text stays the graph's own. */
const UNIT_ERROR_CODE: Record<UnitErrorKind, Code> = {
  name_required: Code.InvalidArgument,
  not_found: Code.NotFound,
  not_ready: Code.FailedPrecondition,
  same_status: Code.FailedPrecondition,
  cycle: Code.InvalidArgument,
  limit: Code.ResourceExhausted,
};

/** Runs a graph operation, turning a UnitError into a ConnectError with the same text. */
function unitCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnitError) throw new ConnectError(err.message, UNIT_ERROR_CODE[err.kind]);
    throw err;
  }
}

/** Fails with Coder's "agent not connected to coderd" while there is no coderd connection to forward to. */
export function requireConnected(upstream: Upstream): void {
  if (!upstream.isConnected()) throw new ConnectError(NOT_CONNECTED_MESSAGE, Code.Unavailable);
}

/**
 * Coder's AgentSocket service: sync units on `graph`, app status forwarded
 * unchanged to coderd through `upstream` and, once accepted, kept in `statuses`.
 */
export function agentSocketService(
  graph: UnitGraph,
  upstream: Upstream,
  log: Logger,
  statuses: AppStatusLog,
): ServiceImpl<typeof AgentSocket> {
  return {
    ping() {
      return {};
    },

    syncStart(req) {
      unitCall(() => graph.start(req.unit));
      log.debug({ unit: req.unit }, "unit started");
      return {};
    },

    syncWant(req) {
      unitCall(() => graph.want(req.unit, req.dependsOn));
      log.debug({ unit: req.unit, dependsOn: req.dependsOn }, "unit dependency added");
      return {};
    },

    syncComplete(req) {
      unitCall(() => graph.complete(req.unit));
      log.debug({ unit: req.unit }, "unit completed");
      return {};
    },

    syncReady(req) {
      return { ready: unitCall(() => graph.ready(req.unit)) };
    },

    syncStatus(req) {
      return unitCall(() => graph.describe(req.unit));
    },

    syncList() {
      return { units: graph.list() };
    },

    async updateAppStatus(req, ctx) {
      requireConnected(upstream);
      const res = await upstream.client.updateAppStatus(req, { signal: ctx.signal });
      statuses.record(req);
      return res;
    },
  };
}
