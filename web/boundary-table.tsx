import type { Row } from "./boundary-store.js";

/** The newest decisions that pass the filters; only these rows are in the DOM. */
export function BoundaryTable({ rows, matching, kept }: { rows: Row[]; matching: number; kept: number }) {
  return (
    <div class="feed">
      <p class="sub">
        Showing the newest {rows.length} of {matching} matching ({kept} kept).
      </p>
      <div class="table-wrap">
        <table class="boundary-table">
          <colgroup>
            <col class="c-time" />
            <col class="c-decision" />
            <col class="c-method" />
            <col />
            <col class="c-rule" />
            <col class="c-process" />
          </colgroup>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Decision</th>
              <th scope="col">Method</th>
              <th scope="col">URL</th>
              <th scope="col">Rule</th>
              <th scope="col">Process</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.seq}>
                <td>{r.time}</td>
                <td>
                  <span class={`badge ${r.allowed ? "ok" : "failed"}`}>{r.allowed ? "allowed" : "denied"}</span>
                </td>
                <td>{r.method}</td>
                <td class="url" title={r.url}>
                  {r.url}
                </td>
                <td class="rule" title={r.rule}>
                  {r.rule || "—"}
                </td>
                <td>{r.process || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
