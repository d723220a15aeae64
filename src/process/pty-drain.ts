import { randomBytes } from "node:crypto";
import fs from "node:fs";
import type { IPty } from "node-pty";
import { errnoCode } from "../errors.js";

/**
 * How long the drain may wait for its marker to come back through the
 * master before the socket is destroyed anyway, so a terminal that never
 * passes the marker (output stopped, a foreign line discipline) cannot
 * hold an exit forever. It is far above any real flush delay: node-pty's
 * own deadline is 200 ms.
 */
export const PTY_DRAIN_DEADLINE_MS = 5000;

/**
 * Random bytes in a marker; written as uppercase hex, so 24 printable
 * characters that no output processing (ONLCR, OCRNL, OLCUC, tab
 * expansion) changes, and that raw mode passes as they are.
 */
const MARKER_RANDOM_BYTES = 12;

/** How soon a marker write that met a full terminal buffer is retried. */
const MARKER_RETRY_MS = 10;

/**
 * node-pty's unix terminal, whose `ptsName` (the slave device) the public
 * typings leave out.
 */
type UnixPty = IPty & { readonly ptsName?: string };

/** The master socket's destroy, the only part of it the drain replaces. */
interface DestroyableSocket {
  destroy(...args: unknown[]): unknown;
  readonly destroyed?: boolean;
  readonly readable?: boolean;
  once(event: "end" | "error" | "close", listener: () => void): unknown;
}

/**
 * node-pty's master socket, a private field (`_socket`) of its unix
 * terminal. node-pty destroys it a fixed 200 ms after the child's exit
 * (DESTROY_SOCKET_TIMEOUT_MS in lib/unixTerminal.js), dropping whatever
 * the master has not read by then; a stalled event loop or a slow tty
 * flush loses a process's last output that way (node-pty issues #72,
 * #85, #726). Undefined when the field is not there, as a future node-pty
 * may have it.
 */
function masterSocket(term: IPty): DestroyableSocket | undefined {
  const socket = (term as IPty & { readonly _socket?: unknown })._socket;
  if (typeof socket !== "object" || socket === null) return undefined;
  if (typeof (socket as { destroy?: unknown }).destroy !== "function") return undefined;
  if (typeof (socket as { once?: unknown }).once !== "function") return undefined;
  return socket as DestroyableSocket;
}

/**
 * Makes the end of a pty's output deterministic. agentd holds the slave
 * open (`slave`), so bytes it writes there reach the master after
 * everything the child wrote before it exited. When node-pty is about to
 * destroy the master socket, a per-process random marker is written to
 * the slave instead, and the socket is destroyed only once the marker was
 * read back (or after PTY_DRAIN_DEADLINE_MS). The marker is removed from
 * the output: only the bytes before it are delivered.
 *
 * Returns the function to hand every chunk read from the master; it
 * delivers to `deliver`. Without a held slave or node-pty's socket, it is
 * `deliver` itself and node-pty drains as it always did.
 */
export function drainBeforeDestroy(
  term: IPty,
  slave: number | undefined,
  deliver: (chunk: Buffer) => void,
): (chunk: Buffer) => void {
  const socket = slave === undefined ? undefined : masterSocket(term);
  if (slave === undefined || socket === undefined) return deliver;
  const drain = new PtyDrain(slave, socket, deliver);
  return (chunk) => drain.data(chunk);
}

/**
 * Opens the pty's slave side without making it agentd's controlling
 * terminal; undefined when it cannot be opened (output then drains as
 * node-pty alone manages). The caller closes it once node-pty reported
 * the exit.
 */
export function holdSlave(term: IPty): number | undefined {
  const { ptsName } = term as UnixPty;
  if (!ptsName) return undefined;
  try {
    return fs.openSync(ptsName, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/** One pty's drain: the marker, its write, and the scan of the master's output for it. */
class PtyDrain {
  private readonly marker = Buffer.from(randomBytes(MARKER_RANDOM_BYTES).toString("hex").toUpperCase(), "latin1");
  private readonly realDestroy: (...args: unknown[]) => unknown;
  private state: "reading" | "draining" | "done" = "reading";
  /** The end of the output so far that could be the start of the marker, held back until that is known. */
  private carry: Buffer = Buffer.alloc(0);
  private written = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly slave: number,
    private readonly socket: DestroyableSocket,
    private readonly deliver: (chunk: Buffer) => void,
  ) {
    this.realDestroy = socket.destroy.bind(socket);
    socket.destroy = (...args: unknown[]) => this.destroy(args);
  }

  /** Takes a chunk read from the master. */
  data(chunk: Buffer): void {
    if (this.state === "reading") return this.deliver(chunk);
    if (this.state === "done") return;
    const seen = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const at = seen.indexOf(this.marker);
    if (at >= 0) {
      this.carry = Buffer.alloc(0);
      if (at > 0) this.deliver(seen.subarray(0, at));
      this.finish();
      return;
    }
    const held = markerPrefixAtEnd(seen, this.marker);
    if (seen.length > held) this.deliver(seen.subarray(0, seen.length - held));
    this.carry = Buffer.from(seen.subarray(seen.length - held));
  }

  /**
   * The socket's destroy. The first plain call while the socket still
   * reads (node-pty's exit path) starts the drain; any other call, or one
   * after the drain, destroys at once.
   */
  private destroy(args: unknown[]): unknown {
    if (this.state === "draining") return this.socket;
    if (this.state === "done" || args.length > 0 || this.socket.destroyed || this.socket.readable === false) {
      this.state = "done";
      return this.realDestroy(...args);
    }
    this.state = "draining";
    this.deadline = setTimeout(() => this.finish(), PTY_DRAIN_DEADLINE_MS);
    this.deadline.unref();
    this.socket.once("end", () => this.finish());
    this.socket.once("error", () => this.finish());
    this.socket.once("close", () => this.finish());
    this.writeMarker();
    return this.socket;
  }

  /** Writes what is left of the marker to the slave; a full terminal buffer is retried shortly. */
  private writeMarker(): void {
    this.retryTimer = undefined;
    if (this.state !== "draining") return;
    try {
      this.written += fs.writeSync(this.slave, this.marker, this.written);
    } catch (err) {
      if (errnoCode(err) !== "EAGAIN") return this.finish();
    }
    if (this.written < this.marker.length) {
      this.retryTimer = setTimeout(() => this.writeMarker(), MARKER_RETRY_MS);
      this.retryTimer.unref();
    }
  }

  /** Ends the drain: delivers what was held back and destroys the socket for real. */
  private finish(): void {
    if (this.state === "done") return;
    this.state = "done";
    clearTimeout(this.deadline);
    clearTimeout(this.retryTimer);
    if (this.carry.length > 0) this.deliver(this.carry);
    this.carry = Buffer.alloc(0);
    this.realDestroy();
  }
}

/** The length of the longest end of `bytes` (shorter than `marker`) that is a start of `marker`. */
function markerPrefixAtEnd(bytes: Buffer, marker: Buffer): number {
  for (let n = Math.min(marker.length - 1, bytes.length); n > 0; n--) {
    if (bytes.subarray(bytes.length - n).equals(marker.subarray(0, n))) return n;
  }
  return 0;
}
