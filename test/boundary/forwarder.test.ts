import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Registry } from "prom-client";
import {
  ReportBoundaryLogsRequestSchema,
  ReportBoundaryLogsResponseSchema,
} from "../../gen/coder/agent/v2/agent_pb.js";
import {
  Forwarder,
  LANE_PAUSE_BYTES,
  LOG_BUFFER_SIZE,
  MAX_LANES_IN_FLIGHT,
  type BoundaryLogsClient,
} from "../../src/boundary/forwarder.js";
import { decodeLogBatch, logBatchOf, type LogBatch } from "../../src/boundary/log-batch.js";
import { BoundaryMetrics } from "../../src/boundary/metrics.js";
import { Spool } from "../../src/boundary/spool.js";
import { tempDir } from "../helpers/agentd.js";
import { FakeUpstream, silentLog, waitUntil } from "./harness.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** One step of a run: batches arriving, the upstream failing, hanging or answering again, or a pause. */
type Step = { arrive: number } | { upstream: "ok" | "unavailable" | "hang" } | { pause: true };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ arrive: fc.integer({ min: 1, max: LOG_BUFFER_SIZE + 30 }) }),
  fc.record({ upstream: fc.constantFrom("ok" as const, "unavailable" as const, "hang" as const) }),
  fc.constant({ pause: true as const }),
);

function forwarderOn(dir: string, upstream: BoundaryLogsClient): { forwarder: Forwarder; spool: Spool } {
  const spool = Spool.inDataDir(dir, 1 << 30);
  const forwarder = new Forwarder({
    client: upstream,
    metrics: new BoundaryMetrics(new Registry(), () => spool.stats()),
    spool,
    log: silentLog,
    retryInitialMs: 1,
    retryMaxMs: 5,
    forwardTimeoutMs: 10,
  });
  forwarder.start();
  return { forwarder, spool };
}

async function play(steps: Step[], forwarder: Forwarder, upstream: FakeUpstream, first: number): Promise<number> {
  let next = first;
  for (const s of steps) {
    if ("arrive" in s) {
      for (let i = 0; i < s.arrive; i++) {
        forwarder.enqueue(logBatchOf(create(ReportBoundaryLogsRequestSchema, { sessionId: String(next++) })));
      }
    } else if ("upstream" in s) {
      upstream.mode = s.upstream;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return next;
}

const inOrder = (upstream: FakeUpstream) => upstream.received.map((r) => Number(r.sessionId));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("forwarder ordering", () => {
  test("a shutdown mid-run spools what is left; the next start delivers it first, in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 8 }),
        fc.array(step, { minLength: 0, maxLength: 4 }),
        async (before, afterRestart) => {
          const dir = tempDir("agentd-forwarder-");
          dirs.push(dir);
          const upstream = new FakeUpstream();
          const one = forwarderOn(dir, upstream);
          const sent = await play(before, one.forwarder, upstream, 0);
          await one.forwarder.shutdown(5);
          one.spool.close();
          upstream.mode = "ok";
          const two = forwarderOn(dir, upstream);
          const total = await play(afterRestart, two.forwarder, upstream, sent);
          upstream.mode = "ok";
          await waitUntil(() => upstream.received.length >= total, "every batch delivered");
          await two.forwarder.shutdown(1000);
          two.spool.close();
          assert.deepEqual(inOrder(upstream), range(total));
        },
      ),
      { numRuns: 20 },
    );
  });

  test("whatever the arrivals and outages, every batch is delivered once, in arrival order", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const dir = tempDir("agentd-forwarder-");
        dirs.push(dir);
        const upstream = new FakeUpstream();
        const { forwarder, spool } = forwarderOn(dir, upstream);
        const sent = await play(steps, forwarder, upstream, 0);
        upstream.mode = "ok";
        await waitUntil(() => upstream.received.length >= sent, "every batch delivered");
        await forwarder.shutdown(1000);
        spool.close();
        assert.deepEqual(inOrder(upstream), range(sent));
      }),
      { numRuns: 25 },
    );
  });
});

