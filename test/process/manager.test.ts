import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { Registry } from "prom-client";
import type { ChatScope } from "../../src/http/chat.js";
import { createLogger } from "../../src/log.js";
import { ProcessError } from "../../src/process/errors.js";
import { FifoPool } from "../../src/process/fifo-pool.js";
import { FOLLOW_QUEUE_MAX_BYTES } from "../../src/process/follow-queue.js";
import {
  processInfo,
  ProcessManager,
  REAP_AFTER_MS,
  type ProcessExitEvent,
  type ProcessManagerOptions,
} from "../../src/process/manager.js";
import { tempDir } from "../helpers/agentd.js";
import { alive, readPidFile, waitUntil } from "./api-client.js";

const CHAT_A = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const CHAT_B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const NO_CHAT: ChatScope = { chatId: undefined, ancestorChatIds: [] };
const managers: ProcessManager[] = [];
const dirs: string[] = [];

function manager(opts: Partial<ProcessManagerOptions> = {}): ProcessManager {
  const m = new ProcessManager({ log: createLogger("silent"), registry: new Registry(), maxProcesses: 64, ...opts });
  managers.push(m);
  return m;
}

function dir(): string {
  const d = tempDir("agentd-proc-");
  dirs.push(d);
  return d;
}

after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function run(m: ProcessManager, command: string, extra: object = {}, scope = NO_CHAT) {
  const { id } = await m.startProcess({ command, ...extra }, scope);
  return { id, ...(await m.output(id, scope, { wait: true })) };
}

describe("process manager: spawning and output", () => {
  it("captures stdout and stderr in one buffer in write order", async () => {
    const r = await run(manager(), "echo one; echo two >&2; echo three; echo four >&2");
    assert.equal(r.output, "one\ntwo\nthree\nfour\n");
    assert.equal(r.exitCode, 0);
    assert.equal(r.running, false);
  });

  it("reports the exit status, and -1 when a signal killed the process", async () => {
    const m = manager();
    assert.equal((await run(m, "exit 42")).exitCode, 42);
    const { id } = await m.startProcess({ command: "sleep 300" }, NO_CHAT);
    m.signal(id, NO_CHAT, "kill");
    assert.equal((await m.output(id, NO_CHAT, { wait: true })).exitCode, -1);
  });

  it("captures the shell's own syntax errors", async () => {
    const r = await run(manager(), "echo hi; if then");
    assert.match(r.output, /Syntax error/);
    assert.doesNotMatch(r.output, /hi/);
    assert.equal(r.exitCode, 2);
  });

  it("stops waiting for output 5 s after exit when a background child holds the pipe", async () => {
    const m = manager();
    const [clean, failed] = await Promise.all([
      run(m, "sleep 60 & echo started"),
      run(m, "sleep 60 & exit 3"),
    ]);
    assert.equal(clean.output, "started\n");
    assert.equal(clean.exitCode, -1, "a clean exit whose pipe stayed open counts as a failed wait, as in Go");
    assert.equal(failed.exitCode, 3);
  });

  it("runs with stdin at end of file", async () => {
    assert.equal((await run(manager(), "cat; echo done")).output, "done\n");
  });

  it("applies env in order: agent env, hook, request env, chat id", async () => {
    const m = manager({ envHook: (env) => ({ ...env, FROM_HOOK: "hook", KEY: "from_hook" }) });
    const scope = { chatId: CHAT_A, ancestorChatIds: [] };
    const r = await run(m, 'echo "$PATH|$FROM_HOOK|$KEY|$CODER_CHAT_ID"', { env: { KEY: "from_request" } }, scope);
    assert.equal(r.output, `${process.env.PATH}|hook|from_request|${CHAT_A}\n`);
  });

  it("keeps the agent env when the hook throws", async () => {
    const m = manager({
      envHook: () => {
        throw new Error("boom");
      },
    });
    assert.equal((await run(m, 'echo "$PATH"')).output, `${process.env.PATH}\n`);
  });

  it("resolves the workdir: request verbatim, else configured, else home", async () => {
    const home = dir();
    const configured = dir();
    const req = dir();
    const m = manager({ workdir: configured, homeDir: () => home });
    assert.equal((await run(m, "pwd", { workdir: req })).output, `${req}\n`);
    assert.equal((await run(m, "pwd")).output, `${configured}\n`);
    const fallback = manager({ workdir: path.join(configured, "missing"), homeDir: () => home });
    assert.equal((await run(fallback, "pwd")).output, `${home}\n`);
    assert.equal(fallback.list(NO_CHAT)[0]?.meta.workdir, home);
  });

  it("inherits agentd's directory and reports none when no home directory resolves", async () => {
    const m = manager({
      homeDir: () => {
        throw new Error("no passwd entry");
      },
    });
    assert.equal((await run(m, "pwd")).output, `${process.cwd()}\n`);
    const row = processInfo(m.list(NO_CHAT)[0]!);
    assert.equal("workdir" in row, false);
  });

  it("fails the start for a missing workdir with Go's error text", async () => {
    const missing = path.join(dir(), "nope");
    await assert.rejects(manager().startProcess({ command: "true", workdir: missing }, NO_CHAT), (err) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.status, 500);
      assert.equal(err.message, "Failed to start process.");
      assert.equal(err.detail, `start process: chdir ${missing}: no such file or directory`);
      return true;
    });
  });
});

