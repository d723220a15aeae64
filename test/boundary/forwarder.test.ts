import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Registry } from "prom-client";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { Forwarder, LOG_BUFFER_SIZE } from "../../src/boundary/forwarder.js";
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

function forwarderOn(dir: string, upstream: FakeUpstream): { forwarder: Forwarder; spool: Spool } {
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
        forwarder.enqueue(create(ReportBoundaryLogsRequestSchema, { sessionId: String(next++) }));
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
