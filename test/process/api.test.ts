import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";
import { alive, ProcessApi, readPidFile, waitUntil } from "./api-client.js";

const CHAT_A = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const CHAT_B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

const dirs: string[] = [];
function scratch(): string {
  const d = tempDir("agentd-procapi-");
  dirs.push(d);
  return d;
}

let agentd: RunningAgentd;
let api: ProcessApi;
let home: string;
let configured: string;

before(async () => {
  home = scratch();
  configured = scratch();
  agentd = await startAgentd({ args: ["--workdir", configured], env: { HOME: home } });
  api = new ProcessApi(agentd);
});

after(async () => {
  await agentd?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("access log", () => {
  it("includes the chat id of a chat request", async () => {
    const r = await api.asChat(CHAT_A).list();
    assert.equal(r.status, 200);
    await agentd.waitForLog((l) => l.msg === "process api request" && l.chat_id === CHAT_A && l.path === "/api/v0/processes/list");
  });
});

describe("POST /start", () => {
  it("starts foreground and background commands and returns a UUIDv4 id", async () => {
    for (const background of [false, true]) {
      const r = await api.start({ command: "echo hello", background });
      assert.equal(r.status, 200);
      assert.equal(r.contentType, "application/json; charset=utf-8");
      assert.equal(r.json.started, true);
      assert.match(r.json.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(r.text, `{"id":"${r.json.id}","started":true}\n`);
    }
  });

  it("echoes background in list and changes nothing else", async () => {
    const id = await api.startOk("echo bg", { background: true });
    await api.output(id, true);
    const row = (await api.list()).json.processes.find((p) => p.id === id);
    assert.equal(row?.background, true);
    assert.equal(row?.running, false);
  });

  it("answers 400 Command is required for an empty command", async () => {
    const r = await api.start({ command: "" });
    assert.equal(r.status, 400);
    assert.equal(r.text, '{"message":"Command is required."}\n');
  });

  it("runs in the requested workdir verbatim", async () => {
    const d = scratch();
    const r = await api.run("touch marker.txt && ls marker.txt", { workdir: d });
    assert.equal(r.exit_code, 0);
    assert.match(r.output, /marker\.txt/);
    assert.ok(fs.existsSync(path.join(d, "marker.txt")));
  });

  it("runs in the configured --workdir when the request has none, and lists it", async () => {
    const r = await api.run("pwd");
    assert.equal(r.output, `${configured}\n`);
    const row = (await api.list()).json.processes.find((p) => p.id === r.id);
    assert.equal(row?.workdir, configured);
  });

  it("passes the request env, and CODER_CHAT_ID for chat requests", async () => {
    const r = await api.asChat(CHAT_A).run('printf "%s|%s" "$KEY" "$CODER_CHAT_ID"', { env: { KEY: "value" } });
    assert.equal(r.output, `value|${CHAT_A}`);
    assert.equal(r.exit_code, 0);
  });

  it("answers 500 with the OS error for a missing workdir", async () => {
    const missing = path.join(scratch(), "missing");
    const r = await api.start({ command: "true", workdir: missing });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, {
      message: "Failed to start process.",
      detail: `start process: chdir ${missing}: no such file or directory`,
    });
  });
});

describe("NUL bytes in a start request", () => {
  const failed = (detail: string) => ({ message: "Failed to start process.", detail });

  it("answers Go's environment error for a NUL in an env value, before the workdir is checked", async () => {
    const r = await api.start({ command: "true", env: { KEY: "a\u0000b" }, workdir: "/nonexistent" });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, failed("start process: exec: environment variable contains NUL"));
  });

  it("answers Go's exec error for a NUL in the command", async () => {
    const r = await api.start({ command: "echo a\u0000b" });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, failed("start process: fork/exec sh: invalid argument"));
  });

  it("answers Go's chdir error for a NUL in the workdir", async () => {
    const r = await api.start({ command: "true", workdir: "/tmp\u0000x" });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, failed("start process: chdir /tmp\u0000x: invalid argument"));
  });
});

