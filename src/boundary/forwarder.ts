import { Code, ConnectError } from "@connectrpc/connect";
import type { ReportBoundaryLogsRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import type { AgentClient } from "../coderd/upstream.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import type { BoundaryMetrics } from "./metrics.js";
import { UNKNOWN_LANE, type Spool, type SpooledBatch } from "./spool.js";

/** Requests held in memory between the socket readers and the forwarder (proxy.go logBufferSize). */
export const LOG_BUFFER_SIZE = 100;
/** A forward that takes longer than this counts as failed and is retried from the spool (agentd's own bound). */
export const FORWARD_TIMEOUT_MS = 10_000;
/** First wait before re-sending a spooled batch after a failure; doubles per failure (agentd's own bound). */
export const RETRY_INITIAL_MS = 100;
/** Longest wait between two attempts while the upstream stays away (agentd's own bound). */
export const RETRY_MAX_MS = 5_000;
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

/** What a Forwarder is built from. */
export interface ForwarderOptions extends ForwarderTiming {
  client: BoundaryLogsClient;
  metrics: BoundaryMetrics;
  /** Undefined when the spool could not be opened: then the proxy drops as Coder's agent does. */
  spool: Spool | undefined;
  log: Logger;
}

type Outcome = "sent" | "dropped" | "retry";

/** One connection's batches waiting in memory, in arrival order. */
interface Lane {
  readonly id: number;
  readonly queue: ReportBoundaryLogsRequest[];
  /** A call of this lane is in flight. */
  busy: boolean;
  /** Waiting in `ready` for a free call slot. */
  ready: boolean;
}

/**
 * Sends every received request, unchanged, to the upstream with
 * ReportBoundaryLogs, in arrival order per connection.
 *
 * Each connection is a lane: its batches go out one at a time, in order, and
 * up to MAX_LANES_IN_FLIGHT lanes have a call in flight at once. There is no
 * order between connections, as there is none between boundary processes.
 *
 * Batches live in one of two places, never both at once, which keeps each
 * connection's order: the in-memory lanes (up to LOG_BUFFER_SIZE batches in
 * all) while the upstream keeps up, the durable spool otherwise. When the
 * lanes overflow or a forward fails, every lane's queue moves into the spool
 * (a failed batch goes back in front of the spool's head, so before its
 * lane's later batches), and later arrivals follow it there until the spool
 * has been delivered. The spool is drained one batch at a time, in spool
 * order, only once no lane call is in flight, so a batch still in flight
 * that fails goes in front of its lane's spooled successors. On a restart
 * the connections are gone: the spool replays in spool order, which keeps
 * each former connection's order. Spooled batches are re-sent with
 * exponential backoff; a batch is removed only after the upstream
 * acknowledged it, so delivery is at-least-once.
 */
export class Forwarder {
  private readonly lanes = new Map<number, Lane>();
  /** Lanes with queued batches and no call in flight, oldest waiter first. */
  private ready: Lane[] = [];
  private queuedBatches = 0;
  private readonly calls = new Set<AbortController>();
  private readonly abort = new AbortController();
  private readonly client: BoundaryLogsClient;
  private readonly metrics: BoundaryMetrics;
  private readonly spool: Spool | undefined;
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

  constructor(opts: ForwarderOptions) {
    this.client = opts.client;
    this.metrics = opts.metrics;
    this.spool = opts.spool;
    this.log = opts.log;
    this.retryInitialMs = opts.retryInitialMs ?? RETRY_INITIAL_MS;
    this.retryMaxMs = opts.retryMaxMs ?? RETRY_MAX_MS;
    this.forwardTimeoutMs = opts.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
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
   * Takes one request received on `connection` (a number that stays the same
   * for one socket connection; UNKNOWN_LANE when there is none); never blocks
   * the socket reader.
   */
  enqueue(request: ReportBoundaryLogsRequest, connection = UNKNOWN_LANE): void {
    this.enqueueAll([request], connection);
  }

  /** Takes requests received together on `connection`, in order; one spool write when they go there. */
  enqueueAll(requests: readonly ReportBoundaryLogsRequest[], connection = UNKNOWN_LANE): void {
    if (this.spool && this.spool.batches > 0) {
      this.toSpool(requests, connection);
      this.notify();
      return;
    }
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      if (this.queuedBatches < LOG_BUFFER_SIZE) {
        this.push(connection, request);
      } else if (this.spool) {
        const queued = this.takeQueued();
        const rest = requests.slice(i);
        this.toSpoolLaned([...queued.requests, ...rest], [...queued.lanes, ...rest.map(() => connection)]);
        break;
      } else {
        this.metrics.dropBatch("buffer_full", request.logs.length);
      }
    }
    this.pump();
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
    const timer = setTimeout(() => {
      this.abort.abort();
      for (const call of this.calls) call.abort();
    }, timeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
    const left = this.takeQueued();
    if (left.requests.length === 0) return;
    if (this.spool) this.toSpoolLaned(left.requests, left.lanes);
    else for (const request of left.requests) this.metrics.dropBatch("forward_failed", request.logs.length);
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

  private push(connection: number, request: ReportBoundaryLogsRequest): void {
    let lane = this.lanes.get(connection);
    if (!lane) {
      lane = { id: connection, queue: [], busy: false, ready: false };
      this.lanes.set(connection, lane);
    }
    lane.queue.push(request);
    this.queuedBatches++;
    if (!lane.busy && !lane.ready) {
      lane.ready = true;
      this.ready.push(lane);
    }
  }

  /** Every queued batch with its lane, lane by lane (each lane in order); the lanes are left empty. */
  private takeQueued(): { requests: ReportBoundaryLogsRequest[]; lanes: number[] } {
    const requests: ReportBoundaryLogsRequest[] = [];
    const lanes: number[] = [];
    for (const lane of this.lanes.values()) {
      for (const request of lane.queue.splice(0)) {
        requests.push(request);
        lanes.push(lane.id);
      }
      lane.ready = false;
      if (!lane.busy) this.lanes.delete(lane.id);
    }
    this.ready = [];
    this.queuedBatches = 0;
    return { requests, lanes };
  }

  /** Starts the head batch of ready lanes while call slots are free and the spool is empty. */
  private pump(): void {
    while (this.active < MAX_LANES_IN_FLIGHT && this.ready.length > 0) {
      if (this.abort.signal.aborted || (this.spool && this.spool.batches > 0)) return;
      const lane = this.ready.shift()!;
      lane.ready = false;
      void this.sendLaneHead(lane);
    }
  }

  /** Sends one batch of a lane; the lane then waits for a slot again behind the other ready lanes. */
  private async sendLaneHead(lane: Lane): Promise<void> {
    const request = lane.queue.shift()!;
    this.queuedBatches--;
    lane.busy = true;
    this.active++;
    try {
      if ((await this.send(request)) === "retry") {
        if (this.spool) this.returnToSpool(this.spool, request, lane.id);
        else this.metrics.dropBatch("forward_failed", request.logs.length);
      }
    } finally {
      lane.busy = false;
      this.active--;
      if (lane.queue.length > 0) {
        lane.ready = true;
        this.ready.push(lane);
      } else {
        this.lanes.delete(lane.id);
      }
      this.pump();
      this.notify();
    }
  }

  /**
   * Sends a round of spooled batches (Spool.peekLanes) and removes each one
   * the upstream acknowledged; true if at least one went out. Each lane's
   * batches go out one at a time, in order, stopping at its first failure,
   * and up to MAX_LANES_IN_FLIGHT lanes send at once. UNKNOWN_LANE batches
   * are never in a round with others, and form one lane: they go out one at
   * a time in spool order.
   */
  private async drainSpool(spool: Spool): Promise<boolean> {
    const window = spool.peekLanes(SPOOL_WINDOW_ROWS, SPOOL_PER_LANE);
    const perLane = new Map<number, SpooledBatch[]>();
    for (const batch of window) {
      const batches = perLane.get(batch.lane);
      if (batches) batches.push(batch);
      else perLane.set(batch.lane, [batch]);
    }
    const lanes = [...perLane.values()];
    let progressed = false;
    const worker = async () => {
      for (let batches = lanes.shift(); batches; batches = lanes.shift()) {
        for (const batch of batches) {
          if (this.abort.signal.aborted || this.draining) return;
          const outcome = await this.send(batch.request);
          if (outcome === "retry") break;
          spool.remove(batch);
          progressed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_LANES_IN_FLIGHT, lanes.length) }, worker));
    return progressed;
  }

  private async send(request: ReportBoundaryLogsRequest): Promise<Outcome> {
    // One controller and timer per call: cheaper than combining signals, and
    // shutdown aborts the calls in flight through `calls`.
    const call = new AbortController();
    const timer = setTimeout(() => call.abort(), this.forwardTimeoutMs);
    this.calls.add(call);
    try {
      await this.client.reportBoundaryLogs(request, { signal: call.signal, timeoutMs: this.forwardTimeoutMs });
    } catch (err) {
      return this.failed(request, err);
    } finally {
      clearTimeout(timer);
      this.calls.delete(call);
    }
    this.metrics.batchesForwarded.inc();
    if (this.failing) {
      this.failing = false;
      this.log.info("forwarding boundary logs again");
    }
    return "sent";
  }

  private failed(request: ReportBoundaryLogsRequest, err: unknown): Outcome {
    const error = ConnectError.from(err);
    if (PERMANENT_CODES.has(error.code) && !this.abort.signal.aborted) {
      this.log.warn({ err: errorText(err), logs: request.logs.length }, "upstream rejected boundary log batch; dropped");
      this.metrics.dropBatch("forward_failed", request.logs.length);
      return "dropped";
    }
    if (!this.failing) {
      this.failing = true;
      this.log.warn({ err: errorText(err), spool: this.spool !== undefined }, "forwarding boundary logs failed");
    }
    return "retry";
  }

  /** Puts a failed batch back in front, with every lane's queue behind it, so each connection's order stays. */
  private returnToSpool(spool: Spool, request: ReportBoundaryLogsRequest, lane: number): void {
    let kept = false;
    try {
      kept = spool.prepend(request, lane);
    } catch (err) {
      this.log.error({ err: errorText(err) }, "boundary spool write failed");
    }
    if (!kept) this.metrics.dropBatch("spool_full", request.logs.length);
    const queued = this.takeQueued();
    this.toSpoolLaned(queued.requests, queued.lanes);
  }

  private toSpool(requests: readonly ReportBoundaryLogsRequest[], lane: number): void {
    this.toSpoolLaned(requests, requests.map(() => lane));
  }

  private toSpoolLaned(requests: readonly ReportBoundaryLogsRequest[], lanes: readonly number[]): void {
    if (requests.length === 0) return;
    let rejected: readonly ReportBoundaryLogsRequest[] = requests;
    try {
      rejected = this.spool!.append(requests, lanes);
    } catch (err) {
      this.log.error({ err: errorText(err) }, "boundary spool write failed");
    }
    for (const request of rejected) this.metrics.dropBatch("spool_full", request.logs.length);
  }

  private notify(): void {
    this.wake?.();
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
