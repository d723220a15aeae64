import type { GitServerMessage } from "./messages.js";

/** Where one watcher's messages go; the watcher waits for the promise before its next scan. */
export type WatchSend = (chatId: string, msg: GitServerMessage) => Promise<void>;

/** Opens watchers that report to `send`; returns what closes them. */
export type WatchOpener = (send: WatchSend) => () => void;

/** A message and the chat whose watcher sent it. */
export interface ChatMessage {
  chatId: string;
  msg: GitServerMessage;
}

/**
 * Turns git watchers' callbacks into an async stream for a Connect server
 * stream. Each watcher waits until its message is taken, as it waits for a
 * WebSocket write, so at most one message per watcher is ever queued.
 */
export async function* watchStream(open: WatchOpener, signal: AbortSignal): AsyncGenerator<ChatMessage> {
  const queue: { item: ChatMessage; taken: () => void }[] = [];
  let wake: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  const close = open(
    (chatId, msg) =>
      new Promise<void>((taken) => {
        queue.push({ item: { chatId, msg }, taken });
        wake?.();
      }),
  );
  try {
    while (!signal.aborted) {
      const next = queue.shift();
      if (!next) {
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
        wake = undefined;
        continue;
      }
      yield next.item;
      next.taken();
    }
  } finally {
    close();
    for (const pending of queue) pending.taken();
  }
}
