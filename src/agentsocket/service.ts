import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { UpdateAppStatusRequest_AppStatusState as AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { NOT_CONNECTED_MESSAGE, type Upstream } from "../coderd/upstream.js";
import type { Logger } from "../log.js";
import type { AppStatusLog } from "./app-status-log.js";
import { UnitError, type UnitGraph } from "./unit-graph.js";

/**
 * Runs a graph operation, turning a UnitError into a ConnectError with the
 * same text and code Unknown: Coder's service returns plain wrapped errors,
 * which carry no dRPC code, so the Error frame says code 0 as Go's does.
 */
function unitCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnitError) throw new ConnectError(err.message, Code.Unknown);
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
      log.info({ unit: req.unit }, "unit started");
      return {};
    },

    syncWant(req) {
      unitCall(() => graph.want(req.unit, req.dependsOn));
      log.info({ unit: req.unit, dependsOn: req.dependsOn }, "unit dependency added");
      return {};
    },

    syncComplete(req) {
      unitCall(() => graph.complete(req.unit));
      log.info({ unit: req.unit }, "unit completed");
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
      log.info({ slug: req.slug, state: AppStatusState[req.state] }, "app status forwarded");
      statuses.record(req);
      return res;
    },
  };
}
