import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Registry } from "prom-client";
import {
  ReportBoundaryLogsRequestSchema,
  ReportBoundaryLogsResponseSchema,
  type ReportBoundaryLogsRequest,
  type ReportBoundaryLogsResponse,
} from "../../gen/coder/agent/v2/agent_pb.js";
import type { BoundaryLogsClient } from "../../src/boundary/forwarder.js";
import { BoundaryProxy, type BoundaryProxyOptions } from "../../src/boundary/proxy.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";

/** How a FakeUpstream answers. */
export type FakeMode = "ok" | "unavailable" | "invalid" | "hang";

/**
 * A hand-made Agent API client: records what it is sent, and can fail or
 * hang on demand, standing in for coderd in unit tests.
 */
export class FakeUpstream implements BoundaryLogsClient {
  readonly received: ReportBoundaryLogsRequest[] = [];
  mode: FakeMode = "ok";
  /** Calls that fail with Unavailable before the mode applies again. */
  failNext = 0;
  calls = 0;
  private readonly waiters = new Set<() => void>();
  /** While set, calls wait for it before answering (see hold). */
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  /** Makes calls wait, unanswered, until `release`. */
  hold(): void {
    this.gate ??= new Promise((resolve) => (this.openGate = resolve));
  }

  /** Lets held calls (and later ones) answer. */
  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  async reportBoundaryLogs(
    request: MessageInitShape<typeof ReportBoundaryLogsRequestSchema>,
    options?: CallOptions,
  ): Promise<ReportBoundaryLogsResponse> {
    this.calls++;
    const req = create(ReportBoundaryLogsRequestSchema, request);
    if (this.failNext > 0) {
      this.failNext--;
      throw new ConnectError("upstream away", Code.Unavailable);
    }
    if (this.mode === "unavailable") throw new ConnectError("upstream away", Code.Unavailable);
    if (this.mode === "invalid") throw new ConnectError("rejected", Code.InvalidArgument);
    if (this.gate) await this.gate;
    if (this.mode === "hang") {
      // As a Connect transport does: the call ends on an abort or at its deadline.
      await new Promise<void>((_resolve, reject) => {
        const timer = options?.timeoutMs ? setTimeout(() => reject(new ConnectError("deadline", Code.DeadlineExceeded)), options.timeoutMs) : undefined;
        options?.signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new ConnectError("cancelled", Code.Canceled));
        });
      });
    }
    this.received.push(req);
    this.waiters.forEach((w) => w());
    return create(ReportBoundaryLogsResponseSchema);
  }

  /** Total logs received across batches. */
  logCount(): number {
    return this.received.reduce((n, r) => n + r.logs.length, 0);
  }
}

/** Polls `cond` until true; fails after `timeoutMs` with `what`. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A running in-process proxy on a real unix socket in a fresh directory. */
export interface ProxyHarness {
  proxy: BoundaryProxy;
  upstream: FakeUpstream;
  registry: Registry;
  dir: string;
  socketPath: string;
  dataDir: string;
  /** Stops the proxy and removes the directory. */
  close(): Promise<void>;
}

/** A logger that writes nothing, for parts under test. */
export const silentLog = createLogger("silent");

/** Starts a BoundaryProxy against a FakeUpstream; `spool: false` runs it without a spool. */
export async function startProxy(
  opts: Partial<BoundaryProxyOptions> & { spool?: boolean; dir?: string; upstream?: FakeUpstream } = {},
): Promise<ProxyHarness> {
  const dir = opts.dir ?? tempDir("agentd-boundary-");
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dataDir, { recursive: true });
  const upstream = opts.upstream ?? new FakeUpstream();
  const registry = new Registry();
  const socketPath = path.join(dir, "boundary.sock");
  const proxy = new BoundaryProxy({
    socketPath,
    registry,
    log: silentLog,
    client: upstream,
    spoolMaxBytes: 64 * 1024 * 1024,
    retryInitialMs: 10,
    retryMaxMs: 50,
    ...opts,
    dataDir: opts.spool === false ? undefined : dataDir,
  });
  await proxy.start();
  return {
    proxy,
    upstream,
    registry,
    dir,
    socketPath,
    dataDir,
    async close() {
      await proxy.stop();
      if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` against a fresh proxy (see startProxy) and closes it afterwards, whatever `fn` did. */
export async function withProxy(
  opts: Parameters<typeof startProxy>[0] | ((h: ProxyHarness) => Promise<void>),
  fn?: (h: ProxyHarness) => Promise<void>,
): Promise<void> {
  const [options, body] = typeof opts === "function" ? [{}, opts] : [opts, fn!];
  const h = await startProxy(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

/** Connects a raw unix socket client. */
export function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Writes bytes and waits until they are handed to the kernel. */
export function write(socket: net.Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));
}

/** Resolves once the peer closed the socket. */
export function closed(socket: net.Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.resume();
  });
}

/** The value of one metric series, 0 when it has not been set. */
export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  const hit = values.find((v) =>
    Object.entries(labels).every(([k, want]) => (v.labels as Record<string, string>)[k] === want),
  );
  return hit?.value ?? 0;
}

/** A request of `n` logs tagged with `tag` in each URL, so order can be checked. */
export function logsRequest(tag: string, n = 1, sessionId = "session"): MessageInitShape<typeof ReportBoundaryLogsRequestSchema> {
  return {
    sessionId,
    logs: Array.from({ length: n }, (_, i) => ({
      allowed: false,
      sequenceNumber: i,
      resource: { case: "httpRequest" as const, value: { method: "GET", url: `https://example.com/${tag}/${i}` } },
    })),
  };
}

/** True when `promtool` (Prometheus' exposition linter) is on PATH. */
export function hasPromtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** One series of a daemon's `/metrics`, e.g. `name` or `name{reason="x"}`; 0 when absent. */
export async function scrape(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}
