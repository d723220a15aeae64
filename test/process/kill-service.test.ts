import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { ProcessService, Signal } from "../../gen/agentd/process/v1/process_pb.js";
import { createLogger } from "../../src/log.js";
import { KillPreviews } from "../../src/process/kill-preview.js";
import { ProcessManager } from "../../src/process/manager.js";
import { processService } from "../../src/process/service.js";
import { waitUntil } from "./api-client.js";

describe("ProcessService PreviewKill and ConfirmKill", () => {
  const manager = new ProcessManager({ log: createLogger("silent"), registry: new Registry(), maxProcesses: 64 });
  let now = Date.now();
  const client = createClient(
    ProcessService,
    createRouterTransport((router) => router.service(ProcessService, processService(manager, new KillPreviews(() => now)))),
  );
  after(() => manager.stop());
  const code = (p: Promise<unknown>) => p.then(() => Code.Unknown, (e: unknown) => ConnectError.from(e).code);
  const running = async (id: string) => (await client.list({})).processes.find((p) => p.id === id)?.running;

  it("previews exactly the running processes asked for, and confirming kills them", async () => {
    const a = await client.start({ command: "sleep 300", background: true });
    const b = await client.start({ command: "sleep 301", background: true });
    const preview = await client.previewKill({ ids: [a.id, b.id, a.id], signal: Signal.KILL });
    assert.deepEqual(preview.processes.map((p) => p.command).sort(), ["sleep 300", "sleep 301"]);
    const res = await client.confirmKill({ token: preview.token, ids: [b.id, a.id], signal: Signal.KILL });
    assert.deepEqual(res.results.map((r) => r.signalled), [true, true]);
    await waitUntil(async () => !(await running(a.id)) && !(await running(b.id)), "both killed");
  });

  it("refuses an expired token with aborted and signals nothing", async () => {
    const c = await client.start({ command: "sleep 302", background: true });
    const preview = await client.previewKill({ ids: [c.id], signal: Signal.TERMINATE });
    now += 60_001;
    assert.equal(await code(client.confirmKill({ token: preview.token, ids: [c.id], signal: Signal.TERMINATE })), Code.Aborted);
    assert.equal(await running(c.id), true);
    await client.signal({ id: c.id, signal: Signal.KILL });
  });

  it("rejects a preview with no ids, an unknown id, an exited process or no signal", async () => {
    assert.equal(await code(client.previewKill({ ids: [], signal: Signal.KILL })), Code.InvalidArgument);
    assert.equal(await code(client.previewKill({ ids: ["nope"], signal: Signal.KILL })), Code.NotFound);
    const done = await client.start({ command: "true", background: true });
    await waitUntil(async () => (await running(done.id)) === false, "true to exit");
    assert.equal(await code(client.previewKill({ ids: [done.id], signal: Signal.KILL })), Code.FailedPrecondition);
    const d = await client.start({ command: "sleep 303", background: true });
    assert.equal(await code(client.previewKill({ ids: [d.id], signal: Signal.UNSPECIFIED })), Code.InvalidArgument);
    await client.signal({ id: d.id, signal: Signal.KILL });
  });
});
