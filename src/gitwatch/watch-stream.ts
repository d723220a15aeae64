import { Code, ConnectError } from "@connectrpc/connect";
import type { GitServerMessage } from "./messages.js";

/** Where one watcher's messages go. */
export type WatchSend = (chatId: string, msg: GitServerMessage) => void;

/** Opens watchers that report to `send`; returns what closes them. */
export type WatchOpener = (send: WatchSend) => () => void;

/**
 * Messages a stream may hold for a reader that does not keep up. Each is one
 * scan's result per chat, so a live reader holds one or two; past the bound
 * the stream ends with `resource_exhausted` and the reader reopens it, which
 * sends the full state again (a change message only carries what changed).
 */
export const MAX_QUEUED_MESSAGES = 256;

/** A message and the chat whose watcher sent it. */
export interface ChatMessage {
  chatId: string;
  msg: GitServerMessage;
}

/** Turns git watchers' callbacks into an async stream for a Connect server stream. */
export async function* watchStream(open: WatchOpener, signal: AbortSignal): AsyncGenerator<ChatMessage> {
  const queue: ChatMessage[] = [];
  let overflowed = false;
  let wake: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  const close = open((chatId, msg) => {
    if (queue.length >= MAX_QUEUED_MESSAGES) overflowed = true;
    else queue.push({ chatId, msg });
    wake?.();
  });
  try {
    while (!signal.aborted) {
      if (overflowed) throw new ConnectError("git watch stream fell behind; reopen it", Code.ResourceExhausted);
      const next = queue.shift();
      if (!next) {
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
        wake = undefined;
        continue;
      }
      yield next;
    }
  } finally {
    close();
  }
}
