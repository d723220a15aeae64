import { Code, ConnectError } from "@connectrpc/connect";
import type { ReportBoundaryLogsRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import type { AgentClient } from "../coderd/upstream.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import type { BoundaryMetrics } from "./metrics.js";
import type { Spool } from "./spool.js";

/** Requests held in memory between the socket readers and the forwarder (proxy.go logBufferSize). */
export const LOG_BUFFER_SIZE = 100;
/** A forward that takes longer than this counts as failed and is retried from the spool (agentd's own bound). */
export const FORWARD_TIMEOUT_MS = 10_000;
/** First wait before re-sending a spooled batch after a failure; doubles per failure (agentd's own bound). */
export const RETRY_INITIAL_MS = 100;
/** Longest wait between two attempts while the upstream stays away (agentd's own bound). */
export const RETRY_MAX_MS = 5_000;
/** Spooled batches read from disk at a time while draining. */
const SPOOL_READ_BATCH = 64;
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

/**
 * Sends every received request, unchanged and in arrival order, to the
 * upstream with ReportBoundaryLogs, one at a time.
 *
 * Batches live in one of two places, never both at once, which keeps the
 * order: the in-memory queue (up to LOG_BUFFER_SIZE) while the upstream keeps
 * up, the durable spool otherwise. When the queue overflows or a forward
 * fails, the queue (and the failed batch, in front) moves into the spool, and
 * later arrivals follow it there until the spool has been delivered. Spooled
 * batches are re-sent with exponential backoff; a batch is removed only after
 * the upstream acknowledged it, so delivery is at-least-once.
 */
export class Forwarder {
  private readonly queue: ReportBoundaryLogsRequest[] = [];
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
  private inFlight: AbortController | undefined;

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
    return this.queue.length;
  }

  /** Starts the send loop. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Takes one received request; never blocks the socket reader. */
  enqueue(request: ReportBoundaryLogsRequest): void {
    if (this.spool && this.spool.batches > 0) {
      this.toSpool([request]);
    } else if (this.queue.length < LOG_BUFFER_SIZE) {
      this.queue.push(request);
    } else if (this.spool) {
      this.toSpool([...this.queue.splice(0), request]);
    } else {
      this.metrics.dropBatch("buffer_full", request.logs.length);
    }
    this.notify();
  }

  /**
   * Delivers what is queued in memory within `timeoutMs`, then cancels the
   * call in flight and moves whatever is left into the spool. Spooled batches
   * stay on disk for the next start.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.interrupt?.();
    const timer = setTimeout(() => {
      this.abort.abort();
      this.inFlight?.abort();
    }, timeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
    const left = this.queue.splice(0);
    if (left.length === 0) return;
    if (this.spool) this.toSpool(left);
    else for (const request of left) this.metrics.dropBatch("forward_failed", request.logs.length);
  }

  private async run(): Promise<void> {
    let backoff = this.retryInitialMs;
    while (!this.abort.signal.aborted) {
      if (this.spool && this.spool.batches > 0) {
        if (this.draining) return;
        const delivered = await this.drainSpool(this.spool);
        if (delivered) {
          backoff = this.retryInitialMs;
        } else if (!this.draining) {
          await this.pause(backoff, false);
          backoff = Math.min(backoff * 2, this.retryMaxMs);
        }
        continue;
      }
      const request = this.queue.shift();
      if (!request) {
        if (this.draining) return;
        await this.pause(undefined, true);
        continue;
      }
      if ((await this.send(request)) !== "retry") continue;
      if (!this.spool) {
        this.metrics.dropBatch("forward_failed", request.logs.length);
        continue;
      }
      this.returnToSpool(this.spool, request);
    }
  }

  /** Sends spooled batches from the head until one fails; true if at least one went out. */
  private async drainSpool(spool: Spool): Promise<boolean> {
    let progressed = false;
    for (const batch of spool.peek(SPOOL_READ_BATCH)) {
      if (this.abort.signal.aborted || this.draining) break;
      const outcome = await this.send(batch.request);
      if (outcome === "retry") break;
      spool.remove(batch);
      progressed = true;
    }
    return progressed;
  }

  private async send(request: ReportBoundaryLogsRequest): Promise<Outcome> {
    // One controller and timer per call: cheaper than combining signals, and
    // shutdown aborts the call in flight through `inFlight`.
    const call = new AbortController();
    const timer = setTimeout(() => call.abort(), this.forwardTimeoutMs);
    this.inFlight = call;
    try {
      await this.client.reportBoundaryLogs(request, { signal: call.signal, timeoutMs: this.forwardTimeoutMs });
    } catch (err) {
      return this.failed(request, err);
    } finally {
      clearTimeout(timer);
      this.inFlight = undefined;
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

  /** Puts a failed batch back in front, with the queue behind it, so the order stays. */
  private returnToSpool(spool: Spool, request: ReportBoundaryLogsRequest): void {
    let kept = false;
    try {
      kept = spool.prepend(request);
    } catch (err) {
      this.log.error({ err: errorText(err) }, "boundary spool write failed");
    }
    if (!kept) this.metrics.dropBatch("spool_full", request.logs.length);
    this.toSpool(this.queue.splice(0));
  }

  private toSpool(requests: ReportBoundaryLogsRequest[]): void {
    if (requests.length === 0) return;
    let rejected = requests;
    try {
      rejected = this.spool!.append(requests);
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
