import { after } from "node:test";
import { CoderdPeer, startCoderdPeer, type CoderdPeerOptions } from "../../src/coderd/peer.js";

/** The peer's types, for tests that hold on to what it records. */
export type { CoderdPeer, PeerCall, PeerConnection, PeerRequest } from "../../src/coderd/peer.js";

/**
 * Starts a coderd peer (the real agent RPC wire protocol: WebSocket, yamux,
 * dRPC, coderd's token and version checks) and disposes of it when the
 * enclosing suite ends: call it at the top level of a test file (or inside a
 * `describe` body), not in a `before` hook, whose own `after` fires as soon as
 * the hook returns. Default token "t".
 */
export async function coderdPeer(opts: CoderdPeerOptions = {}): Promise<CoderdPeer> {
  const peer = await startCoderdPeer({ token: "t", ...opts });
  after(() => peer.dispose());
  return peer;
}

/** Waits until `cond` holds (checked every 20 ms), failing after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
