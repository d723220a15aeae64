import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { agentSocketClient, type AgentSocketClient } from "../agentsocket/client.js";
import { notReadyMessage } from "../agentsocket/unit-graph.js";
import {
  CALL_TIMEOUT_MS,
  commandGroup,
  parseDuration,
  printJson,
  printTable,
  runCall,
  withSocketOptions,
  type SocketOptions,
} from "./agent-socket-cli.js";

/** `sync start` polls readiness first after this long (Coder polls every second; starting lower answers fast chains quickly). */
export const POLL_INITIAL_MS = 100;
/** The poll interval doubles up to this: `coder exp sync start`'s fixed one-second poll. */
export const POLL_MAX_MS = 1000;
/** Default `sync start --timeout`. */
export const DEFAULT_START_TIMEOUT = "5m";

const opts = { timeoutMs: CALL_TIMEOUT_MS };

type Body = (client: AgentSocketClient, o: SocketOptions) => Promise<void>;

function sub(group: Command, usage: string, description: string): Command {
  return withSocketOptions(group.command(usage).description(description));
}

function run(body: Body) {
  return (o: SocketOptions) => runCall(o.socketPath, () => body(agentSocketClient(o.socketPath), o));
}

function say(o: SocketOptions, line: string): void {
  if (o.output === "human") process.stdout.write(line + "\n");
}

function timeoutError(unit: string): Error {
  return new Error(`timeout waiting for dependencies of unit '${unit}'`);
}

/**
 * Runs one call of a wait that must end by `deadline` (epoch ms): the call
 * gets at most the time left, and running out of it is the wait's timeout,
 * as when `coder exp sync start`'s context expires.
 */
async function callBefore<T>(deadline: number, unit: string, call: (o: { timeoutMs: number }) => Promise<T>): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) throw timeoutError(unit);
  try {
    return await call({ timeoutMs: Math.min(CALL_TIMEOUT_MS, Math.ceil(left)) });
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.DeadlineExceeded && Date.now() >= deadline) throw timeoutError(unit);
    throw err;
  }
}

/** Polls SyncReady with backoff until the unit is ready; fails once `deadline` (epoch ms) passes. */
async function waitReady(client: AgentSocketClient, unit: string, deadline: number, o: SocketOptions): Promise<void> {
  let delay = POLL_INITIAL_MS;
  let waiting = false;
  while (!(await callBefore(deadline, unit, (co) => client.syncReady({ unit }, co))).ready) {
    if (!waiting) {
      say(o, `Waiting for dependencies of unit '${unit}' to be satisfied...`);
      waiting = true;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timeoutError(unit);
    await sleep(Math.min(delay, remaining));
    delay = Math.min(delay * 2, POLL_MAX_MS);
  }
}

/** Waits until the unit is ready, then starts it; a dependency restarted in between sends it back to waiting. */
async function waitAndStart(client: AgentSocketClient, unit: string, deadline: number, o: SocketOptions): Promise<void> {
  for (;;) {
    await waitReady(client, unit, deadline, o);
    try {
      await callBefore(deadline, unit, (co) => client.syncStart({ unit }, co));
      return;
    } catch (err) {
      if (!(err instanceof ConnectError && err.rawMessage === notReadyMessage(unit))) throw err;
    }
  }
}

/** The epoch-ms deadline of a `--timeout` value (0: none). */
function deadlineOf(timeout: string): number {
  const ms = parseDuration(timeout, "--timeout");
  return ms > 0 ? Date.now() + ms : Infinity;
}

/** `agentd sync`: Coder's `coder exp sync` against the agent socket. */
export function syncCommand(): Command {
  const group = commandGroup("sync", "order startup scripts with units on the agent socket (coder exp sync)");

  sub(group, "ping", "check that the agent socket answers").action(
    run(async (client, o) => {
      await client.ping({}, opts);
      if (o.output === "json") printJson({ ok: true });
      else say(o, "Success");
    }),
  );

  sub(group, "want <unit> <depends-on>", "declare that <unit> waits for <depends-on> to complete").action(
    (unit: string, dependsOn: string, o: SocketOptions) =>
      run(async (client) => {
        await client.syncWant({ unit, dependsOn }, opts);
        if (o.output === "json") printJson({ unit, depends_on: dependsOn });
        else say(o, `Unit '${unit}' now depends on '${dependsOn}'`);
      })(o),
  );

  sub(group, "start <unit>", "wait until the unit's dependencies are complete, then mark it started")
    .option("--timeout <duration>", "give up waiting after this long (0: wait forever)", DEFAULT_START_TIMEOUT)
    .action((unit: string, o: SocketOptions & { timeout: string }) => {
      const deadline = deadlineOf(o.timeout);
      return run(async (client) => {
        say(o, `Starting unit '${unit}'...`);
        await waitAndStart(client, unit, deadline, o);
        if (o.output === "json") printJson({ unit, status: "started" });
        else say(o, `Unit '${unit}' started successfully`);
      })(o);
    });

  sub(group, "wait <unit>", "wait until the unit's dependencies are complete, without starting it")
    .option("--timeout <duration>", "give up waiting after this long (0: wait forever)", DEFAULT_START_TIMEOUT)
    .action((unit: string, o: SocketOptions & { timeout: string }) => {
      const deadline = deadlineOf(o.timeout);
      return run(async (client) => {
        await waitReady(client, unit, deadline, o);
        if (o.output === "json") printJson({ unit, ready: true });
        else say(o, `Dependencies for unit '${unit}' are now satisfied`);
      })(o);
    });

  sub(group, "complete <unit>", "mark the unit completed, releasing the units that want it").action(
    (unit: string, o: SocketOptions) =>
      run(async (client) => {
        await client.syncComplete({ unit }, opts);
        if (o.output === "json") printJson({ unit, status: "completed" });
        else say(o, `Unit '${unit}' completed`);
      })(o),
  );

  sub(group, "ready <unit>", "tell whether every dependency of the unit is complete").action(
    (unit: string, o: SocketOptions) =>
      run(async (client) => {
        const { ready } = await client.syncReady({ unit }, opts);
        if (o.output === "json") printJson({ unit, ready });
        else say(o, ready ? `Unit '${unit}' is ready` : `Unit '${unit}' is not ready`);
      })(o),
  );

  sub(group, "status <unit>", "show the unit's status and dependencies").action((unit: string, o: SocketOptions) =>
    run(async (client) => {
      const res = await client.syncStatus({ unit }, opts);
      const dependencies = res.dependencies.map((d) => ({
        depends_on: d.dependsOn,
        required_status: d.requiredStatus,
        current_status: d.currentStatus,
        is_satisfied: d.isSatisfied,
      }));
      if (o.output === "json") {
        printJson({ unit_name: unit, status: res.status, is_ready: res.isReady, dependencies });
        return;
      }
      printTable(["unit", "status", "ready"], [[unit, res.status || "(not registered)", String(res.isReady)]]);
      if (dependencies.length === 0) return;
      say(o, "");
      printTable(
        ["depends on", "required status", "current status", "satisfied"],
        dependencies.map((d) => [d.depends_on, d.required_status, d.current_status || "(not registered)", String(d.is_satisfied)]),
      );
    })(o),
  );

  sub(group, "list", "list every registered unit").action(
    run(async (client, o) => {
      const { units } = await client.syncList({}, opts);
      const rows = units.map((u) => ({ unit: u.unit, status: u.status, is_ready: u.isReady }));
      if (o.output === "json") printJson(rows);
      else printTable(["unit", "status", "ready"], rows.map((r) => [r.unit, r.status, String(r.is_ready)]));
    }),
  );

  return group;
}
