import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { UpdateAppStatusRequest_AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import {
  agentRpcUrl,
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  backoffDelay,
  CoderdUpstream,
} from "../../src/coderd/coderd-upstream.js";
import { NOT_CONNECTED_MESSAGE } from "../../src/coderd/upstream.js";
import { createLogger } from "../../src/log.js";
import { coderdPeer, waitFor } from "../helpers/coderd-peer.js";
import { rejection } from "../helpers/rejection.js";

const silent = createLogger("silent");

function upstreamFor(url: string, token = "t", registry?: Registry): CoderdUpstream {
  return new CoderdUpstream({
    url: new URL(url),
    token,
    log: silent,
    ...(registry ? { registry } : {}),
    backoffInitialMs: 50,
    backoffMaxMs: 500,
  });
}


describe("the coderd RPC URL", () => {
  test("has sorted query keys, role agentd and version 2.9", () => {
    assert.equal(
      agentRpcUrl(new URL("https://coder.example.com/some/path")).toString(),
      "wss://coder.example.com/api/v2/workspaceagents/me/rpc?role=agentd&version=2.9",
    );
    assert.equal(
      agentRpcUrl(new URL("http://127.0.0.1:3000")).toString(),
      "ws://127.0.0.1:3000/api/v2/workspaceagents/me/rpc?role=agentd&version=2.9",
    );
  });
});

describe("reconnect backoff, as Coder's agent (100 ms doubling to 10 s, with jitter)", () => {
  test("the first redial waits about 100 ms, never more", () => {
    assert.equal(BACKOFF_INITIAL_MS, 100);
    assert.equal(backoffDelay(0, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, () => 0), 100);
    assert.equal(backoffDelay(0, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, () => 0.999), 75);
  });

  test("doubles per failure and is capped at 10 s", () => {
    const noJitter = () => 0;
    assert.deepEqual(
      [0, 1, 2, 3, 6, 7, 8, 50].map((n) => backoffDelay(n, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, noJitter)),
      [100, 200, 400, 800, 6400, 10_000, 10_000, 10_000],
    );
  });

  test("jitter spreads the delays below the cap", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(20, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS)));
    assert.ok(delays.size > 1, "delays vary");
    for (const d of delays) assert.ok(d >= 7_500 && d <= 10_000, `delay ${d} within [7.5 s, 10 s]`);
  });

  test("with the defaults, a refused dial is retried quickly and repeatedly", async () => {
    const peer = await coderdPeer();
    const upstream = new CoderdUpstream({ url: new URL(peer.url), token: "wrong", log: silent });
    await upstream.start();
    try {
      // 100 + 200 + 400 ms nominal: four attempts arrive long before the old 250 ms → 30 s schedule would allow.
      await waitFor(() => peer.requests.length >= 4, 20_000, "four dial attempts");
    } finally {
      await upstream.stop();
    }
  });
});

