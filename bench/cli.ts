// CLI start-up: `agentd sync ping` against a running daemon's agent socket and
// `agentd --version`, each a fresh Node process, against `node -e 0` (the
// floor any Node CLI pays), measured in the same run. Goal: ping within 3x.
// agentd runs as installed: bin/agentd as a program, its launcher line included.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { Registry } from "prom-client";
import { AgentSocketPart } from "../src/agentsocket/agent-socket.js";
import { EmbeddedUpstream } from "../src/coderd/embedded.js";
import { createLogger } from "../src/log.js";

/** Runs per command; the median of these is compared. */
const RUNS = 15;
const BIN = path.resolve(import.meta.dirname, "..", "bin", "agentd");

const run = promisify(execFile);

/** Median wall time of `command argv…`; the daemon answers from this process, so the child runs asynchronously. */
async function median(label: string, command: string, argv: string[]): Promise<number> {
  await run(command, argv);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await run(command, argv);
    times.push(performance.now() - start);
  }
  const ms = times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  console.log(`${label}: ${ms.toFixed(0)} ms (median of ${RUNS})`);
  return ms;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-bench-cli-"));
const upstream = new EmbeddedUpstream(dir, createLogger("silent"));
const socketPath = path.join(dir, "agent.sock");
const part = new AgentSocketPart(socketPath, upstream, createLogger("silent"), new Registry());
try {
  await upstream.start();
  await part.start();
  const base = await median("node -e 0 (baseline)", process.execPath, ["-e", "0"]);
  const version = await median("agentd --version", BIN, ["--version"]);
  const ping = await median("agentd sync ping", BIN, ["sync", "ping", "--socket-path", socketPath]);
  console.log(`ratio: agentd --version / node -e 0 = ${(version / base).toFixed(2)}x`);
  console.log(`ratio: agentd sync ping / node -e 0 = ${(ping / base).toFixed(2)}x (goal: at most 3x)`);
} finally {
  await part.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