describe("process manager: without FIFOs (no mkfifo)", () => {
  const noFifos = () => manager({ fifos: new FifoPool(createLogger("silent"), { size: 4, mkfifo: "/nonexistent/mkfifo" }) });

  it("still captures both streams in order, syntax errors and exit codes", async () => {
    const m = noFifos();
    assert.equal((await run(m, "echo one; echo two >&2; echo three")).output, "one\ntwo\nthree\n");
    const bad = await run(m, "if then");
    assert.match(bad.output, /Syntax error/);
    assert.equal(bad.exitCode, 2);
    assert.equal((await run(m, "exit 42")).exitCode, 42);
    const { id } = await m.startProcess({ command: "sleep 300" }, NO_CHAT);
    m.signal(id, NO_CHAT, "kill");
    assert.equal((await m.output(id, NO_CHAT, { wait: true })).exitCode, -1);
  });
});

describe("process manager: output pipes", () => {
  it("gives the child one pipe as stdout and stderr", async () => {
    const r = await run(manager(), 'a=$(readlink /proc/$$/fd/1); b=$(readlink /proc/$$/fd/2); [ "$a" = "$b" ] && echo same');
    assert.equal(r.output, "same\n");
  });

  it("reuses output pipes without mixing processes' output", async () => {
    const m = manager();
    const outputs = await Promise.all(Array.from({ length: 40 }, (_, i) => run(m, `echo job-${i}`)));
    outputs.forEach((r, i) => assert.equal(r.output, `job-${i}\n`));
    for (let i = 0; i < 40; i++) assert.equal((await run(m, `echo again-${i}`)).output, `again-${i}\n`);
  });
});

describe("process manager: exit event", () => {
  it("emits the chat scope and the workdir as requested", async () => {
    const m = manager();
    const events: ProcessExitEvent[] = [];
    m.on("exit", (e) => events.push(e));
    const d = dir();
    const scope = { chatId: CHAT_A, ancestorChatIds: [CHAT_B] };
    const a = await run(m, "true", { workdir: d }, scope);
    const b = await run(m, "true", {}, scope);
    assert.deepEqual(events, [
      { id: a.id, chatId: CHAT_A, ancestorChatIds: [CHAT_B], workdir: d },
      { id: b.id, chatId: CHAT_A, ancestorChatIds: [CHAT_B], workdir: undefined },
    ]);
  });
});

describe("process manager: list, reaping and chat scope", () => {
  it("reaps processes exited more than five minutes ago, on list", async () => {
    let now = Date.now();
    const m = manager({ now: () => now });
    const { id } = await run(m, "true");
    now += REAP_AFTER_MS;
    assert.equal(m.list(NO_CHAT).length, 1);
    now += 1000;
    assert.equal(m.list(NO_CHAT).length, 0);
    assert.throws(() => m.get(id, NO_CHAT), /not found/);
  });

  it("forgets the oldest exited process past the retention bound, and its client token", async () => {
    const registry = new Registry();
    const m = manager({ maxExitedRetained: 3, registry });
    const first = await run(m, "true", { clientToken: "old" });
    for (let i = 0; i < 3; i++) await run(m, "true");
    assert.throws(() => m.get(first.id, NO_CHAT), /not found/);
    assert.equal(m.list(NO_CHAT).length, 3);
    const again = await m.startProcess({ command: "true", clientToken: "old" }, NO_CHAT);
    assert.notEqual(again.id, first.id);
    assert.match(await registry.metrics(), /^agentd_process_evicted_total 1$/m);
  });

  it("hides other chats' processes and lets any chat read chatless ones", async () => {
    const m = manager();
    const a = { chatId: CHAT_A, ancestorChatIds: [] };
    const b = { chatId: CHAT_B, ancestorChatIds: [] };
    const own = await run(m, "echo a", {}, a);
    const shared = await run(m, "echo none");
    assert.equal(m.list(a).length, 1);
    assert.equal(m.list(b).length, 0);
    assert.equal(m.list(NO_CHAT).length, 2);
    await assert.rejects(m.output(own.id, b), /not found/);
    assert.equal((await m.output(shared.id, b)).output, "none\n");
  });
});