describe("request bodies are decoded as Go's json.Decoder does", () => {
  const invalid = (detail: string) => ({ message: "Request body must be valid JSON.", detail });

  it("rejects an empty body with detail EOF", async () => {
    const r = await api.start("");
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, invalid("EOF"));
  });

  it("rejects malformed JSON with the decoder's error", async () => {
    assert.deepEqual((await api.start("{invalid json")).json, invalid("invalid character 'i' looking for beginning of object key string"));
    assert.deepEqual((await api.start('{"command":"x"')).json, invalid("unexpected EOF"));
    assert.deepEqual((await api.start('{"command" "x"}')).json, invalid("invalid character '\"' after object key"));
    assert.equal((await api.start("{invalid json")).status, 400);
  });

  it("rejects a type mismatch", async () => {
    const r = await api.start('{"command": 5}');
    assert.equal(r.status, 400);
    assert.deepEqual(
      r.json,
      invalid("json: cannot unmarshal number into Go struct field StartProcessRequest.command of type string"),
    );
    const arr = await api.start("[]");
    assert.deepEqual(arr.json, invalid("json: cannot unmarshal array into Go value of type workspacesdk.StartProcessRequest"));
  });

  it("reads only the first value, matches keys case-insensitively and ignores unknown ones", async () => {
    const r = await api.start('{"COMMAND":"echo lenient","Unknown":[1,{"x":null}]} trailing garbage');
    assert.equal(r.status, 200);
    assert.equal((await api.output(r.json.id, true)).json.output, "lenient\n");
  });

  it("treats null as the zero value", async () => {
    assert.deepEqual((await api.start("null")).json, { message: "Command is required." });
    assert.deepEqual((await api.start('{"command":null}')).json, { message: "Command is required." });
  });

  it("answers 413 for a body over 1 MiB", async () => {
    const r = await api.start({ command: "true", pad: "x".repeat(1 << 20) });
    assert.equal(r.status, 413);
    assert.deepEqual(r.json, { message: "Request body must be at most 1048576 bytes." });
  });

  it("answers unknown paths with chi's plain 404 and wrong methods with 405", async () => {
    const nf = await api.request("GET", "/nope/nope/nope");
    assert.equal(nf.status, 404);
    assert.equal(nf.text, "404 page not found\n");
    assert.equal((await api.request("GET", "/start")).status, 405);
  });
});

describe("GET /list", () => {
  it("returns [] (never null) with no processes, then filters by chat", async () => {
    const fresh = await startAgentd();
    try {
      const own = new ProcessApi(fresh);
      const r = await own.list();
      assert.equal(r.status, 200);
      assert.equal(r.text, '{"processes":[]}\n');
      const a = "0a0a0a0a-0000-4000-8000-000000000001";
      const b = "0b0b0b0b-0000-4000-8000-000000000002";
      await own.asChat(a).startOk("true");
      await own.asChat(b).startOk("true");
      await own.asChat(a).startOk("true");
      await own.startOk("true");
      assert.equal((await own.asChat(a).list()).json.processes.length, 2);
      assert.equal((await own.asChat(a.toUpperCase()).list()).json.processes.length, 2);
      assert.equal((await own.asChat(b).list()).json.processes.length, 1);
      assert.equal((await own.asChat(CHAT_A).list()).json.processes.length, 0);
      assert.equal((await own.list()).json.processes.length, 4);
    } finally {
      await fresh.stop();
      fs.rmSync(fresh.dir, { recursive: true, force: true });
    }
  });

  it("sorts running first, then newest first, capped at 10", async () => {
    const chat = "0c0c0c0c-0000-4000-8000-000000000003";
    const c = api.asChat(chat);
    for (let i = 0; i < 12; i++) await c.run("true");
    const running = await c.startOk("sleep 300");
    const rows = (await c.list()).json.processes;
    assert.equal(rows.length, 10);
    assert.equal(rows[0]?.id, running);
    assert.equal(rows[0]?.running, true);
    assert.equal(rows[0]?.exit_code, undefined);
    assert.equal(rows[0]?.exited_at_unix, undefined);
    for (let i = 2; i < rows.length; i++) assert.ok(rows[i - 1]!.started_at_unix >= rows[i]!.started_at_unix);
    for (const r of rows.slice(1)) {
      assert.equal(r.running, false);
      assert.equal(r.exit_code, 0);
      assert.equal(typeof r.exited_at_unix, "number");
    }
    assert.equal((await c.signal(running, { signal: "kill" })).status, 200);
  });

  it("lists the fields in Coder's order with omitempty", async () => {
    const chat = "0d0d0d0d-0000-4000-8000-000000000004";
    const id = (await api.asChat(chat).run("exit 3")).id;
    const text = (await api.asChat(chat).list()).text;
    assert.match(
      text,
      new RegExp(
        `^\\{"processes":\\[\\{"id":"${id}","command":"exit 3","workdir":"[^"]+","background":false,"running":false,"exit_code":3,"started_at_unix":\\d+,"exited_at_unix":\\d+\\}\\]\\}\\n$`,
      ),
    );
  });
});

