import { useEffect, useRef, useState } from "preact/hooks";
import { auth } from "./auth.js";

/** Asks for the API token the server requires; it is kept in this tab's session storage only. */
export function TokenDialog() {
  const [value, setValue] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div class="overlay">
      <form
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="token-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) auth.set(value.trim());
        }}
      >
        <h2 id="token-title">Token required</h2>
        <p>This agentd requires its API token. It is kept for this tab only.</p>
        <label>
          Token
          <input ref={input} type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        <div class="actions">
          <button type="submit">Use token</button>
        </div>
      </form>
    </div>
  );
}