describe("process manager: extras", () => {
  it("kills the whole group when timeout_ms expires", async () => {
    const d = dir();
    const pidfile = path.join(d, "pid");
    const m = manager();
    // Long enough that a loaded machine's shell writes the pid file before the kill.
    const { id } = await m.startProcess({ command: `sleep 300 & echo $! > ${pidfile}; wait`, timeoutMs: 2000 }, NO_CHAT);
    const grandchild = await readPidFile(pidfile);
    const r = await m.output(id, NO_CHAT, { wait: true });
    assert.equal(r.running, false);
    assert.equal(r.exitCode, -1);
    await waitUntil(() => !alive(grandchild), "the grandchild to die");
  });

  it("returns the same process for the same client token, 409 for a different command", async () => {
    const m = manager();
    const first = await m.startProcess({ command: "sleep 300", clientToken: "tok" }, NO_CHAT);
    const again = await m.startProcess({ command: "sleep 300", clientToken: "tok" }, NO_CHAT);
    assert.equal(again.id, first.id);
    await assert.rejects(m.startProcess({ command: "sleep 301", clientToken: "tok" }, NO_CHAT), (err) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.status, 409);
      assert.equal(err.message, "Client token was already used to start a process with different parameters.");
      assert.match(err.detail ?? "", /^client token "tok" belongs to process "[0-9a-f-]+", started with a different command or workdir$/);
      return true;
    });
    await assert.rejects(m.startProcess({ command: "sleep 300", clientToken: "tok", workdir: "/" }, NO_CHAT), /different/);
    m.signal(first.id, NO_CHAT, "kill");
  });

  it("refuses starts past the running limit with 429", async () => {
    const m = manager({ maxProcesses: 2 });
    const a = await m.startProcess({ command: "sleep 300" }, NO_CHAT);
    await m.startProcess({ command: "sleep 300" }, NO_CHAT);
    await assert.rejects(m.startProcess({ command: "true" }, NO_CHAT), (err) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.status, 429);
      return true;
    });
    m.signal(a.id, NO_CHAT, "kill");
    await m.output(a.id, NO_CHAT, { wait: true });
    const c = await run(m, "echo ok");
    assert.equal(c.output, "ok\n");
  });

  it("runs under a pty when asked, with the exit code reported", async () => {
    const r = await run(manager(), "test -t 1 && echo is-a-tty; exit 3", { pty: true });
    assert.match(r.output, /is-a-tty/);
    assert.equal(r.exitCode, 3);
  });

  it("keeps the last output of a pty process that exits right after writing", async () => {
    const m = manager();
    for (let i = 0; i < 5; i++) {
      const r = await run(m, "seq 1 20000", { pty: true });
      assert.ok(r.output.endsWith("19999\r\n20000\r\n"), `run ${i} ended with ${JSON.stringify(r.output.slice(-20))}`);
      assert.equal(r.exitCode, 0);
    }
  });

  it("reports -1 for a pty command killed by a signal it did not get from agentd", async () => {
    const m = manager();
    assert.equal((await run(m, "kill -9 $$", { pty: true })).exitCode, -1);
    assert.equal((await run(m, "kill -TERM $$", { pty: true })).exitCode, -1);
    assert.equal((await run(m, "exit 137", { pty: true })).exitCode, 137);
  });

  it("keeps the last output of 40 pty processes that exit right after writing", async () => {
    const m = manager();
    for (let i = 0; i < 40; i++) {
      const r = await run(m, i % 2 ? "seq 1 20000" : "printf 'a%.0s' $(seq 1 1500); echo END", { pty: true });
      const end = i % 2 ? "19999\r\n20000\r\n" : "aaaEND\r\n";
      assert.ok(r.output.endsWith(end), `run ${i} ended with ${JSON.stringify(r.output.slice(-20))}`);
    }
  });

  it("keeps all the output of pty processes whose whole output fits in the terminal buffer", async () => {
    const m = manager();
    const want = Array.from({ length: 2000 }, (_, i) => `${i + 1}\r\n`).join("");
    for (let i = 0; i < 10; i++) {
      const r = await run(m, "seq 1 2000", { pty: true });
      assert.equal(r.output, want, `run ${i}`);
      assert.equal(r.exitCode, 0);
    }
  });

  it("keeps the last output of a pty process that filled the terminal buffer before it exited", async () => {
    const r = await run(manager(), "seq 1 100000; exit 4", { pty: true });
    assert.ok(r.output.endsWith("99999\r\n100000\r\n"), `ended with ${JSON.stringify(r.output.slice(-20))}`);
    assert.equal(r.exitCode, 4);
  });

  it("keeps a pty's output exact when the command changed the terminal's modes", async () => {
    const m = manager();
    assert.equal((await run(m, "stty raw -echo; printf 'raw-END'", { pty: true })).output, "raw-END");
    assert.equal((await run(m, "stty -opost; echo no-crlf", { pty: true })).output, "no-crlf\n");
    assert.equal((await run(m, "stty olcuc; echo upper", { pty: true })).output, "UPPER\r\n");
  });

  it("delivers signals to a pty process group", async () => {
    const m = manager();
    const { id } = await m.startProcess({ command: "sleep 300", pty: true }, NO_CHAT);
    m.signal(id, NO_CHAT, "terminate");
    const r = await m.output(id, NO_CHAT, { wait: true });
    assert.equal(r.running, false);
    assert.equal(r.exitCode, -1);
  });
});

