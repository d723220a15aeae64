import { setMaxListeners } from "node:events";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import type { AgentClient } from "../coderd/upstream.js";
import { connectionLost } from "../drpc/transport.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import { CallBuilder, cutCall, firstCall } from "./coalesce.js";
import { batchesIn, batchRequest, decodeLogs, logBatchOf, type LogBatch } from "./log-batch.js";
import type { BoundaryMetrics } from "./metrics.js";
import { UNKNOWN_LANE, type Spool, type SpooledBatch } from "./spool.js";

/**
 * Requests held in memory for lanes that cannot be paused (no flow control,
 * or UNKNOWN_LANE) before the rest overflow into the spool (proxy.go
 * logBufferSize).
 */
export const LOG_BUFFER_SIZE = 100;
/**
 * Bytes queued on one connection before its socket is no longer read
 * (backpressure): four full calls, so the next calls are full while one is
 * in flight (agentd's own bound).
 */
export const LANE_PAUSE_BYTES = 4 * (32 << 10);
/** What the objects of one queued call take besides its bytes, about (measured on Node 20: ~420 bytes). */
const CALL_OBJECT_BYTES = 512;
/** A paused connection is read again once its queue is below this (half the pause mark, agentd's own). */
export const LANE_RESUME_BYTES = LANE_PAUSE_BYTES / 2;
/** A forward that takes longer than this counts as failed and is retried from the spool (agentd's own bound). */
export const FORWARD_TIMEOUT_MS = 10_000;
/** First wait before re-sending a spooled batch after a failure; doubles per failure (agentd's own bound). */
export const RETRY_INITIAL_MS = 100;
/** Longest wait between two attempts while the upstream stays away (agentd's own bound). */
export const RETRY_MAX_MS = 5_000;
/**
 * Failures in a row, the same way, of one spooled batch sent over a live
 * link before it is sent in halves (issue: a coderd closing the link on a
 * message it will not read must not make the link flap forever).
 */
export const SPLIT_AFTER_FAILURES = 3;
/** Spooled batches looked at from the head per drain round (agentd's own bound). */
const SPOOL_WINDOW_ROWS = 1024;
/** Batches of one lane sent per drain round, so one busy connection does not fill the round. */
const SPOOL_PER_LANE = 16;
/**
 * Connections whose batches may be in flight to the upstream at once, one
 * call per connection (agentd's own bound: one per boundary client of the
 * throughput goal, few enough not to crowd coderd's other streams).
 */
export const MAX_LANES_IN_FLIGHT = 8;
/**
 * Codes that mean the upstream will never take this batch (a coderd older
 * than Agent API 2.7, or a request it rejects). Retrying would block every
 * later batch, so such a batch is dropped as forward_failed.
 */
const PERMANENT_CODES: ReadonlySet<Code> = new Set([Code.InvalidArgument, Code.Unimplemented]);

/** The one upstream call the forwarder needs. */
export type BoundaryLogsClient = Pick<AgentClient, "reportBoundaryLogs">;

/** Tuning the tests shorten; production uses the defaults above. */
export interface ForwarderTiming {
  retryInitialMs?: number;
  retryMaxMs?: number;
  forwardTimeoutMs?: number;
}

/** Stops and restarts reading a connection, for backpressure. */
export interface FlowControl {
  pause(connection: number): void;
  resume(connection: number): void;
}

/** What a Forwarder is built from. */
export interface ForwarderOptions extends ForwarderTiming {
  /** Pauses connections whose queue is full; without it a full queue overflows into the spool. */
  flow?: FlowControl;
  client: BoundaryLogsClient;
  metrics: BoundaryMetrics;
  /** Undefined when the spool could not be opened: then the proxy drops as Coder's agent does. */
  spool: Spool | undefined;
  log: Logger;
}

type Outcome = "sent" | "dropped" | "retry";

/** How a call ended; `error` says how a retry failed when the call reached coderd. */
interface Sent {
  outcome: Outcome;
  error?: string | undefined;
}

/**
 * One connection's batches waiting in memory, in arrival order, already
 * joined into calls: the calls closed (full, or followed by another
 * session), then the one being built from the newest batches.
 */
