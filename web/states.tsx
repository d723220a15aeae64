import type { ComponentChildren } from "preact";

/** Shown while the first answer is awaited. */
export function Loading({ what }: { what: string }) {
  return (
    <p class="state" role="status">
      Loading {what}…
    </p>
  );
}

/** Shown when a call failed; the view keeps retrying. */
export function ErrorBox({ message }: { message: string }) {
  return (
    <p class="state error" role="alert">
      {message}
    </p>
  );
}

/** Shown when there is nothing yet, with a hint of how something appears. */
export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="state empty">{children}</p>;
}
