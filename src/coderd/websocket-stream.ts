import { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/** Coder's agent raises its WebSocket read limit to 4 MiB (codersdk/agentsdk); so do both ends here. */
export const WS_MAX_PAYLOAD = 4 << 20;
/**
 * Largest binary message sent: one byte under the 32 KiB default read limit
 * of Go's websocket library (nhooyr/coder websocket), which coder releases
 * kept on the agent RPC endpoint; some releases of that library also fail a
 * message of exactly the limit. Larger writes (a 64 KiB yamux frame) span
 * several messages.
 */
export const WS_MAX_MESSAGE = (32 << 10) - 1;
/** Options of every message sent. */
const BINARY = { binary: true } as const;
/** Close code for a normal end of the byte stream (RFC 6455). */
const CLOSE_NORMAL = 1000;
/** Close code for a text message where only binary is allowed (RFC 6455 "unsupported data"). */
const CLOSE_UNSUPPORTED = 1003;

/**
 * A WebSocket as a plain byte stream: binary messages in, binary messages of
 * at most WS_MAX_MESSAGE bytes out. Message boundaries carry no meaning, so
 * a yamux frame may span messages and several may share one. Reading pauses
 * the socket when the consumer falls behind.
 */
export function websocketStream(ws: WebSocket): Duplex {
  const stream = new Duplex({
    allowHalfOpen: false,
    read() {
      if (ws.isPaused) ws.resume();
    },
    writev(chunks, cb) {
      sendAll(
        chunks.map((c) => c.chunk as Buffer),
        cb,
      );
    },
    write(chunk: Buffer, _encoding, cb) {
      // The usual write (a turn's yamux frames) is one message as it is: no packing, no copy.
      if (chunk.length <= WS_MAX_MESSAGE && chunk.length > 0 && ws.readyState === ws.OPEN) ws.send(chunk, BINARY, cb);
      else sendAll([chunk], cb);
    },
    final(cb) {
      if (ws.readyState === ws.OPEN) ws.close(CLOSE_NORMAL);
      cb();
    },
    destroy(err, cb) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
        if (err) ws.terminate();
        else ws.close(CLOSE_NORMAL);
      }
      cb(err);
    },
  });

  /** Packs chunks into messages of at most WS_MAX_MESSAGE bytes; `cb` runs once the last is handed to the socket. */
  function sendAll(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    if (ws.readyState !== ws.OPEN) return cb(new Error("websocket is not open"));
    const messages: Buffer[] = [];
    let parts: Buffer[] = [];
    let size = 0;
    const flush = () => {
      if (size === 0) return;
      messages.push(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
      parts = [];
      size = 0;
    };
    for (let chunk of chunks) {
      while (chunk.length > 0) {
        const room = WS_MAX_MESSAGE - size;
        const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
        parts.push(piece);
        size += piece.length;
        chunk = chunk.subarray(piece.length);
        if (size === WS_MAX_MESSAGE) flush();
      }
    }
    flush();
    messages.forEach((m, i) => ws.send(m, BINARY, i === messages.length - 1 ? (err) => cb(err) : undefined));
    if (messages.length === 0) cb();
  }

  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(CLOSE_UNSUPPORTED, "binary messages only");
      stream.destroy(new Error("websocket: text message on a binary stream"));
      return;
    }
    if (!stream.push(data)) ws.pause();
  });
  ws.on("close", () => {
    stream.push(null);
    stream.destroy();
  });
  ws.on("error", (err) => stream.destroy(err));
  return stream;
}