describe("process manager: follow", () => {
  it("streams live chunks and ends with the exit code", async () => {
    const m = manager();
    const { id } = await m.startProcess({ command: "echo first; sleep 0.3; echo second; exit 7" }, NO_CHAT);
    const { queue } = m.follow(id, NO_CHAT);
    let text = "";
    let exit: number | undefined;
    for await (const item of queue.drain()) {
      if (item.kind === "data") text += item.data.toString();
      else exit = item.exitCode;
    }
    assert.equal(text, "first\nsecond\n");
    assert.equal(exit, 7);
  });
});

describe("process manager: slow followers", () => {
  it("bounds a follower that does not read and accounts every byte as delivered or dropped", async () => {
    const m = manager();
    const total = 8_000_000;
    const { id } = await m.startProcess({ command: `head -c ${total} /dev/zero` }, NO_CHAT);
    const { queue } = m.follow(id, NO_CHAT);
    await m.output(id, NO_CHAT, { wait: true });
    let delivered = 0;
    let dropped = 0;
    for await (const item of queue.drain()) {
      dropped += item.droppedBytes;
      if (item.kind === "data") delivered += item.data.length;
    }
    assert.ok(delivered <= FOLLOW_QUEUE_MAX_BYTES);
    assert.ok(dropped > 0);
    assert.equal(delivered + dropped, total);
  });

  it("starts a late follower with the retained output and counts the omitted middle as dropped", async () => {
    const m = manager();
    const { id } = await run(m, "head -c 100000 /dev/zero");
    const { queue } = m.follow(id, NO_CHAT);
    const items = [];
    for await (const item of queue.drain()) items.push(item);
    assert.deepEqual(
      items.map((i) => [i.kind, i.kind === "data" ? i.data.length : i.exitCode, i.droppedBytes]),
      [
        ["data", 16384, 0],
        ["data", 16384, 100000 - 32768],
        ["exit", 0, 0],
      ],
    );
  });
});

describe("process manager: waiters", () => {
  it("keeps no memory for waits that ended before the process exited", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const m = manager();
    const { id } = await m.startProcess({ command: "sleep 300" }, NO_CHAT);
    const waits = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const gone = new AbortController();
        const pending = m.output(id, NO_CHAT, { wait: true, signal: gone.signal });
        gone.abort();
        assert.equal((await pending).running, true);
      }
    };
    await waits(1000);
    gc();
    const before = process.memoryUsage().heapUsed;
    await waits(20_000);
    gc();
    const grownMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    assert.ok(grownMiB < 8, `heap grew ${grownMiB.toFixed(1)} MiB over 20000 ended waits`);
    m.signal(id, NO_CHAT, "kill");
  });
});

describe("process manager: close", () => {
  it("refuses new starts and kills every process group, grandchildren included", async () => {
    const d = dir();
    const pidfile = path.join(d, "pid");
    const m = manager();
    const { id } = await m.startProcess({ command: `trap '' TERM; sleep 300 & echo $! > ${pidfile}; wait` }, NO_CHAT);
    await waitUntil(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, "utf8").trim() !== "", "the pid file");
    const grandchild = Number(fs.readFileSync(pidfile, "utf8"));
    await m.close();
    assert.equal(m.get(id, NO_CHAT).running, false);
    await waitUntil(() => !alive(grandchild), "the grandchild to die");
    await assert.rejects(m.startProcess({ command: "true" }, NO_CHAT), (err) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.detail, "manager is closed");
      return true;
    });
  });
});