interface Lane {
  readonly id: number;
  /** Closed calls, oldest first; their bytes are the forwarder's own. */
  readonly calls: LogBatch[];
  /** Memory `calls` hold (heldBytes). */
  callBytes: number;
  /** The call the next batches join. */
  readonly building: CallBuilder;
  /** Its connection is not being read (backpressure). */
  paused: boolean;
  /** A call of this lane is in flight. */
  busy: boolean;
  /** Waiting in `ready` for a free call slot. */
  ready: boolean;
}

/** Why one spooled batch keeps failing: the state of its forward attempts. */
interface Strikes {
  /** The batch (spool id) and how many of its logs went already: what failed. */
  key: string;
  /** How it failed. */
  error: string;
  /** Failures in a row of `key` with `error`. */
  count: number;
}

/** A lane of the spool whose head batch is being sent in pieces. */
interface Split {
  /** Spool id of the batch being split. */
  id: number;
  /** Its logs already delivered or dropped. */
  offset: number;
  /** Logs per piece. */
  maxLogs: number;
  /** A piece of it reached coderd: the batch counts as forwarded once done with. */
  delivered: boolean;
}

/**
 * Sends every received request to the upstream with ReportBoundaryLogs, in
 * arrival order per connection, a connection's queued batches of one
 * session coalesced into one call (see coalesce.ts).
 *
 * Each connection is a lane: its calls go out one at a time, in order, and
 * up to MAX_LANES_IN_FLIGHT lanes have a call in flight at once. There is no
 * order between connections, as there is none between boundary processes.
 * A lane holding LANE_PAUSE_BYTES is paused (its socket is not read, so
 * boundary sees backpressure and counts its own drops) until it is below
 * LANE_RESUME_BYTES; a lane that cannot be paused overflows into the spool
 * past LOG_BUFFER_SIZE queued batches.
 *
 * Batches live in one of two places, never both at once, which keeps each
 * connection's order: the in-memory lanes while the upstream takes them,
 * the durable spool otherwise. When a forward fails, every lane's queue
 * moves into the spool (the failed batches go back in front of the spool's
 * head, so before their lane's later batches), and later arrivals follow it
 * there until the spool has been delivered. The spool is drained only once
 * no lane call is in flight, so a batch still in flight that fails goes in
 * front of its lane's spooled successors. On a restart the connections are
 * gone: the spool replays in spool order, which keeps each former
 * connection's order. Spooled batches are re-sent with exponential backoff;
 * a batch is removed only after the upstream acknowledged it, so delivery
 * is at-least-once.
 *
 * A spooled batch whose forward fails the same way SPLIT_AFTER_FAILURES
 * times in a row (while the link is up: a coderd that closes the link on a
 * message it will not read) is sent in halves, then halves of those, and a
 * single log that still fails so is dropped as `undeliverable`, so one bad
 * batch never keeps the link flapping.
 */
export class Forwarder {
  private readonly lanes = new Map<number, Lane>();
  /** Lanes with queued batches and no call in flight, oldest waiter first. */
  private ready: Lane[] = [];
  /** Received batches waiting in memory (inside the lanes' calls). */
  private queuedBatches = 0;
  /** Aborted by the shutdown timer: ends the send loop's waits and every call in flight. */
  private readonly abort = new AbortController();
  private readonly client: BoundaryLogsClient;
  private readonly metrics: BoundaryMetrics;
  private readonly spool: Spool | undefined;
  private readonly flow: FlowControl | undefined;
  private readonly log: Logger;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly forwardTimeoutMs: number;
  private wake: (() => void) | undefined;
  private interrupt: (() => void) | undefined;
  private draining = false;
  private loop: Promise<void> | undefined;
  private failing = false;
  /** Lane calls in flight. */
  private active = 0;
  /** Per spool lane: how its head batch has been failing. */
  private readonly strikes = new Map<number, Strikes>();
  /** Per spool lane: the head batch being sent in pieces. */
  private readonly splits = new Map<number, Split>();

  constructor(opts: ForwarderOptions) {
    this.client = opts.client;
    this.metrics = opts.metrics;
    this.spool = opts.spool;
    this.flow = opts.flow;
    this.log = opts.log;
    this.retryInitialMs = opts.retryInitialMs ?? RETRY_INITIAL_MS;
    this.retryMaxMs = opts.retryMaxMs ?? RETRY_MAX_MS;
    this.forwardTimeoutMs = opts.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
    // Every call in flight (lane calls, or a spool round's) and the send loop's wait listen to it.
    setMaxListeners(2 * MAX_LANES_IN_FLIGHT + 1, this.abort.signal);
  }

