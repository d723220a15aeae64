import { useEffect, useState } from "preact/hooks";
import type { RepoChanges } from "../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { errorMessage, gitwatch, isCancel } from "./client.js";
import { RepoCard } from "./repo-card.js";
import { Empty, ErrorBox, Loading } from "./states.js";
import { useAuth } from "./use-auth.js";
import { usePoll } from "./use-poll.js";

/** How often the list of chats is fetched again. */
const CHATS_INTERVAL_MS = 5000;
/** Wait before reopening a watch stream that failed. */
const RETRY_MS = 2000;

/** Changes: the live git watch of one chat, or of every chat agentd tracks paths for. */
export function ChangesView() {
  const chats = usePoll((signal) => gitwatch.listChats({}, { signal }), CHATS_INTERVAL_MS);
  const [chatId, setChatId] = useState("");
  const [repos, setRepos] = useState<Map<string, RepoChanges> | undefined>(undefined);
  const [scannedAt, setScannedAt] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const { epoch } = useAuth();
  const chatKey = chatId || (chats.data?.chatIds ?? []).join(",");

  useEffect(() => {
    const abort = new AbortController();
    let retry: number | undefined;
    const open = async () => {
      const known = new Map<string, RepoChanges>();
      setRepos(undefined);
      try {
        for await (const msg of gitwatch.watch({ chatId }, { signal: abort.signal })) {
          for (const r of msg.repositories) {
            if (r.removed) known.delete(r.repoRoot);
            else known.set(r.repoRoot, r);
          }
          setRepos(new Map(known));
          setScannedAt(msg.scannedAt);
          setError(msg.error || undefined);
        }
        setRepos(new Map(known));
      } catch (err) {
        if (abort.signal.aborted || isCancel(err)) return;
        setError(errorMessage(err));
        retry = window.setTimeout(open, RETRY_MS);
      }
    };
    void open();
    return () => {
      abort.abort();
      window.clearTimeout(retry);
    };
  }, [chatKey, epoch]);

  const chatIds = chats.data?.chatIds ?? [];
  return (
    <div class="changes">
      <div class="section-head">
        <h2>Changes</h2>
        <label>
          Chat{" "}
          <select value={chatId} onChange={(e) => setChatId(e.currentTarget.value)}>
            <option value="">Every chat ({chatIds.length})</option>
            {chatIds.map((id) => (
              <option key={id} value={id}>
                {id}
              </option>
            ))}
          </select>
        </label>
        {scannedAt && <span class="sub">last scan {new Date(scannedAt).toLocaleTimeString([], { hour12: false })}</span>}
      </div>
      {error && <ErrorBox message={error} />}
      {chats.error && <ErrorBox message={chats.error} />}
      {chatIds.length === 0 && !chats.loading ? (
        <Empty>No repositories tracked yet. Paths appear when a chat runs a process in a repository or edits files.</Empty>
      ) : repos === undefined ? (
        <Loading what="repositories" />
      ) : repos.size === 0 ? (
        <Empty>Waiting for the first scan…</Empty>
      ) : (
        [...repos.values()].map((r) => <RepoCard key={r.repoRoot} repo={r} />)
      )}
    </div>
  );
}
