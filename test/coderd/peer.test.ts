import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";
import { WebSocket } from "ws";
import type { IncomingMessage } from "node:http";
import { coderdPeer } from "../helpers/coderd-peer.js";

const RPC = "/api/v2/workspaceagents/me/rpc";

/** Tries the upgrade; resolves with the HTTP status and JSON body, or 101 when it was accepted. */
async function dial(url: string, headers: Record<string, string>): Promise<{ status: number; body?: unknown }> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers });
  return new Promise((resolve, reject) => {
    ws.once("open", () => {
      ws.terminate();
      resolve({ status: 101 });
    });
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    ws.once("error", reject);
  });
}

describe("the coderd peer's checks before the upgrade", () => {
  test("a missing token is 401 with coderd's message", async () => {
    const peer = await coderdPeer();
    const res = await dial(`${peer.url}${RPC}?version=2.9`, {});
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, { message: `Cookie "coder_session_token" must be provided.` });
  });

  test("a wrong token is 401 'Workspace agent not authorized.'", async () => {
    const peer = await coderdPeer();
    const res = await dial(`${peer.url}${RPC}?version=2.9`, { "Coder-Session-Token": "nope" });
    assert.equal(res.status, 401);
    assert.equal((res.body as { message: string }).message, "Workspace agent not authorized.");
  });

  test("versions are valid iff major 2 and minor at most 13; a missing one is 2.0", async () => {
    const peer = await coderdPeer();
    const headers = { "Coder-Session-Token": "t" };
    for (const ok of ["2.0", "2.9", "2.13"]) {
      assert.equal((await dial(`${peer.url}${RPC}?version=${ok}&role=agentd`, headers)).status, 101, ok);
    }
    assert.equal((await dial(`${peer.url}${RPC}?role=agentd`, headers)).status, 101);
    for (const bad of ["2.14", "3.0", "1.0", "abc", "2"]) {
      const res = await dial(`${peer.url}${RPC}?version=${bad}`, headers);
      assert.equal(res.status, 400, bad);
      assert.equal((res.body as { message: string }).message, "Unknown or unsupported API version");
    }
    const accepted = peer.requests.filter((r) => r.status === 101);
    assert.deepEqual(
      accepted.map((r) => [r.version, r.role]),
      [
        ["2.0", "agentd"],
        ["2.9", "agentd"],
        ["2.13", "agentd"],
        [null, "agentd"],
      ],
    );
  });

  test("close drops live connections and start listens on the same port again", async () => {
    const peer = await coderdPeer();
    const url = peer.url;
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}${RPC}?version=2.9`, { headers: { "Coder-Session-Token": "t" } });
    await once(ws, "open");
    const closed = once(ws, "close");
    await peer.close();
    await closed;
    assert.equal(peer.connections.size, 0);
    await peer.start();
    assert.equal(peer.url, url);
    assert.equal((await dial(`${url}${RPC}`, { "Coder-Session-Token": "t" })).status, 101);
  });
});