describe("GET /{id}/output", () => {
  it("returns the output of an exited process", async () => {
    const r = await api.run("echo done");
    assert.deepEqual(r, { id: r.id, output: "done\n", running: false, exit_code: 0 });
  });

  it("reports a running process without an exit code", async () => {
    const id = await api.startOk("sleep 300");
    const r = await api.output(id);
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"output":"","running":true}\n');
    await api.signal(id, { signal: "kill" });
  });

  it("answers 404 for an unknown id", async () => {
    const r = await api.output("does-not-exist");
    assert.equal(r.status, 404);
    assert.equal(r.text, '{"message":"Process \\"does-not-exist\\" not found."}\n');
  });

  it("hides a chat's process from other chats but not from non-chat requests", async () => {
    const id = (await api.asChat(CHAT_A).run("echo mine")).id;
    const other = await api.asChat(CHAT_B).output(id);
    assert.equal(other.status, 404);
    assert.equal(other.json.message, `Process "${id}" not found.`);
    assert.equal((await api.output(id)).status, 200);
    assert.equal((await api.asChat(CHAT_A).output(id)).status, 200);
    const chatless = (await api.run("echo shared")).id;
    assert.equal((await api.asChat(CHAT_B).output(chatless)).json.output, "shared\n");
  });

  it("blocks with wait=true until the process exits", async () => {
    const id = await api.startOk("echo hello-wait && sleep 0.3");
    const r = await api.output(id, true);
    assert.deepEqual(r.json, { output: "hello-wait\n", running: false, exit_code: 0 });
  });

  it("blocks only for exactly wait=true", async () => {
    const id = await api.startOk("sleep 300");
    const r = await api.request("GET", `/${id}/output?wait=1`);
    assert.equal(r.json.running, true);
    await api.signal(id, { signal: "kill" });
  });

  it("returns at once with wait=true for an exited process", async () => {
    const r = await api.run("echo done");
    assert.equal((await api.output(r.id, true)).json.output, "done\n");
  });

  it("stops waiting when the client goes away", async () => {
    const id = await api.startOk("sleep 300");
    const ctl = new AbortController();
    const pending = api.output(id, true, ctl.signal);
    await agentd.waitForLog((l) => l.msg === "output waiting for exit" && l.id === id);
    ctl.abort();
    await assert.rejects(pending);
    const r = await api.output(id);
    assert.equal(r.json.running, true);
    await api.signal(id, { signal: "kill" });
  });

  it("wakes every concurrent waiter when the process is killed", async () => {
    const id = await api.startOk("sleep 300");
    const waiters = [api.output(id, true), api.output(id, true)];
    await waitUntil(
      () => agentd.logs.filter((l) => l.msg === "output waiting for exit" && l.id === id).length === 2,
      "both waiters to block",
    );
    assert.equal((await api.signal(id, { signal: "kill" })).status, 200);
    for (const w of await Promise.all(waiters)) {
      assert.equal(w.status, 200);
      assert.equal(w.json.running, false);
      assert.equal(w.json.exit_code, -1);
    }
  });
});

describe("POST /{id}/signal", () => {
  it("kills and terminates running processes", async () => {
    for (const signal of ["kill", "terminate"]) {
      const id = await api.startOk("sleep 300");
      const r = await api.signal(id, { signal });
      assert.equal(r.status, 200);
      assert.equal(r.text, `{"message":"Signal \\"${signal}\\" sent to process \\"${id}\\"."}\n`);
      const out = await api.output(id, true);
      assert.equal(out.json.running, false);
      assert.equal(out.json.exit_code, -1);
    }
  });

  it("answers 404 for an unknown id, 409 for an exited process", async () => {
    const nf = await api.signal("nope", { signal: "kill" });
    assert.equal(nf.status, 404);
    assert.deepEqual(nf.json, { message: 'Process "nope" not found.' });
    const { id } = await api.run("true");
    const r = await api.signal(id, { signal: "kill" });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json, { message: `Process "${id}" is not running.` });
  });

  it("validates the signal before looking up the process", async () => {
    const empty = await api.signal("nope", { signal: "" });
    assert.equal(empty.status, 400);
    assert.deepEqual(empty.json, { message: "Signal is required." });
    const bad = await api.signal("nope", { signal: "SIGFOO" });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json, { message: 'Unsupported signal "SIGFOO". Use "kill" or "terminate".' });
    assert.equal((await api.signal("nope", { signal: "KILL" })).status, 400);
    const json = await api.signal("nope", "{oops");
    assert.equal(json.status, 400);
    assert.equal(json.json.message, "Request body must be valid JSON.");
  });

  it("checks chat isolation before parsing the body", async () => {
    const id = await api.asChat(CHAT_A).startOk("sleep 300");
    const r = await api.asChat(CHAT_B).signal(id, "{not json");
    assert.equal(r.status, 404);
    assert.equal(r.json.message, `Process "${id}" not found.`);
    assert.equal((await api.asChat(CHAT_A).signal(id, { signal: "kill" })).status, 200);
  });

  it("signals the whole process group", async () => {
    const d = scratch();
    const pidfile = path.join(d, "pid");
    const id = await api.startOk(`sleep 300 & echo $! > ${pidfile}; wait`);
    const grandchild = await readPidFile(pidfile);
    await api.signal(id, { signal: "terminate" });
    await waitUntil(() => !alive(grandchild), "the grandchild to exit");
  });
});

