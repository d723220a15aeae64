import { useEffect, useRef, useState } from "preact/hooks";
import { boundary, errorMessage, isCancel } from "./client.js";
import { BoundaryTable } from "./boundary-table.js";
import { BoundaryStore, MAX_ROWS_KEPT, type Row } from "./boundary-store.js";
import { HostCounts } from "./host-counts.js";
import { Empty, ErrorBox } from "./states.js";
import { useAuth } from "./use-auth.js";

/** Rows rendered at most: the feed shows the newest; counts cover every row. */
export const MAX_ROWS_RENDERED = 50;
/**
 * Shortest time between two renders of the feed: four a second is as fast as
 * a person reads, and leaves the main thread free for input under heavy load.
 */
export const RENDER_INTERVAL_MS = 250;
/** Hosts listed in the counts table. */
const HOSTS_SHOWN = 25;
/** Wait before reopening a log stream that failed. */
const RETRY_MS = 2000;

type Decision = "all" | "allowed" | "denied";

/**
 * Boundary: the live feed of audit decisions from agentd's ring. Messages
 * arrive coalesced (several hundred logs each under load); the view renders
 * at most every RENDER_INTERVAL_MS, in an animation frame, MAX_ROWS_RENDERED rows.
 */
export function BoundaryView() {
  const store = useRef(new BoundaryStore());
  const [, setFrame] = useState(0);
  const [connected, setConnected] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [host, setHost] = useState("");
  const [decision, setDecision] = useState<Decision>("all");
  const [paused, setPaused] = useState(false);
  const { epoch } = useAuth();
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    const abort = new AbortController();
    let frame = 0;
    let timer: number | undefined;
    let lastDraw = 0;
    let retry: number | undefined;
    const draw = () => {
      if (frame || timer !== undefined || pausedRef.current) return;
      const wait = Math.max(0, lastDraw + RENDER_INTERVAL_MS - performance.now());
      timer = window.setTimeout(() => {
        timer = undefined;
        frame = requestAnimationFrame(() => {
          frame = 0;
          lastDraw = performance.now();
          setFrame((f) => f + 1);
        });
      }, wait);
    };
    const open = async () => {
      store.current = new BoundaryStore();
      try {
        for await (const msg of boundary.streamLogs({ backlog: MAX_ROWS_KEPT }, { signal: abort.signal })) {
          setConnected(true);
          setError(undefined);
          store.current.skipped += Number(msg.skipped);
          store.current.add(msg.logs);
          draw();
        }
      } catch (err) {
        if (abort.signal.aborted || isCancel(err)) return;
        setConnected(false);
        setError(errorMessage(err));
        retry = window.setTimeout(open, RETRY_MS);
      }
    };
    void open();
    return () => {
      abort.abort();
      cancelAnimationFrame(frame);
      window.clearTimeout(timer);
      window.clearTimeout(retry);
    };
  }, [epoch]);

  const s = store.current;
  const needle = host.trim().toLowerCase();
  const keep = (r: Row) =>
    (decision === "all" || r.allowed === (decision === "allowed")) && (needle === "" || r.host.toLowerCase().includes(needle));
  const { rows, matching } = s.newest(keep, MAX_ROWS_RENDERED);

  return (
    <div class="boundary">
      <div class="section-head">
        <h2>Boundary decisions</h2>
        <div class="totals" role="status" aria-live="off">
          <span class="badge ok" data-count="allowed">
            {s.allowed} allowed
          </span>
          <span class="badge failed" data-count="denied">
            {s.denied} denied
          </span>
          {s.skipped > 0 && <span class="sub">{s.skipped} missed (ring overwritten)</span>}
        </div>
      </div>
      <div class="filters">
        <label>
          Host
          <input type="search" value={host} placeholder="filter by host" onInput={(e) => setHost(e.currentTarget.value)} />
        </label>
        <label>
          Decision
          <select value={decision} onChange={(e) => setDecision(e.currentTarget.value as Decision)}>
            <option value="all">all</option>
            <option value="allowed">allowed</option>
            <option value="denied">denied</option>
          </select>
        </label>
        <button type="button" aria-pressed={paused} onClick={() => setPaused((p) => !p)}>
          {paused ? "Resume" : "Pause"}
        </button>
      </div>
      {error && <ErrorBox message={error} />}
      {connected && s.size === 0 ? (
        <Empty>No boundary decisions yet. They appear when boundary, run with this agent's log socket, audits a request.</Empty>
      ) : (
        <div class="boundary-body">
          <HostCounts hosts={s.topHosts(HOSTS_SHOWN)} total={s.hosts.size} onPick={setHost} />
          <BoundaryTable rows={rows} matching={matching} kept={s.size} />
        </div>
      )}
    </div>
  );
}
