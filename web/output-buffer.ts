/** Output kept from the start of a follow (the head), as the server keeps its head. */
export const HEAD_BYTES = 64 * 1024;
/** Output kept from the end (the tail); older tail output is dropped and counted. */
export const TAIL_BYTES = 256 * 1024;

interface Chunk {
  text: string;
  bytes: number;
}

/**
 * Followed output, bounded like the server's head/tail buffer: the first
 * HEAD_BYTES, a marker counting what was omitted (by the server's capture,
 * by a slow follow, or here), and the last TAIL_BYTES.
 */
export class OutputBuffer {
  head = "";
  private headBytes = 0;
  private headDone = false;
  private tail: Chunk[] = [];
  private tailBytes = 0;
  omitted = 0;
  private readonly decoder = new TextDecoder();

  /** Adds bytes the server reported as skipped right before the next data. */
  skip(bytes: number): void {
    if (bytes <= 0) return;
    this.omitted += bytes;
    this.headDone = true;
  }

  /** Adds received output. */
  push(data: Uint8Array): void {
    const text = this.decoder.decode(data, { stream: true });
    if (!this.headDone && this.headBytes + data.length <= HEAD_BYTES) {
      this.head += text;
      this.headBytes += data.length;
      return;
    }
    this.headDone = true;
    this.tail.push({ text, bytes: data.length });
    this.tailBytes += data.length;
    while (this.tailBytes > TAIL_BYTES && this.tail.length > 1) {
      const dropped = this.tail.shift()!;
      this.tailBytes -= dropped.bytes;
      this.omitted += dropped.bytes;
    }
  }

  /** The tail as one string. */
  tailText(): string {
    return this.tail.map((c) => c.text).join("");
  }
}
