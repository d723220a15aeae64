import { useState } from "preact/hooks";
import type { ProcessInfo } from "../gen/agentd/process/v1/process_pb.js";
import { processes } from "./client.js";
import { KillDialog } from "./kill-dialog.js";
import { ProcessOutput } from "./process-output.js";
import { ProcessTable } from "./process-table.js";
import { StartForm } from "./start-form.js";
import { ErrorBox, Loading } from "./states.js";
import { usePoll } from "./use-poll.js";

/** How often the process list is fetched again. */
const LIST_INTERVAL_MS = 1000;

/** Processes: start one, list them (running first), follow one's output, signal or kill several. */
export function ProcessesView() {
  const list = usePoll((signal) => processes.list({}, { signal }), LIST_INTERVAL_MS);
  const [followed, setFollowed] = useState<string | undefined>(undefined);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [killing, setKilling] = useState<string[] | undefined>(undefined);
  const procs: ProcessInfo[] = list.data?.processes ?? [];
  const running = new Set(procs.filter((p) => p.running).map((p) => p.id));
  const killable = [...selected].filter((id) => running.has(id));

  return (
    <div class="processes">
      <section aria-labelledby="start-title">
        <h2 id="start-title">Start a command</h2>
        <StartForm
          onStarted={(id) => {
            setFollowed(id);
            list.refresh();
          }}
        />
      </section>
      <section aria-labelledby="list-title">
        <div class="section-head">
          <h2 id="list-title">Processes</h2>
          <button type="button" class="danger" disabled={killable.length === 0} onClick={() => setKilling(killable)}>
            Kill selected ({killable.length})
          </button>
        </div>
        {list.error && <ErrorBox message={list.error} />}
        {list.loading ? (
          <Loading what="processes" />
        ) : (
          <ProcessTable
            procs={procs}
            selected={selected}
            followed={followed}
            onSelect={setSelected}
            onFollow={setFollowed}
            onSignalled={list.refresh}
          />
        )}
      </section>
      <section aria-labelledby="output-title" class="output-section">
        <h2 id="output-title">Output {followed && <code>{followed}</code>}</h2>
        {followed ? <ProcessOutput key={followed} id={followed} /> : <p class="state empty">Select a process to follow its output.</p>}
      </section>
      {killing && (
        <KillDialog
          ids={killing}
          onClose={() => {
            setKilling(undefined);
            setSelected(new Set());
            list.refresh();
          }}
        />
      )}
    </div>
  );
}
