import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "./client.js";
import { useAuth } from "./use-auth.js";

/** What a polled call shows: its last result, its last error, and whether it ever answered. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  /** Fetches again now (after an action changed something). */
  refresh: () => void;
}

/** Calls `fetch` now, every `intervalMs`, and again after a token is entered. */
export function usePoll<T>(fetch: (signal: AbortSignal) => Promise<T>, intervalMs: number): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const { epoch } = useAuth();
  const fetchRef = useRef(fetch);
  fetchRef.current = fetch;
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    const abort = new AbortController();
    let timer: number | undefined;
    const run = async () => {
      try {
        const result = await fetchRef.current(abort.signal);
        if (abort.signal.aborted) return;
        setData(result);
        setError(undefined);
      } catch (err) {
        if (abort.signal.aborted) return;
        setError(errorMessage(err));
      }
      setLoading(false);
      timer = window.setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      abort.abort();
      window.clearTimeout(timer);
    };
  }, [intervalMs, epoch, tick]);

  return { data, error, loading, refresh };
}