describe("process lifecycle", () => {
  it("captures output across commands", async () => {
    const r = await api.run("echo first && echo second");
    assert.equal(r.output, "first\nsecond\n");
  });

  it("reports a non-zero exit code", async () => {
    assert.equal((await api.run("exit 42")).exit_code, 42);
  });

  it("captures stdout and stderr together in order", async () => {
    const r = await api.run("echo out; echo err >&2; echo out2");
    assert.equal(r.output, "out\nerr\nout2\n");
  });

  it("keeps head and tail of output larger than the buffer", async () => {
    const r = await api.run("i=0; while [ $i -lt 1155 ]; do echo \"line $i: the quick brown fox jumps over the lazy dog..\"; i=$((i+1)); done");
    assert.equal(r.truncated?.strategy, "head_tail");
    assert.ok(r.truncated.omitted_bytes > 0);
    assert.ok(r.truncated.original_bytes > r.truncated.retained_bytes);
    assert.match(r.output, /\.\.\. \[omitted \d+ bytes\] \.\.\./);
    assert.ok(r.output.startsWith("line 0:"));
    assert.ok(r.output.endsWith("line 1154: the quick brown fox jumps over the lazy dog..\n"));
  });

  it("renders invalid UTF-8 with one U+FFFD per byte", async () => {
    const r = await api.run("printf 'a\\342\\202b'");
    assert.equal(r.output, "a\uFFFD\uFFFDb");
  });
});

describe("agentd extras", () => {
  it("kills the group, grandchildren included, when timeout_ms expires", async () => {
    const d = scratch();
    const pidfile = path.join(d, "pid");
    // Long enough that a loaded machine's shell writes the pid file before the kill.
    const id = await api.startOk(`sleep 300 & echo $! > ${pidfile}; wait`, { timeout_ms: 2000 });
    const grandchild = await readPidFile(pidfile);
    const r = await api.output(id, true);
    assert.equal(r.json.running, false);
    assert.equal(r.json.exit_code, -1);
    await waitUntil(() => !alive(grandchild), "the grandchild to exit");
  });

  it("returns the same process for a repeated client_token and 409 for a different command", async () => {
    const token = `tok-${Date.now()}`;
    const first = await api.start({ command: "sleep 300", client_token: token });
    const again = await api.start({ command: "sleep 300", client_token: token });
    assert.equal(first.status, 200);
    assert.equal(again.status, 200);
    assert.equal(again.json.id, first.json.id);
    const conflict = await api.start({ command: "sleep 1", client_token: token });
    assert.equal(conflict.status, 409);
    assert.deepEqual(conflict.json, {
      message: "Client token was already used to start a process with different parameters.",
      detail: `client token "${token}" belongs to process "${first.json.id}", started with a different command or workdir`,
    });
    assert.equal((await api.start({ command: "sleep 300", client_token: token, workdir: "/" })).status, 409);
    await api.signal(first.json.id, { signal: "kill" });
  });

  it("runs a command under a pty when asked", async () => {
    const r = await api.run("test -t 0 && test -t 1 && echo tty; exit 5", { pty: true });
    assert.match(r.output, /^tty\r?\n$/);
    assert.equal(r.exit_code, 5);
  });

  it("exposes agentd_process_* metrics that promtool accepts", async () => {
    const text = await (await fetch(`${agentd.url}/metrics`)).text();
    for (const name of [
      "agentd_process_started_total",
      "agentd_process_running",
      "agentd_process_exited_total",
      "agentd_process_output_bytes_total",
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"));
    }
    assert.match(text, /^agentd_process_exited_total\{outcome="success"\} [1-9]/m);
    assert.match(text, /^agentd_process_exited_total\{outcome="timeout"\} [1-9]/m);
    try {
      execFileSync("promtool", ["--version"], { stdio: "ignore" });
    } catch {
      return;
    }
    execFileSync("promtool", ["check", "metrics"], { input: text });
  });
});
