import { tasks } from "./client.js";
import { formatTime } from "./format.js";
import { Empty, ErrorBox, Loading } from "./states.js";
import { UnitList } from "./unit-list.js";
import { usePoll } from "./use-poll.js";

/** How often statuses and units are fetched again. */
const TASKS_INTERVAL_MS = 2000;

/** Tasks: what agents reported with app status (newest first) and the sync units. */
export function TasksView() {
  const statuses = usePoll((signal) => tasks.listAppStatuses({}, { signal }), TASKS_INTERVAL_MS);
  const units = usePoll((signal) => tasks.listUnits({}, { signal }), TASKS_INTERVAL_MS);
  const list = statuses.data?.statuses ?? [];
  return (
    <div class="tasks">
      <section aria-labelledby="status-title">
        <h2 id="status-title">App statuses</h2>
        {statuses.error && <ErrorBox message={statuses.error} />}
        {statuses.loading ? (
          <Loading what="app statuses" />
        ) : list.length === 0 ? (
          <Empty>No app status reported yet (agentd app-status, or coder exp mcp task reporting).</Empty>
        ) : (
          <ol class="statuses">
            {list.map((s, i) => (
              <li key={i} class={`status-${s.state}`}>
                <span class={`badge ${s.state}`}>{s.state}</span> <strong>{s.slug}</strong>{" "}
                <span class="sub">{formatTime(Number(s.timeUnixMs))}</span>
                <p>{s.message}</p>
                {s.uri && <Link uri={s.uri} />}
              </li>
            ))}
          </ol>
        )}
      </section>
      <section aria-labelledby="units-title">
        <h2 id="units-title">Sync units</h2>
        {units.error && <ErrorBox message={units.error} />}
        {units.loading ? <Loading what="sync units" /> : <UnitList units={units.data?.units ?? []} />}
      </section>
    </div>
  );
}

/** A reported link: clickable only when it is http(s), shown as text otherwise. */
function Link({ uri }: { uri: string }) {
  const safe = /^https?:\/\//i.test(uri);
  return safe ? (
    <a href={uri} target="_blank" rel="noopener noreferrer">
      {uri}
    </a>
  ) : (
    <code>{uri}</code>
  );
}
