import { useEffect, useRef, useState } from "preact/hooks";
import { Signal, type PreviewKillResponse } from "../gen/agentd/process/v1/process_pb.js";
import { errorMessage, processes } from "./client.js";
import { formatTime } from "./format.js";

/**
 * Kill several processes: the server previews the exact list and issues a
 * single-use token valid 60 s; confirming sends that token back.
 */
export function KillDialog({ ids, onClose }: { ids: string[]; onClose: () => void }) {
  const [preview, setPreview] = useState<PreviewKillResponse | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [result, setResult] = useState<string | undefined>(undefined);
  const cancel = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    processes.previewKill({ ids, signal: Signal.KILL }).then(setPreview, (err: unknown) => setError(errorMessage(err)));
  }, [ids]);
  useEffect(() => cancel.current?.focus(), []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  const confirm = async () => {
    if (!preview) return;
    try {
      const res = await processes.confirmKill({
        token: preview.token,
        ids: preview.processes.map((p) => p.id),
        signal: Signal.KILL,
      });
      const killed = res.results.filter((r) => r.signalled).length;
      setResult(`Killed ${killed} of ${res.results.length}.`);
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <div class="overlay">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="kill-title">
        <h2 id="kill-title">Kill processes</h2>
        {!preview && !error && <p role="status">Asking the server which processes this kills…</p>}
        {preview && (
          <>
            <p>These processes will be sent SIGKILL:</p>
            <ul class="kill-list">
              {preview.processes.map((p) => (
                <li key={p.id}>
                  <code>{p.command}</code> <span class="sub">{p.id}</span>
                </li>
              ))}
            </ul>
            <p class="sub">This confirmation expires at {formatTime(Number(preview.expiresAtUnixMs))}.</p>
          </>
        )}
        {error && (
          <p class="state error" role="alert">
            {error}
          </p>
        )}
        {result && <p role="status">{result}</p>}
        <div class="actions">
          <button type="button" ref={cancel} onClick={onClose}>
            {result ? "Close" : "Cancel"}
          </button>
          {!result && (
            <button type="button" class="danger" disabled={!preview || !!error} onClick={confirm}>
              Confirm kill
            </button>
          )}
        </div>
      </div>
    </div>
  );
}
