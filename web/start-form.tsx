import { useState } from "preact/hooks";
import { errorMessage, processes } from "./client.js";

/** Starts a command (workdir, pty) through ProcessService.Start. */
export function StartForm({ onStarted }: { onStarted: (id: string) => void }) {
  const [command, setCommand] = useState("");
  const [workdir, setWorkdir] = useState("");
  const [pty, setPty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!command.trim()) return;
    setBusy(true);
    setError(undefined);
    try {
      const res = await processes.start({ command, workdir: workdir.trim(), pty, background: true });
      setCommand("");
      onStarted(res.id);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="start-form" onSubmit={submit}>
      <label class="grow">
        Command
        <input name="command" value={command} placeholder="npm test" onInput={(e) => setCommand(e.currentTarget.value)} required />
      </label>
      <label>
        Working directory
        <input name="workdir" value={workdir} placeholder="default" onInput={(e) => setWorkdir(e.currentTarget.value)} />
      </label>
      <label class="check">
        <input type="checkbox" name="pty" checked={pty} onChange={(e) => setPty(e.currentTarget.checked)} />
        pty
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Starting…" : "Start"}
      </button>
      {error && (
        <p class="state error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
