import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage, isCancel, processes } from "./client.js";
import { formatBytes } from "./format.js";
import { OutputBuffer } from "./output-buffer.js";
import { useAuth } from "./use-auth.js";

/** Live output of one process through ProcessService.Follow, rendered at most once per frame. */
export function ProcessOutput({ id }: { id: string }) {
  const buffer = useRef(new OutputBuffer());
  const [, setFrame] = useState(0);
  const [exit, setExit] = useState<number | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [following, setFollowing] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const { epoch } = useAuth();

  useEffect(() => {
    const abort = new AbortController();
    buffer.current = new OutputBuffer();
    let scheduled = 0;
    const draw = () => {
      if (scheduled) return;
      scheduled = requestAnimationFrame(() => {
        scheduled = 0;
        setFrame((f) => f + 1);
      });
    };
    (async () => {
      try {
        for await (const msg of processes.follow({ id }, { signal: abort.signal })) {
          buffer.current.skip(Number(msg.droppedBytes));
          if (msg.data.length > 0) buffer.current.push(msg.data);
          if (msg.exited) setExit(msg.exitCode ?? -1);
          draw();
        }
        setFollowing(false);
      } catch (err) {
        if (!isCancel(err) && !abort.signal.aborted) setError(errorMessage(err));
        setFollowing(false);
      }
    })();
    return () => {
      abort.abort();
      cancelAnimationFrame(scheduled);
    };
  }, [id, epoch]);

  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  });

  const b = buffer.current;
  return (
    <div class="output">
      <pre ref={pre} tabIndex={0} aria-label={`Output of ${id}`} aria-live="off">
        {b.head}
        {b.omitted > 0 && <span class="truncation">{`\n… ${formatBytes(b.omitted)} omitted (head/tail) …\n`}</span>}
        {b.tailText()}
      </pre>
      <p class="sub" role="status">
        {error ? (
          <span class="error">{error}</span>
        ) : exit !== undefined ? (
          `Exited with code ${exit}.`
        ) : following ? (
          "Following live output…"
        ) : (
          "Stream ended."
        )}
      </p>
    </div>
  );
}
