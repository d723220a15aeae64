import { useState } from "preact/hooks";
import { Signal, type ProcessInfo } from "../gen/agentd/process/v1/process_pb.js";
import { errorMessage, processes } from "./client.js";
import { formatTime } from "./format.js";
import { Empty } from "./states.js";

interface Props {
  procs: ProcessInfo[];
  selected: Set<string>;
  followed: string | undefined;
  onSelect: (ids: Set<string>) => void;
  onFollow: (id: string) => void;
  onSignalled: () => void;
}

/** The process list (as the server orders it: running first, newest first), with per-row actions. */
export function ProcessTable({ procs, selected, followed, onSelect, onFollow, onSignalled }: Props) {
  const [error, setError] = useState<string | undefined>(undefined);
  if (procs.length === 0) return <Empty>No processes yet. Start a command above.</Empty>;

  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    onSelect(next);
  };
  const signal = async (id: string, sig: Signal) => {
    try {
      await processes.signal({ id, signal: sig });
      setError(undefined);
    } catch (err) {
      setError(errorMessage(err));
    }
    onSignalled();
  };

  return (
    <>
      {error && (
        <p class="state error" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap">
        <table class="process-table">
          <thead>
            <tr>
              <th scope="col">
                <span class="sr-only">Select</span>
              </th>
              <th scope="col">Command</th>
              <th scope="col">State</th>
              <th scope="col">Started</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {procs.map((p) => (
              <tr key={p.id} class={p.id === followed ? "current" : undefined} data-id={p.id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${p.command}`}
                    disabled={!p.running}
                    checked={selected.has(p.id)}
                    onChange={(e) => toggle(p.id, e.currentTarget.checked)}
                  />
                </td>
                <td class="command">
                  <code>{p.command}</code>
                  <div class="sub">
                    {p.id}
                    {p.workdir && ` · ${p.workdir}`}
                    {p.pty && " · pty"}
                  </div>
                </td>
                <td>
                  {p.running ? (
                    <span class="badge running">running</span>
                  ) : (
                    <span class={`badge ${p.exitCode === 0 ? "ok" : "failed"}`}>exit {p.exitCode ?? "?"}</span>
                  )}
                </td>
                <td>{formatTime(Number(p.startedAtUnix) * 1000)}</td>
                <td class="actions">
                  <button type="button" onClick={() => onFollow(p.id)} aria-pressed={p.id === followed}>
                    Output
                  </button>
                  <button type="button" disabled={!p.running} onClick={() => signal(p.id, Signal.TERMINATE)}>
                    Terminate
                  </button>
                  <button type="button" class="danger" disabled={!p.running} onClick={() => signal(p.id, Signal.KILL)}>
                    Kill
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