/** Batches named "<connection>:<n>", n counting up per connection. */
type ConnStep = { arrive: number; connection: number } | { upstream: "ok" | "unavailable" | "hang" } | { pause: true };

const CONNECTIONS = 4;
const connStep: fc.Arbitrary<ConnStep> = fc.oneof(
  fc.record({ arrive: fc.integer({ min: 1, max: 60 }), connection: fc.integer({ min: 1, max: CONNECTIONS }) }),
  fc.record({ upstream: fc.constantFrom("ok" as const, "unavailable" as const, "hang" as const) }),
  fc.constant({ pause: true as const }),
);

async function playConnections(
  steps: ConnStep[],
  forwarder: Forwarder,
  upstream: FakeUpstream,
  next: Map<number, number>,
): Promise<void> {
  for (const s of steps) {
    if ("arrive" in s) {
      const batches: LogBatch[] = [];
      for (let i = 0; i < s.arrive; i++) {
        const n = next.get(s.connection) ?? 0;
        next.set(s.connection, n + 1);
        batches.push(logBatchOf(create(ReportBoundaryLogsRequestSchema, { sessionId: `${s.connection}:${n}` })));
      }
      forwarder.enqueueAll(batches, s.connection);
    } else if ("upstream" in s) {
      upstream.mode = s.upstream;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** What the upstream received, per connection, in arrival order. */
function perConnection(upstream: FakeUpstream): Map<number, number[]> {
  const got = new Map<number, number[]>();
  for (const r of upstream.received) {
    const [connection, n] = r.sessionId.split(":").map(Number) as [number, number];
    got.set(connection, [...(got.get(connection) ?? []), n]);
  }
  return got;
}

function expected(next: Map<number, number>): Map<number, number[]> {
  return new Map([...next].map(([connection, count]) => [connection, range(count)]));
}

const sorted = (m: Map<number, number[]>) => [...m].sort((a, b) => a[0] - b[0]);

describe("forwarder lanes", () => {
  test("several connections with outages: every batch delivered once, in order per connection", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(connStep, { minLength: 1, maxLength: 12 }), async (steps) => {
        const dir = tempDir("agentd-forwarder-");
        dirs.push(dir);
        const upstream = new FakeUpstream();
        const { forwarder, spool } = forwarderOn(dir, upstream);
        const next = new Map<number, number>();
        await playConnections(steps, forwarder, upstream, next);
        upstream.mode = "ok";
        const total = [...next.values()].reduce((a, b) => a + b, 0);
        await waitUntil(() => upstream.received.length >= total, "every batch delivered");
        await forwarder.shutdown(1000);
        spool.close();
        assert.equal(upstream.received.length, total);
        assert.deepEqual(sorted(perConnection(upstream)), sorted(expected(next)));
      }),
      { numRuns: 25 },
    );
  });

  test("a restart mid-run replays the spool first; each connection's batches stay in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(connStep, { minLength: 1, maxLength: 8 }),
        fc.array(connStep, { minLength: 0, maxLength: 4 }),
        async (before, afterRestart) => {
          const dir = tempDir("agentd-forwarder-");
          dirs.push(dir);
          const upstream = new FakeUpstream();
          const next = new Map<number, number>();
          const one = forwarderOn(dir, upstream);
          await playConnections(before, one.forwarder, upstream, next);
          await one.forwarder.shutdown(5);
          one.spool.close();
          upstream.mode = "ok";
          // The same boundary processes reconnect; numbers of the earlier run may be reused.
          const two = forwarderOn(dir, upstream);
          const renumbered = new Map<number, number>(next);
          const total = () => [...renumbered.values()].reduce((a, b) => a + b, 0);
          await playConnections(afterRestart, two.forwarder, upstream, renumbered);
          upstream.mode = "ok";
          await waitUntil(() => upstream.received.length >= total(), "every batch delivered");
          await two.forwarder.shutdown(1000);
          two.spool.close();
          assert.equal(upstream.received.length, total());
          assert.deepEqual(sorted(perConnection(upstream)), sorted(expected(renumbered)));
        },
      ),
      { numRuns: 20 },
    );
  });

  test("connections send at once, up to the bound, each with one call in flight", async () => {
    const dir = tempDir("agentd-forwarder-");
    dirs.push(dir);
    const inFlight: string[] = [];
    const release: (() => void)[] = [];
    let most = 0;
    const gated: BoundaryLogsClient = {
      async reportBoundaryLogs(request) {
        const id = String(request.sessionId);
        inFlight.push(id);
        most = Math.max(most, inFlight.length);
        await new Promise<void>((resolve) => release.push(resolve));
        inFlight.splice(inFlight.indexOf(id), 1);
        return create(ReportBoundaryLogsResponseSchema);
      },
    };
    const { forwarder, spool } = forwarderOn(dir, gated);
    const connections = MAX_LANES_IN_FLIGHT + 2;
    for (let c = 1; c <= connections; c++) {
      forwarder.enqueueAll(
        [0, 1].map((n) => logBatchOf(create(ReportBoundaryLogsRequestSchema, { sessionId: `${c}:${n}` }))),
        c,
      );
    }
    await waitUntil(() => inFlight.length === MAX_LANES_IN_FLIGHT, "the bound reached");
    assert.deepEqual(
      inFlight.map((id) => id.split(":")[1]),
      Array(MAX_LANES_IN_FLIGHT).fill("0"),
      "only each connection's first batch is in flight",
    );
    while (forwarder.queued > 0 || inFlight.length > 0) {
      await waitUntil(() => release.length > 0, "a call waiting");
      release.shift()!();
      await new Promise((r) => setImmediate(r));
      assert.ok(inFlight.length <= MAX_LANES_IN_FLIGHT, `${inFlight.length} calls in flight`);
      const lanes = inFlight.map((id) => id.split(":")[0]);
      assert.equal(new Set(lanes).size, lanes.length, "one call in flight per connection");
    }
    assert.equal(most, MAX_LANES_IN_FLIGHT);
    await forwarder.shutdown(1000);
    spool.close();
  });

  test("a connection whose session changes every other batch is paused before its queue holds much more than the pause mark", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const hanging: BoundaryLogsClient = {
      async reportBoundaryLogs() {
        await held;
        return create(ReportBoundaryLogsResponseSchema);
      },
    };
    let paused = false;
    const forwarder = new Forwarder({
      client: hanging,
      metrics: new BoundaryMetrics(new Registry(), () => ({ batches: 0, bytes: 0, oldestAgeSeconds: 0 })),
      spool: undefined,
      log: silentLog,
      flow: { pause: () => (paused = true), resume: () => (paused = false) },
    });
    const frames = ["a", "b"].map((sessionId) =>
      toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { sessionId, logs: [{ allowed: true }] })),
    );
    gc();
    const before = process.memoryUsage().arrayBuffers;
    let n = 0;
    // Two batches of one session, then two of the other: every call closes with two small batches joined.
    for (; !paused && n < 1_000_000; n++) forwarder.enqueue(decodeLogBatch(Buffer.from(frames[(n >> 1) & 1]!)), 1);
    // Buffers collected are counted out only after a turn.
    gc();
    await new Promise((r) => setTimeout(r, 10));
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(paused, `not paused after ${n} batches`);
    // Counted as LANE_PAUSE_BYTES of calls; each call's record of its two batches comes on top.
    assert.ok(grown < 16 * LANE_PAUSE_BYTES, `the paused connection's queue holds ${(grown / 2 ** 20).toFixed(1)} MiB`);
    release();
    await forwarder.shutdown(1000);
  });
});
