import { status } from "./client.js";
import { formatAge, formatBytes, formatTime } from "./format.js";
import { ErrorBox, Loading } from "./states.js";
import { usePoll } from "./use-poll.js";

/** How often the status is fetched again. */
const STATUS_INTERVAL_MS = 2000;

/** Link: the coderd connection, the boundary spool, readiness of each part, the version. */
export function LinkView() {
  const s = usePoll((signal) => status.getStatus({}, { signal }), STATUS_INTERVAL_MS);
  if (s.loading) return <Loading what="status" />;
  const d = s.data;
  return (
    <div class="link">
      <h2>Link</h2>
      {s.error && <ErrorBox message={s.error} />}
      {d && (
        <>
          <dl class="facts">
            <dt>Upstream</dt>
            <dd>
              {d.upstreamKind === "embedded" ? (
                <span class="badge ok">embedded (no coderd configured)</span>
              ) : (
                <>
                  <span class={`badge ${d.coderdConnected ? "ok" : "failed"}`}>
                    {d.coderdConnected ? "connected" : "not connected"}
                  </span>{" "}
                  {d.coderdHost}
                </>
              )}
            </dd>
            <dt>Boundary spool</dt>
            <dd>
              {Number(d.spoolBatches)} batches, {formatBytes(Number(d.spoolBytes))}
              {d.spoolBatches > 0n && `, oldest ${formatAge(d.spoolOldestAgeSeconds)}`}
            </dd>
            <dt>Version</dt>
            <dd>{d.version}</dd>
            <dt>Started</dt>
            <dd>{formatTime(Number(d.startedAtUnixMs))}</dd>
          </dl>
          <h3>Readiness</h3>
          <ul class="checks">
            {d.checks.map((c) => (
              <li key={c.name}>
                <span class={`badge ${c.ready ? "ok" : "failed"}`}>{c.ready ? "ready" : "not ready"}</span> {c.name}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
