import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import { ListResponseSchema, ProcessService } from "../../gen/agentd/process/v1/process_pb.js";
import { RequestGuard } from "../../src/http/guard.js";
import { HttpServer, type ConnectRegistration } from "../../src/http/server.js";
import { createLogger } from "../../src/log.js";

/** A Connect List call (JSON) to the server; resolves with the HTTP status. */
async function list(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/agentd.process.v1.ProcessService/List`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
  });
  await res.arrayBuffer();
  return res.status;
}

describe("Connect services loaded on first use", () => {
  it("a load that failed is tried again by the next request; REST routes never wait for it", async () => {
    const http = new HttpServer({ host: "127.0.0.1", port: 0 }, createLogger("silent"), new Registry(), new RequestGuard({}));
    let loads = 0;
    http.connectLazily(async (): Promise<ConnectRegistration> => {
      loads++;
      if (loads === 1) throw new Error("module failed to load");
      return (router) => router.service(ProcessService, { list: () => create(ListResponseSchema, {}) });
    });
    await http.listen();
    try {
      const { port } = http.address();
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      assert.equal(loads, 0, "a REST request loads nothing");
      assert.equal(await list(port), 500);
      assert.equal(await list(port), 200);
      assert.equal(await list(port), 200);
      assert.equal(loads, 2, "loaded again once after the failure, then kept");
    } finally {
      await http.close();
    }
  });
});