  /** Requests waiting in memory. */
  get queued(): number {
    return this.queuedBatches;
  }

  /** Starts the send loop. */
  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Takes one batch received on `connection` (a number that stays the same
   * for one socket connection; UNKNOWN_LANE when there is none); never blocks
   * the socket reader.
   */
  enqueue(batch: LogBatch, connection = UNKNOWN_LANE): void {
    this.enqueueAll([batch], connection);
  }

  /** Takes batches received together on `connection`, in order; one spool write when they go there. */
  enqueueAll(batches: readonly LogBatch[], connection = UNKNOWN_LANE): void {
    if (this.spool && this.spool.batches > 0) {
      this.toSpool(batches, connection);
      this.notify();
      return;
    }
    const pausable = this.flow !== undefined && connection !== UNKNOWN_LANE;
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      if (pausable || this.queuedBatches < LOG_BUFFER_SIZE) {
        this.push(connection, batch);
      } else if (this.spool) {
        const taken = this.takeQueued();
        const rest = batches.slice(i);
        this.toSpoolLaned([...taken.batches, ...rest], [...taken.lanes, ...rest.map(() => connection)]);
        break;
      } else {
        this.metrics.dropBatch("buffer_full", batch.logCount, batchesIn(batch));
      }
    }
    const lane = this.lanes.get(connection);
    if (pausable && lane && !lane.paused && laneBytes(lane) >= LANE_PAUSE_BYTES) {
      lane.paused = true;
      this.flow!.pause(connection);
    }
    this.pump();
    // What did not go at once waits: it must not keep the socket's chunk alive.
    lane?.building.own();
    this.notify();
  }

  /**
   * Delivers what is queued in memory within `timeoutMs`, then cancels the
   * calls in flight and moves whatever is left into the spool. Spooled
   * batches stay on disk for the next start.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.interrupt?.();
    const timer = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
    const left = this.takeQueued();
    if (left.batches.length === 0) return;
    if (this.spool) this.toSpoolLaned(left.batches, left.lanes);
    else for (const batch of left.batches) this.metrics.dropBatch("forward_failed", batch.logCount, batchesIn(batch));
  }

  private async run(): Promise<void> {
    let backoff = this.retryInitialMs;
    for (;;) {
      if (this.abort.signal.aborted || this.draining) {
        // Lane calls end by themselves or by the shutdown timer's abort.
        if (this.active === 0 && (this.queuedBatches === 0 || this.abort.signal.aborted)) return;
        await this.pause(undefined, true);
        continue;
      }
      if (this.spool && this.spool.batches > 0) {
        if (this.active > 0) {
          await this.pause(undefined, true);
          continue;
        }
        const delivered = await this.drainSpool(this.spool);
        if (delivered) {
          backoff = this.retryInitialMs;
        } else if (!this.draining) {
          await this.pause(backoff, false);
          backoff = Math.min(backoff * 2, this.retryMaxMs);
        }
        continue;
      }
      this.pump();
      await this.pause(undefined, true);
    }
  }

  /** Adds a received batch to its lane's call being built, closing that call first when the batch does not fit it. */
  private push(connection: number, batch: LogBatch): void {
    let lane = this.lanes.get(connection);
    if (!lane) {
      lane = { id: connection, calls: [], callBytes: 0, building: new CallBuilder(), paused: false, busy: false, ready: false };
      this.lanes.set(connection, lane);
    }
    if (!lane.building.add(batch)) {
      const call = lane.building.take(true)!;
      lane.calls.push(call);
      lane.callBytes += heldBytes(call);
      lane.building.add(batch);
    }
    this.queuedBatches += batchesIn(batch);
    if (!lane.busy && !lane.ready) {
      lane.ready = true;
      this.ready.push(lane);
    }
  }

  /** Every queued call with its lane, lane by lane (each lane in order); the lanes are left empty and read again. */
  private takeQueued(): { batches: LogBatch[]; lanes: number[] } {
    const batches: LogBatch[] = [];
    const lanes: number[] = [];
    for (const lane of this.lanes.values()) {
      const building = lane.building.take();
      for (const batch of building ? [...lane.calls.splice(0), building] : lane.calls.splice(0)) {
        batches.push(batch);
        lanes.push(lane.id);
      }
      lane.callBytes = 0;
      lane.ready = false;
      this.resume(lane);
      if (!lane.busy) this.lanes.delete(lane.id);
    }
    this.ready = [];
    this.queuedBatches = 0;
    return { batches, lanes };
  }

  private resume(lane: Lane): void {
    if (!lane.paused || laneBytes(lane) >= LANE_RESUME_BYTES) return;
    lane.paused = false;
    this.flow?.resume(lane.id);
  }

  /** Starts the head call of ready lanes while call slots are free and the spool is empty. */
  private pump(): void {
    while (this.active < MAX_LANES_IN_FLIGHT && this.ready.length > 0) {
      if (this.abort.signal.aborted || (this.spool && this.spool.batches > 0)) return;
      const lane = this.ready.shift()!;
      lane.ready = false;
      void this.sendLaneHead(lane);
    }
  }

  /**
   * Sends a lane's oldest call (the one being built when no other is
   * closed); the lane then waits for a slot again behind the other ready
   * lanes.
   */
  private async sendLaneHead(lane: Lane): Promise<void> {
    let call = lane.calls.shift();
    if (call) lane.callBytes -= heldBytes(call);
    else call = lane.building.take()!;
    const batches = batchesIn(call);
    this.queuedBatches -= batches;
    this.resume(lane);
    lane.busy = true;
    this.active++;
    try {
      const { outcome, error } = await this.send(call, batches);
      if (outcome === "dropped" || (outcome === "retry" && !this.spool)) this.metrics.dropBatch("forward_failed", call.logCount, batches);
      if (outcome !== "retry" || !this.spool) return;
      this.spool.lastPrepended = undefined;
      this.returnToSpool(this.spool, call, lane.id);
      const head = this.spool.lastPrepended;
      // This was the batch's first failure: the resends from the spool continue the count.
      if (error !== undefined && head !== undefined) this.strikes.set(lane.id, { key: `${head}:0`, error, count: 1 });
    } finally {
      lane.busy = false;
      this.active--;
      if (lane.calls.length > 0 || !lane.building.empty) {
        lane.ready = true;
        this.ready.push(lane);
      } else {
        this.resume(lane);
        this.lanes.delete(lane.id);
      }
      this.pump();
      this.notify();
    }
  }

  /**
   * Sends a round of spooled batches (Spool.peekLanes) and removes each one
   * the upstream acknowledged; true if at least one went out. Each lane's
   * batches go out in order, coalesced, stopping at its first failure, and
   * up to MAX_LANES_IN_FLIGHT lanes send at once. UNKNOWN_LANE batches
   * are never in a round with others, and form one lane.
   */
  private async drainSpool(spool: Spool): Promise<boolean> {
    const window = spool.peekLanes(SPOOL_WINDOW_ROWS, SPOOL_PER_LANE);
    const perLane = new Map<number, SpooledBatch[]>();
    for (const batch of window) {
      const batches = perLane.get(batch.lane);
      if (batches) batches.push(batch);
      else perLane.set(batch.lane, [batch]);
    }
    const lanes = [...perLane.entries()];
    let progressed = false;
    const worker = async () => {
      for (let next = lanes.shift(); next; next = lanes.shift()) {
        const [lane, batches] = next;
        while (batches.length > 0) {
          if (this.abort.signal.aborted || this.draining) return;
          const moved = await this.drainHead(spool, lane, batches);
          if (moved === 0) break;
          progressed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_LANES_IN_FLIGHT, lanes.length) }, worker));
    return progressed;
  }

  /**
   * Sends the head of a lane's spooled `batches` (coalesced, or a piece of
   * a batch being split) and takes what went (or was dropped) off the front
   * of `batches` and out of the spool; returns how many batches that moved,
   * or -1 for a piece, 0 when the call failed.
   */
  private async drainHead(spool: Spool, lane: number, batches: SpooledBatch[]): Promise<number> {
    const head = batches[0]!;
    const split = this.splits.get(lane);
    if (split && split.id !== head.id) this.splits.delete(lane);
    const piece = split?.id === head.id ? split : undefined;
    const logs = head.batch.logCount;
    const { call: batch, taken } = piece ? { call: pieceOf(head.batch, piece), taken: 1 } : firstCall(batches.map((b) => b.batch));
    const { outcome, error } = await this.send(batch, piece ? 0 : batchesIn(batch));
    if (outcome === "retry") {
      this.strike(lane, head, piece, batch.logCount, error);
      const now = this.splits.get(lane);
      if (now?.id !== head.id || now.offset < logs) return 0;
      // Its last log was dropped: the batch is done with.
      this.splitDone(lane, head, now, "undeliverable");
      spool.removeAll(batches.splice(0, 1));
      return 1;
    } else if (outcome === "dropped" && piece) {
      this.metrics.logsDropped.inc({ reason: "forward_failed" }, logs - piece.offset);
      piece.offset = logs;
    } else if (outcome === "dropped") {
      for (const { batch: dropped } of batches.slice(0, taken)) this.metrics.dropBatch("forward_failed", dropped.logCount, batchesIn(dropped));
    } else {
      this.strikes.delete(lane);
      if (piece) {
        piece.offset += batch.logCount;
        piece.delivered = true;
      }
    }
    if (piece && piece.offset < logs) return -1;
    if (piece) this.splitDone(lane, head, piece, "forward_failed");
    const done = batches.splice(0, taken);
    spool.removeAll(done);
    return done.length;
  }

  /**
   * Ends the split of `head`: its received batches count once, as forwarded
   * when any piece reached coderd, else as dropped for `reason` (its logs
   * were counted as they were dropped).
   */
  private splitDone(lane: number, head: SpooledBatch, split: Split, reason: "undeliverable" | "forward_failed"): void {
    this.splits.delete(lane);
    if (split.delivered) this.metrics.batchesForwarded.inc(batchesIn(head.batch));
    else this.metrics.batchesDropped.inc({ reason }, batchesIn(head.batch));
  }

  /**
   * Counts a failed forward of the lane's head batch. The third failure in
   * a row of the same batch (and piece) the same way splits it: the next
   * call carries half as many logs; a single log is dropped instead.
   */
  private strike(lane: number, head: SpooledBatch, piece: Split | undefined, sentLogs: number, error: string | undefined): void {
    if (error === undefined) return;
    const key = `${head.id}:${piece?.offset ?? 0}`;
    const last = this.strikes.get(lane);
    const count = last && last.key === key && last.error === error ? last.count + 1 : 1;
    this.strikes.set(lane, { key, error, count });
    if (count < SPLIT_AFTER_FAILURES) return;
    this.strikes.delete(lane);
    const logs = head.batch.logCount;
    const offset = piece?.offset ?? 0;
    if (sentLogs > 1) {
      const maxLogs = Math.min(Math.ceil(sentLogs / 2), logs - offset);
      this.splits.set(lane, { id: head.id, offset, maxLogs: Math.max(1, maxLogs), delivered: piece?.delivered ?? false });
      this.log.warn({ error, logs: sentLogs, next: maxLogs }, "boundary log batch keeps failing; sending it in smaller pieces");
      return;
    }
    this.metrics.logsDropped.inc({ reason: "undeliverable" });
    this.log.warn({ error, sessionId: head.batch.sessionId, failures: count }, "boundary log could not be forwarded; dropped");
    this.splits.set(lane, { id: head.id, offset: offset + 1, maxLogs: 1, delivered: piece?.delivered ?? false });
  }

  /**
   * One call carrying `batch`; `batches` is how many received batches it
   * holds, for the forwarded count (0 for a piece of one). The transport enforces the timeout, and
   * the shutdown timer's abort of the forwarder's signal ends every call in
   * flight: no controller or timer of its own per call.
   */
  private async send(batch: LogBatch, batches: number): Promise<Sent> {
    try {
      await this.client.reportBoundaryLogs(batchRequest(batch), { signal: this.abort.signal, timeoutMs: this.forwardTimeoutMs });
    } catch (err) {
      return this.failed(batch, err);
    }
    if (batches > 0) this.metrics.batchesForwarded.inc(batches);
    if (this.failing) {
      this.failing = false;
      this.log.info("forwarding boundary logs again");
    }
    return { outcome: "sent" };
  }

  private failed(batch: LogBatch, err: unknown): Sent {
    const error = ConnectError.from(err);
    if (PERMANENT_CODES.has(error.code) && !this.abort.signal.aborted) {
      this.log.warn({ err: errorText(err), logs: batch.logCount }, "upstream rejected boundary log batch; dropped");
      return { outcome: "dropped" };
    }
    if (!this.failing) {
      this.failing = true;
      this.log.warn({ err: errorText(err), spool: this.spool !== undefined }, "forwarding boundary logs failed");
    }
    // Only the link dropping under a call that went out says something about the batch.
    return { outcome: "retry", error: connectionLost(err) && !this.abort.signal.aborted ? "connection lost" : undefined };
  }

  /** Puts a failed call back in front, with every lane's queue behind it, so each connection's order stays. */
  private returnToSpool(spool: Spool, call: LogBatch, lane: number): void {
    this.spoolWrite(spool, [call], (batches) => spool.prependAll(batches, lane));
    const taken = this.takeQueued();
    this.toSpoolLaned(taken.batches, taken.lanes);
  }

  private toSpool(batches: readonly LogBatch[], lane: number): void {
    this.toSpoolLaned(batches, batches.map(() => lane));
  }

  private toSpoolLaned(batches: readonly LogBatch[], lanes: readonly number[]): void {
    if (batches.length === 0) return;
    this.spoolWrite(this.spool!, batches, (some, first) => this.spool!.append(some, lanes.slice(first)));
  }

  /**
   * Writes `batches` to the spool with `write` (handed them and the index of
   * the first), which keeps the oldest that fit its bound. Of the first left
   * out, the received batches that still fit are written too (a joined call
   * is cut between them), so only what the spool cannot hold is dropped, as
   * spool_full.
   */
  private spoolWrite(
    spool: Spool,
    batches: readonly LogBatch[],
    write: (batches: readonly LogBatch[], first: number) => LogBatch[],
  ): void {
    let rejected = batches;
    try {
      rejected = write(batches, 0);
      const cut = rejected.length > 0 ? cutCall(rejected[0]!, spool.room) : undefined;
      if (cut && write([cut[0]], batches.length - rejected.length).length === 0) rejected = [cut[1], ...rejected.slice(1)];
    } catch (err) {
      this.log.error({ err: errorText(err) }, "boundary spool write failed");
    }
    for (const batch of rejected) this.metrics.dropBatch("spool_full", batch.logCount, batchesIn(batch));
  }

  /**
   * Wakes the send loop when it has work of its own: the spool, or a
   * shutdown. Lane calls are started by `pump` where batches arrive and
   * calls end, so a batch that goes straight to a lane costs the loop no
   * wake-up (one promise and abort listener per batch otherwise).
   */
  private notify(): void {
    if (this.draining || (this.spool !== undefined && this.spool.batches > 0)) this.wake?.();
  }

  /**
   * Waits `ms` milliseconds (forever when undefined), cut short by shutdown
   * and, when `onWork`, by a new arrival. A backoff is not cut short by
   * arrivals, so a stream of logs during an outage does not hammer the upstream.
   */
  private pause(ms: number | undefined, onWork: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        this.wake = undefined;
        this.interrupt = undefined;
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.abort.signal.addEventListener("abort", done, { once: true });
      this.interrupt = done;
      if (onWork) this.wake = done;
    });
  }
}

/** The logs `piece` covers of a batch being split, as a batch of their own (its logs decoded, then encoded). */
function pieceOf(batch: LogBatch, piece: Split): LogBatch {
  const logs = decodeLogs(batch).slice(piece.offset, piece.offset + piece.maxLogs);
  return logBatchOf(
    create(ReportBoundaryLogsRequestSchema, {
      sessionId: batch.sessionId,
      confinedProcessName: batch.confinedProcessName,
      logs,
    }),
  );
}

/** Memory a lane counts toward its pause mark: its closed calls (heldBytes) and the wire bytes of the one being built. */
function laneBytes(lane: Lane): number {
  return lane.callBytes + lane.building.size;
}

/**
 * Memory a queued call counts for in its lane: its bytes and the objects
 * that carry them, so a connection sending many small calls (sessions that
 * alternate) is paused as early, for its memory, as one sending full ones.
 */
function heldBytes(call: LogBatch): number {
  return call.bytes.length + CALL_OBJECT_BYTES;
}
