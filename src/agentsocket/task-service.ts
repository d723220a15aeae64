import type { ServiceImpl } from "@connectrpc/connect";
import type { TaskService } from "../../gen/agentd/tasks/v1/tasks_pb.js";
import type { AppStatusLog } from "./app-status-log.js";
import type { UnitGraph } from "./unit-graph.js";

/** `agentd.tasks.v1.TaskService`: the reported app statuses and the sync unit graph, read-only. */
export function taskService(graph: UnitGraph, statuses: AppStatusLog): ServiceImpl<typeof TaskService> {
  return {
    listAppStatuses() {
      return {
        statuses: statuses.newestFirst().map((s) => ({ ...s, timeUnixMs: BigInt(s.timeMs) })),
      };
    },
    listUnits() {
      return {
        units: graph.list().map((u) => ({
          name: u.unit,
          status: u.status,
          isReady: u.isReady,
          dependencies: graph.describe(u.unit).dependencies.map((d) => ({
            dependsOn: d.dependsOn,
            currentStatus: d.currentStatus,
            isSatisfied: d.isSatisfied,
          })),
        })),
      };
    },
  };
}
