import { randomUUID } from "node:crypto";
import net from "node:net";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { BoundaryLogSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { encodeLogsFrame, encodeStatusFrame } from "./codec.js";

/** Logs waiting between the caller and the batcher (socket_auditor.go channel capacity). */
export const AUDIT_CHANNEL_CAPACITY = 20;
/** Logs per flush (socket_auditor.go batch size). */
export const AUDIT_BATCH_SIZE = 10;
/** A batch is flushed this long after its first log at the latest (socket_auditor.go). */
export const AUDIT_FLUSH_INTERVAL_MS = 5_000;

/** One audited request, as boundary's proxy reports it. */
export interface AuditedRequest {
  allowed: boolean;
  method: string;
  url: string;
  /** Only reported for allowed requests (boundary is deny-by-default). */
  matchedRule?: string;
  /** Defaults to now. */
  timeMs?: number;
}

/** How an AuditClient is set up; all but the socket path have boundary's defaults. */
export interface AuditClientOptions {
  socketPath: string;
  /** Defaults to a fresh UUID, as boundary generates one at start-up. */
  sessionId?: string;
  /** Injectable so tests need not wait 5 s. */
  flushIntervalMs?: number;
  batchSize?: number;
  channelCapacity?: number;
}

type Log = MessageInitShape<typeof BoundaryLogSchema>;

/**
 * A client that writes to the log proxy socket the way coder/boundary's
 * socket auditor does: TagV2 frames of up to 10 logs with the session id,
 * flushed when full, 5 s after a batch starts, or at close; drops counted
 * and reported in a status frame after the next successful flush; a failed
 * write closes the connection and keeps the batch, and the next flush dials
 * again.
 */
export class AuditClient {
  readonly sessionId: string;
  private readonly channel: Log[] = [];
  private batch: Log[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private conn: net.Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerFired = false;
  private closing = false;
  private wake: (() => void) | undefined;
  private sequence = 0;
  private droppedChannelFull = 0;
  private droppedBatchFull = 0;
  private readonly done: Promise<void>;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly channelCapacity: number;
  /** Log frames written successfully. */
  flushes = 0;

  constructor(private readonly opts: AuditClientOptions) {
    this.sessionId = opts.sessionId ?? randomUUID();
    this.flushIntervalMs = opts.flushIntervalMs ?? AUDIT_FLUSH_INTERVAL_MS;
    this.batchSize = opts.batchSize ?? AUDIT_BATCH_SIZE;
    this.channelCapacity = opts.channelCapacity ?? AUDIT_CHANNEL_CAPACITY;
    this.done = this.loop();
  }

  /** Drops not yet reported to the proxy. */
  get pendingDrops(): { channelFull: number; batchFull: number } {
    return { channelFull: this.droppedChannelFull, batchFull: this.droppedBatchFull };
  }

  /** Queues one audited request without blocking; dropped (and counted) when the channel is full. */
  audit(req: AuditedRequest): void {
    if (this.closing) return;
    if (this.channel.length >= this.channelCapacity) {
      this.droppedChannelFull++;
      return;
    }
    this.channel.push({
      allowed: req.allowed,
      time: timestampFromMs(req.timeMs ?? Date.now()),
      resource: {
        case: "httpRequest",
        value: { method: req.method, url: req.url, matchedRule: req.allowed ? (req.matchedRule ?? "") : "" },
      },
      sequenceNumber: this.sequence++,
    });
    this.wake?.();
  }

  /** Resolves once the channel has room, for callers that want to pace themselves instead of dropping. */
  room(): Promise<void> {
    if (this.channel.length < this.channelCapacity) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Drains the channel, flushes the last batch (and drop counts), and closes the connection. */
  async close(): Promise<void> {
    this.closing = true;
    this.wake?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    while (true) {
      const log = this.channel.shift();
      if (log) {
        this.roomWaiters.splice(0).forEach((w) => w());
        await this.accept(log);
      } else if (this.timerFired) {
        this.timerFired = false;
        await this.flush();
      } else if (this.closing) {
        break;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    }
    clearTimeout(this.timer);
    await this.flush();
    this.conn?.end();
    this.conn = undefined;
  }

  private async accept(log: Log): Promise<void> {
    if (this.batch.length >= this.batchSize) {
      await this.flush();
      if (this.batch.length >= this.batchSize) {
        this.droppedBatchFull++;
        return;
      }
    }
    this.batch.push(log);
    if (this.batch.length === 1) this.arm();
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timerFired = true;
      this.wake?.();
    }, this.flushIntervalMs);
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    try {
      const frame = encodeLogsFrame({ logs: this.batch, sessionId: this.sessionId });
      await this.write(frame);
    } catch {
      this.conn?.destroy();
      this.conn = undefined;
      if (!this.closing) this.arm();
      return;
    }
    clearTimeout(this.timer);
    this.batch = [];
    this.flushes++;
    await this.reportDrops();
  }

  private async reportDrops(): Promise<void> {
    const channelFull = this.droppedChannelFull;
    const batchFull = this.droppedBatchFull;
    if (channelFull === 0 && batchFull === 0) return;
    this.droppedChannelFull = 0;
    this.droppedBatchFull = 0;
    try {
      await this.write(encodeStatusFrame({ droppedChannelFull: BigInt(channelFull), droppedBatchFull: BigInt(batchFull) }));
    } catch {
      this.droppedChannelFull += channelFull;
      this.droppedBatchFull += batchFull;
      this.conn?.destroy();
      this.conn = undefined;
    }
  }

  private async write(frame: Buffer): Promise<void> {
    const conn = this.conn ?? (await this.dial());
    await new Promise<void>((resolve, reject) => conn.write(frame, (err) => (err ? reject(err) : resolve())));
  }

  private dial(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const conn = net.createConnection(this.opts.socketPath);
      conn.once("connect", () => {
        conn.off("error", reject);
        conn.on("error", () => {
          if (this.conn === conn) this.conn = undefined;
        });
        conn.on("close", () => {
          if (this.conn === conn) this.conn = undefined;
        });
        this.conn = conn;
        resolve(conn);
      });
      conn.once("error", reject);
    });
  }
}
