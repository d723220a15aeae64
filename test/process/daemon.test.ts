import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ProcessService, Signal } from "../../gen/agentd/process/v1/process_pb.js";
import { startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";
import { alive, ProcessApi, readPidFile, waitUntil } from "./api-client.js";

const CHAT_A = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const CHAT_B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

const dirs: string[] = [];
const daemons: RunningAgentd[] = [];
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = tempDir("agentd-procd-");
  dirs.push(d);
  return d;
}

async function daemon(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningAgentd> {
  const d = await startAgentd({ args, env });
  dirs.push(d.dir);
  daemons.push(d);
  return d;
}

describe("default working directory", () => {
  it("is the home directory when --workdir is not set", async () => {
    const home = scratch();
    const api = new ProcessApi(await daemon([], { HOME: home }));
    const r = await api.run("pwd");
    assert.equal(r.output, `${home}\n`);
    assert.equal((await api.list()).json.processes[0]?.workdir, home);
  });

  it("falls back to home when the configured --workdir does not exist", async () => {
    const home = scratch();
    const api = new ProcessApi(await daemon(["--workdir", path.join(home, "missing")], { HOME: home }));
    assert.equal((await api.run("pwd")).output, `${home}\n`);
  });
});

describe("running-process limit", () => {
  it("answers 429 past --max-processes and accepts again once one exits", async () => {
    const api = new ProcessApi(await daemon(["--max-processes", "2"]));
    const a = await api.startOk("sleep 300");
    await api.startOk("sleep 300");
    const r = await api.start({ command: "true" });
    assert.equal(r.status, 429);
    assert.equal(r.json.message, "Too many running processes.");
    assert.match(r.json.detail ?? "", /at most 2 processes may run at once \(--max-processes\)/);
    await api.signal(a, { signal: "kill" });
    await api.output(a, true);
    assert.equal((await api.start({ command: "true" })).status, 200);
  });
});

/** How many file descriptors `pid` has open. */
function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Runs `count` processes to completion, `parallel` at a time, failing on any lost output. */
async function runMany(api: ProcessApi, count: number, parallel: number, extra: object = {}): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const r = await api.run(`echo run-${i}`, extra);
      if (r.exit_code !== 0 || !r.output.includes(`run-${i}`)) throw new Error(`run ${i}: ${JSON.stringify(r)}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

describe("file descriptors", () => {
  it("returns to its start level after 2000 short processes", async () => {
    const agentd = await daemon();
    const api = new ProcessApi(agentd);
    await runMany(api, 50, 8);
    const start = openFds(agentd.proc.pid!);
    await runMany(api, 2000, 8);
    await waitUntil(() => openFds(agentd.proc.pid!) <= start, `the open fd count to return to ${start}`);
  });

  it("returns to its start level after pty processes", async () => {
    const agentd = await daemon();
    const api = new ProcessApi(agentd);
    await runMany(api, 5, 4, { pty: true });
    const start = openFds(agentd.proc.pid!);
    await runMany(api, 100, 4, { pty: true });
    await waitUntil(() => openFds(agentd.proc.pid!) <= start, `the open fd count to return to ${start}`);
  });
});

describe("shutdown", () => {
  it("kills every process group, grandchildren included, on SIGTERM", async () => {
    const agentd = await startAgentd();
    dirs.push(agentd.dir);
    const api = new ProcessApi(agentd);
    const pidfile = path.join(scratch(), "pid");
    await api.startOk(`sleep 300 & echo $! > ${pidfile}; wait`);
    const grandchild = await readPidFile(pidfile);
    assert.equal(alive(grandchild), true);
    assert.equal(await agentd.stop("SIGTERM"), 0);
    await waitUntil(() => !alive(grandchild), "the grandchild to be killed");
  });

  it("answers blocked wait=true requests with a snapshot instead of cutting them off", async () => {
    const agentd = await startAgentd();
    dirs.push(agentd.dir);
    const api = new ProcessApi(agentd);
    const id = await api.startOk("echo before-shutdown; sleep 300");
    await waitUntil(async () => (await api.output(id)).json.output !== "", "the first output");
    const pending = api.output(id, true);
    await agentd.waitForLog((l) => l.msg === "output waiting for exit" && l.id === id);
    const stopped = agentd.stop("SIGTERM");
    const r = await pending;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { output: "before-shutdown\n", running: true });
    assert.equal(await stopped, 0);
  });
});

describe("Connect ProcessService", () => {
  async function client() {
    const agentd = await daemon();
    const transport = createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" });
    return { agentd, rpc: createClient(ProcessService, transport), api: new ProcessApi(agentd) };
  }

  it("shares processes with the JSON API", async () => {
    const { rpc, api } = await client();
    const { id, started } = await rpc.start({ command: "echo via-connect; exit 4", chatId: CHAT_A });
    assert.equal(started, true);
    const out = await rpc.output({ id, wait: true, chatId: CHAT_A });
    assert.equal(out.output, "via-connect\n");
    assert.equal(out.running, false);
    assert.equal(out.exitCode, 4);
    const rest = await api.asChat(CHAT_A).output(id);
    assert.deepEqual(rest.json, { output: "via-connect\n", running: false, exit_code: 4 });
    const listed = await rpc.list({ chatId: CHAT_A });
    assert.deepEqual(
      listed.processes.map((p) => p.id),
      [id],
    );
    assert.equal((await rpc.list({ chatId: CHAT_B })).processes.length, 0);
  });

  it("reads the chat scope from Coder-Chat-Id when the request has no chat_id", async () => {
    const { rpc, api } = await client();
    const { id } = await rpc.start({ command: "printf %s \"$CODER_CHAT_ID\"" }, { headers: { "Coder-Chat-Id": CHAT_B } });
    const out = await rpc.output({ id, wait: true }, { headers: { "Coder-Chat-Id": CHAT_B } });
    assert.equal(out.output, CHAT_B);
    assert.deepEqual(
      (await api.asChat(CHAT_B).list()).json.processes.map((p) => p.id),
      [id],
    );
    assert.equal((await api.asChat(CHAT_A).output(id)).status, 404);
  });

  it("follows live output and ends with the exit code", async () => {
    const { rpc } = await client();
    const { id } = await rpc.start({ command: "echo one; sleep 0.3; echo two; exit 9" });
    let text = "";
    let exitCode: number | undefined;
    for await (const msg of rpc.follow({ id })) {
      text += Buffer.from(msg.data).toString();
      if (msg.exited) exitCode = msg.exitCode;
    }
    assert.equal(text, "one\ntwo\n");
    assert.equal(exitCode, 9);
  });

  it("maps errors to Connect codes", async () => {
    const { rpc } = await client();
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        return ConnectError.from(err).code;
      }
      return undefined;
    };
    assert.equal(await code(rpc.output({ id: "nope" })), Code.NotFound);
    assert.equal(await code(rpc.start({ command: "" })), Code.InvalidArgument);
    const { id } = await rpc.start({ command: "true", clientToken: "t1" });
    assert.equal(await code(rpc.start({ command: "false", clientToken: "t1" })), Code.AlreadyExists);
    await rpc.output({ id, wait: true });
    assert.equal(await code(rpc.signal({ id, signal: Signal.KILL })), Code.FailedPrecondition);
    assert.equal(await code(rpc.signal({ id, signal: Signal.UNSPECIFIED })), Code.InvalidArgument);
    const running = await rpc.start({ command: "sleep 300", chatId: CHAT_A });
    assert.equal(await code(rpc.signal({ id: running.id, signal: Signal.KILL, chatId: CHAT_B })), Code.NotFound);
    const sent = await rpc.signal({ id: running.id, signal: Signal.TERMINATE, chatId: CHAT_A });
    assert.equal(sent.message, `Signal "terminate" sent to process "${running.id}".`);
  });

  it("answers ResourceExhausted past the running limit", async () => {
    const agentd = await daemon(["--max-processes", "1"]);
    const rpc = createClient(ProcessService, createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" }));
    const { id } = await rpc.start({ command: "sleep 300" });
    await assert.rejects(rpc.start({ command: "true" }), (err) => ConnectError.from(err).code === Code.ResourceExhausted);
    await rpc.signal({ id, signal: Signal.KILL });
  });
});
