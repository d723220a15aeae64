/** Bytes a follower may have queued before new output is dropped for it. */
export const FOLLOW_QUEUE_MAX_BYTES = 1 << 20;
/**
 * What one queued chunk costs beyond its own bytes (the item and its Buffer
 * object, measured on Node 20), charged against FOLLOW_QUEUE_MAX_BYTES so
 * that output arriving in tiny reads stays bounded too.
 */
export const FOLLOW_ITEM_OVERHEAD_BYTES = 160;

/** One delivery to a follower. */
export type FollowItem =
  | {
      kind: "data";
      data: Buffer;
      /** Output bytes skipped right before `data` because the follower fell behind. */
      droppedBytes: number;
    }
  | { kind: "exit"; exitCode: number; droppedBytes: number };

/**
 * The bounded queue between a process and one follower. Output is copied in
 * as it arrives; while more than `maxBytes` are waiting (each chunk charged
 * `itemOverhead` on top of its size), new output is not queued
 * but counted, and the next delivery reports how many bytes were
 * skipped (a gap). A slow follower therefore costs at most `maxBytes` of
 * memory and never slows the process or other readers.
 */
export class FollowQueue {
  private readonly items: FollowItem[] = [];
  private queuedBytes = 0;
  private dropped = 0;
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly onDrop: (bytes: number) => void = () => {},
    private readonly maxBytes = FOLLOW_QUEUE_MAX_BYTES,
    private readonly itemOverhead = FOLLOW_ITEM_OVERHEAD_BYTES,
  ) {}

  /** Queues a copy of `chunk`, or counts it as dropped when the queue is full. */
  push(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    const cost = chunk.length + this.itemOverhead;
    if (this.queuedBytes + cost > this.maxBytes) {
      this.dropped += chunk.length;
      this.onDrop(chunk.length);
      return;
    }
    this.items.push({ kind: "data", data: Buffer.from(chunk), droppedBytes: this.takeDropped() });
    this.queuedBytes += cost;
    this.notify();
  }

  /** Reports `bytes` skipped before the next delivery (output the follower never had). */
  skip(bytes: number): void {
    this.dropped += bytes;
  }

  /** Queues the final item; nothing is queued after it. */
  end(exitCode: number): void {
    if (this.ended) return;
    this.ended = true;
    this.items.push({ kind: "exit", exitCode, droppedBytes: this.takeDropped() });
    this.notify();
  }

  /** Yields queued items until the exit item, or until `signal` aborts. */
  async *drain(signal?: AbortSignal): AsyncGenerator<FollowItem> {
    const onAbort = () => this.notify();
    signal?.addEventListener("abort", onAbort);
    try {
      for (;;) {
        const item = this.items.shift();
        if (item) {
          if (item.kind === "data") this.queuedBytes -= item.data.length + this.itemOverhead;
          yield item;
          if (item.kind === "exit") return;
          continue;
        }
        if (signal?.aborted) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private takeDropped(): number {
    const d = this.dropped;
    this.dropped = 0;
    return d;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
