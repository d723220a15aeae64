import path from "node:path";
import { Command, Option } from "commander";
import { startCoderdPeer, type CoderdPeerOptions } from "../coderd/peer.js";
import { BoundaryLogStats } from "../coderd/peer-stats.js";
import { parseHostPort } from "../config.js";
import { createLogger } from "../log.js";

/** Default for `agentd coderd-peer --http-addr`. */
export const DEFAULT_PEER_ADDR = "127.0.0.1:3000";

interface PeerOptions {
  httpAddr: string;
  dataDir?: string;
  token: string;
  boundaryStats?: boolean;
}

/** How often `--boundary-stats` prints a line. */
const STATS_INTERVAL_MS = 1000;

/**
 * `agentd coderd-peer`: a stand-in coderd speaking the real agent RPC wire
 * protocol (WebSocket, yamux, dRPC), logging every call it receives as a
 * JSON line, so one can watch what `agentd serve --coder-url` sends.
 */
export function coderdPeerCommand(): Command {
  return new Command("coderd-peer")
    .description("run a stand-in coderd that accepts the agent RPC endpoint and logs every call it receives")
    .addOption(new Option("--http-addr <host:port>", "address to listen on").default(DEFAULT_PEER_ADDR))
    .addOption(new Option("--data-dir <path>", "directory for the received calls (default a temporary directory)"))
    .addOption(new Option("--token <token>", "agent token to accept").default("coderd-peer-token"))
    .addOption(
      new Option(
        "--boundary-stats",
        "benchmark mode: keep and log no calls; print one JSON line per second with the boundary logs received and their latency",
      ),
    )
    .action(async (opts: PeerOptions) => {
      const addr = parseHostPort(opts.httpAddr, "--http-addr");
      const log = createLogger("info").child({ component: "coderd-peer" });
      const stats = opts.boundaryStats ? new BoundaryLogStats() : undefined;
      const bench: CoderdPeerOptions = stats ? { service: stats.service(), decoders: stats.decoders(), recordCalls: false } : { log };
      const peer = await startCoderdPeer({
        host: addr.host,
        port: addr.port,
        token: opts.token,
        ...bench,
        ...(opts.dataDir ? { dataDir: path.resolve(opts.dataDir) } : {}),
      });
      if (stats) {
        process.stdout.write(JSON.stringify({ url: peer.url }) + "\n");
        setInterval(() => process.stdout.write(JSON.stringify(stats.take()) + "\n"), STATS_INTERVAL_MS).unref();
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      await peer.dispose();
      log.flush();
      setImmediate(() => process.exit(0));
    });
}
