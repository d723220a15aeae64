import type { Unit } from "../gen/agentd/tasks/v1/tasks_pb.js";
import { Empty } from "./states.js";

/** The sync units (`coder exp sync`) with their state and what each waits for. */
export function UnitList({ units }: { units: Unit[] }) {
  if (units.length === 0) return <Empty>No sync units registered (coder exp sync start|want|complete).</Empty>;
  return (
    <div class="table-wrap">
      <table class="unit-table">
        <thead>
          <tr>
            <th scope="col">Unit</th>
            <th scope="col">Status</th>
            <th scope="col">Ready</th>
            <th scope="col">Depends on</th>
          </tr>
        </thead>
        <tbody>
          {units.map((u) => (
            <tr key={u.name}>
              <td>
                <code>{u.name}</code>
              </td>
              <td>
                <span class={`badge ${u.status}`}>{u.status}</span>
              </td>
              <td>{u.isReady ? "yes" : "no"}</td>
              <td>
                {u.dependencies.length === 0
                  ? "—"
                  : u.dependencies.map((d) => (
                      <span key={d.dependsOn} class={`dep ${d.isSatisfied ? "ok" : "waiting"}`}>
                        {d.dependsOn} ({d.currentStatus || "unregistered"})
                      </span>
                    ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