describe("CoderdUpstream against the coderd peer", () => {
  test("delivers UpdateAppStatus over WebSocket, yamux and dRPC", async () => {
    const peer = await coderdPeer();
    const upstream = upstreamFor(peer.url);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected(), 20_000, "connection");
      await upstream.client.updateAppStatus({ slug: "x", state: UpdateAppStatusRequest_AppStatusState.IDLE, message: "m" });
      const [status] = peer.store.appStatuses();
      assert.equal(status?.slug, "x");
      assert.equal(status?.state, UpdateAppStatusRequest_AppStatusState.IDLE);
      assert.equal(status?.message, "m");
      const [request] = peer.requests;
      assert.equal(request?.status, 101);
      assert.equal(request?.role, "agentd");
      assert.equal(request?.version, "2.9");
      assert.equal(peer.callsOf("UpdateAppStatus")[0]?.role, "agentd");
      // spec §5: {slug:"x", state:IDLE, message:"m"} is 0a 01 78 10 01 1a 01 6d on the wire.
      assert.deepEqual(Buffer.from(peer.callsOf("UpdateAppStatus")[0]!.bytes), Buffer.from("0a01781001" + "1a016d", "hex"));
    } finally {
      await upstream.stop();
    }
  });

  test("runs 64 calls at once, each on its own yamux stream", async () => {
    const peer = await coderdPeer();
    const upstream = upstreamFor(peer.url);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      await Promise.all(
        Array.from({ length: 64 }, (_, i) => upstream.client.updateAppStatus({ slug: "x", message: `n${i}` })),
      );
      assert.equal(peer.store.appStatuses().length, 64);
      const [conn] = [...peer.connections];
      await waitFor(() => conn!.session.streamCount === 0, 20_000, "streams to close");
    } finally {
      await upstream.stop();
    }
  });

  test("passes coderd's errors through and fails injected faults", async () => {
    const peer = await coderdPeer();
    const upstream = upstreamFor(peer.url);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      const tooLong = await rejection(upstream.client.updateAppStatus({ slug: "x", message: "m".repeat(161) }));
      assert.equal(tooLong.rawMessage, "Message is too long.");
      peer.failNext("ReportBoundaryLogs", 1);
      const injected = await rejection(upstream.client.reportBoundaryLogs({ sessionId: "s" }));
      assert.equal(injected.code, Code.Internal);
      await upstream.client.reportBoundaryLogs({ sessionId: "s" });
      assert.equal(peer.store.boundaryLogBatches().length, 1);
    } finally {
      await upstream.stop();
    }
  });

  test("fails fast with Unavailable while the peer is away and works again once it is back", async () => {
    const peer = await coderdPeer();
    const registry = new Registry();
    const upstream = upstreamFor(peer.url, "t", registry);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      await peer.close();
      await waitFor(() => !upstream.isConnected(), 20_000, "disconnect");
      const err = await rejection(upstream.client.updateAppStatus({ slug: "x" }));
      assert.equal(err.code, Code.Unavailable);
      assert.equal(err.rawMessage, NOT_CONNECTED_MESSAGE);
      for (let i = 0; i < 1000 && !/dial_failures_total\{reason="network"\} [1-9]/.test(await registry.metrics()); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await peer.start();
      await waitFor(() => upstream.isConnected(), 20_000, "reconnect");
      await upstream.client.updateAppStatus({ slug: "x", message: "back" });
      assert.equal(peer.store.appStatuses().at(-1)?.message, "back");
      const metrics = await registry.metrics();
      assert.match(metrics, /^agentd_coderd_connected 1$/m);
      assert.match(metrics, /^agentd_coderd_connects_total 2$/m);
      assert.match(metrics, /^agentd_coderd_dial_failures_total\{reason="network"\} [1-9]/m);
    } finally {
      await upstream.stop();
    }
  });

  test("a call in flight when coderd goes away fails with Unavailable", async () => {
    let arrived!: () => void;
    const called = new Promise<void>((r) => (arrived = r));
    const peer = await coderdPeer({
      service: {
        updateAppStatus() {
          arrived();
          return new Promise<never>(() => undefined);
        },
      },
    });
    const upstream = upstreamFor(peer.url);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      const pending = rejection(upstream.client.updateAppStatus({ slug: "x" }));
      await called;
      await peer.close();
      assert.equal((await pending).code, Code.Unavailable);
    } finally {
      await upstream.stop();
    }
  });

  test("keepalive notices a coderd that stops answering, and the link is remade", async () => {
    const peer = await coderdPeer();
    const registry = new Registry();
    const upstream = new CoderdUpstream({
      url: new URL(peer.url),
      token: "t",
      log: silent,
      registry,
      // Generous enough that a loaded machine's event-loop stalls are not mistaken for a dead peer.
      keepAliveIntervalMs: 200,
      keepAliveTimeoutMs: 1500,
      backoffInitialMs: 50,
      backoffMaxMs: 500,
    });
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      const [first] = [...peer.connections];
      peer.freeze();
      await waitFor(() => peer.requests.length >= 2, 20_000, "a second connection");
      peer.thaw();
      await waitFor(() => upstream.isConnected() && !peer.connections.has(first!), 20_000, "the new connection");
      await upstream.client.updateAppStatus({ slug: "x", message: "after" });
      assert.equal(peer.store.appStatuses().at(-1)?.message, "after");
      assert.match(await registry.metrics(), /^agentd_coderd_disconnects_total [1-9]/m);
    } finally {
      await upstream.stop();
    }
  });

  test("a Go Away from coderd makes it reconnect instead of failing every call on the old session", async () => {
    const peer = await coderdPeer();
    const upstream = upstreamFor(peer.url);
    await upstream.start();
    try {
      await waitFor(() => upstream.isConnected());
      const [first] = [...peer.connections];
      peer.goAway();
      await waitFor(() => !peer.connections.has(first!), 20_000, "the old session to end");
      await waitFor(() => upstream.isConnected() && peer.connections.size === 1, 20_000, "a new connection");
      await upstream.client.updateAppStatus({ slug: "x", message: "after go away" });
      assert.equal(peer.store.appStatuses().at(-1)?.message, "after go away");
      assert.equal(peer.requests.length, 2);
    } finally {
      await upstream.stop();
    }
  });

  test("a wrong token is a 401 that is retried with backoff, never connected", async () => {
    const peer = await coderdPeer();
    const registry = new Registry();
    const upstream = upstreamFor(peer.url, "wrong", registry);
    await upstream.start();
    try {
      await waitFor(() => peer.requests.length >= 2, 20_000, "a retry");
      // The peer has answered the second dial; the upstream counts it once the 401 has reached it.
      const unauthorized = async () =>
        Number(/^agentd_coderd_dial_failures_total\{reason="unauthorized"\} (\d+)/m.exec(await registry.metrics())?.[1] ?? 0);
      for (let i = 0; i < 200 && (await unauthorized()) < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(peer.requests.every((r) => r.status === 401));
      assert.equal(upstream.isConnected(), false);
      assert.ok((await unauthorized()) >= 2, "both 401 dials counted as unauthorized");
    } finally {
      await upstream.stop();
    }
  });
});
