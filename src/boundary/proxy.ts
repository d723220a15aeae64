import type { Registry } from "prom-client";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import type { Part } from "../part.js";
import { SocketWatch } from "../socket-watch.js";
import type { BoundaryStatus } from "../../gen/coder/boundarylogproxy/codec/v1/boundary_pb.js";
import type { BoundaryFrameMessage } from "./codec.js";
import { Forwarder, type BoundaryLogsClient, type ForwarderTiming } from "./forwarder.js";
import type { LogBatch } from "./log-batch.js";
import { BoundaryLogRing } from "./log-ring.js";
import { BoundaryMetrics, type SpoolStats } from "./metrics.js";
import { BOUNDARY_SOCKET_FLAG, MAX_CONNECTIONS, SocketServer } from "./socket-server.js";
import { Spool, type Clock } from "./spool.js";

/** How long stop waits for queued batches to reach the upstream before spooling them (within the agent's 5 s). */
export const FLUSH_TIMEOUT_MS = 2_000;

/** Everything the proxy is built from. */
export interface BoundaryProxyOptions extends ForwarderTiming {
  /** Unix socket path boundary dials (`--boundary-socket`). */
  socketPath: string;
  /** Data dir holding the spool; undefined runs without one (Coder's drop-on-overflow behaviour). */
  dataDir: string | undefined;
  registry: Registry;
  log: Logger;
  /** The upstream Agent API client (`agent.upstream.client`). */
  client: BoundaryLogsClient;
  /** Bound on spooled bytes (`--boundary-spool-bytes`). */
  spoolMaxBytes: number;
  maxConnections?: number;
  /** How long a connection must be idle before a newcomer at the cap may take its slot. */
  idleEvictionMs?: number;
  clock?: Clock;
  /** Logs kept in memory for the dashboard (`--boundary-log-ring`); defaults to DEFAULT_LOG_RING_CAPACITY. */
  logRingCapacity?: number;
}

const EMPTY_SPOOL: SpoolStats = { batches: 0, bytes: 0, oldestAgeSeconds: 0 };

/**
 * Coder's boundary log proxy: reads audit-log frames from boundary on a unix
 * socket and forwards each batch to coderd with ReportBoundaryLogs, keeping
 * what the upstream cannot take yet in a durable spool.
 */
export class BoundaryProxy implements Part {
  readonly name = "boundary";
  readonly metrics: BoundaryMetrics;
  /** Recent logs as received, whether or not they reached coderd. */
  readonly logRing: BoundaryLogRing;
  private readonly server: SocketServer;
  private readonly watch: SocketWatch;
  private spool: Spool | undefined;
  private forwarder: Forwarder | undefined;
  private startError: string | undefined;

  constructor(private readonly opts: BoundaryProxyOptions) {
    this.logRing = new BoundaryLogRing(opts.logRingCapacity);
    this.metrics = new BoundaryMetrics(opts.registry, () => this.spool?.stats() ?? EMPTY_SPOOL);
    this.server = new SocketServer(
      opts.socketPath,
      {
        onMessages: (messages, connection) => this.dispatch(messages, connection),
        onConnectionsChanged: (open) => this.metrics.connections.set(open),
        onRefused: () => this.metrics.connectionsRefused.inc(),
        onEvicted: () => this.metrics.connectionsEvicted.inc(),
      },
      opts.log,
      opts.maxConnections ?? MAX_CONNECTIONS,
      opts.idleEvictionMs,
    );
    this.watch = new SocketWatch(opts.socketPath, BOUNDARY_SOCKET_FLAG, () => this.server.relisten(), opts.log);
  }

  /** True while the socket accepts connections and its file is still ours (the `/readyz` check). */
  ready(): boolean {
    return this.server.listening && this.watch.intact;
  }

  /** Batches, bytes and age of the durable spool (all 0 without one). */
  spoolStats(): SpoolStats {
    return this.spool?.stats() ?? EMPTY_SPOOL;
  }

  /** Why the socket is not listening, if it failed to start. */
  get failure(): string | undefined {
    return this.startError;
  }

  /** Opens the spool and the socket. Neither failing stops the agent: each is logged. */
  async start(): Promise<void> {
    this.spool = this.openSpool();
    this.forwarder = new Forwarder({
      ...this.opts,
      metrics: this.metrics,
      spool: this.spool,
      flow: { pause: (c) => this.server.pause(c), resume: (c) => this.server.resume(c) },
    });
    this.forwarder.start();
    try {
      await this.server.listen();
      this.watch.start();
      this.opts.log.info({ socket: this.opts.socketPath }, "boundary log proxy listening");
    } catch (err) {
      this.startError = errorText(err);
      this.opts.log.error(
        { socket: this.opts.socketPath, err: this.startError },
        "boundary log proxy failed to start; boundary logs will not be received",
      );
    }
  }

  /** Closes the socket, flushes the queue to the upstream or the spool, closes the spool. */
  async stop(): Promise<void> {
    this.watch.stop();
    await this.server.close();
    await this.forwarder?.shutdown(FLUSH_TIMEOUT_MS);
    this.forwarder = undefined;
    const spooled = this.spool?.receivedBatches ?? 0;
    this.spool?.close();
    this.spool = undefined;
    if (spooled > 0) this.opts.log.info({ batches: spooled }, "boundary log batches kept in the spool");
  }

  private openSpool(): Spool | undefined {
    if (this.opts.dataDir === undefined) return undefined;
    try {
      const spool = Spool.recoverInDataDir(this.opts.dataDir, this.opts.spoolMaxBytes, this.opts.clock, (file, err) =>
        this.opts.log.error({ file, err: errorText(err) }, "boundary spool was unreadable; moved aside, starting empty"),
      );
      if (spool.batches > 0) this.opts.log.info({ batches: spool.receivedBatches }, "boundary spool holds undelivered batches");
      return spool;
    } catch (err) {
      this.opts.log.error({ err: errorText(err) }, "boundary spool unavailable; overflow and failed forwards are dropped");
      return undefined;
    }
  }

  private dispatch(messages: BoundaryFrameMessage[], connection: number): void {
    const batches: LogBatch[] = [];
    const receivedMs = (this.opts.clock ?? Date.now)();
    for (const message of messages) {
      if (message.kind === "logs") {
        batches.push(message.batch);
        this.logRing.push(message.batch.bytes, message.batch.logCount, receivedMs);
      } else if (message.kind === "status") this.countBoundaryDrops(message.status);
    }
    if (batches.length > 0) this.forwarder?.enqueueAll(batches, connection);
  }

  private countBoundaryDrops(status: BoundaryStatus): void {
    const { droppedChannelFull, droppedBatchFull } = status;
    if (droppedChannelFull > 0n) {
      this.metrics.logsDropped.inc({ reason: "boundary_channel_full" }, Number(droppedChannelFull));
    }
    if (droppedBatchFull > 0n) {
      this.metrics.logsDropped.inc({ reason: "boundary_batch_full" }, Number(droppedBatchFull));
    }
  }
}
