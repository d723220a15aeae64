import fs from "node:fs"; import net from "node:net"; import os from "node:os"; import path from "node:path";
import { Registry } from "prom-client";
import { AgentSocketPart } from "./src/agentsocket/agent-socket.js";
import { EmbeddedUpstream } from "./src/coderd/embedded.js";
import { createLogger } from "./src/log.js";
import { encodePacket, Kind } from "./src/drpc/wire.js";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prof-"));
const log = createLogger("silent");
const up = new EmbeddedUpstream(dir, log); await up.start();
const sp = path.join(dir, "a.sock");
const part = new AgentSocketPart(sp, up, log, new Registry()); await part.start();
const name = "/coder.agentsocket.v1.AgentSocket/Ping";
const req = Buffer.concat([encodePacket({kind: Kind.Invoke, streamId:1, messageId:1, data: Buffer.from(name)}), encodePacket({kind: Kind.Message, streamId:1, messageId:2, data: new Uint8Array(0)}), encodePacket({kind: Kind.CloseSend, streamId:1, messageId:3, data: new Uint8Array(0)})]);
function call(): Promise<void> { return new Promise((res) => { const c = net.connect(sp, () => c.write(req)); let n=0; c.on("data", (d) => { n+=d.length; if (n>=8) { c.destroy(); res(); } }); }); }
const t = performance.now();
for (let i = 0; i < 20000; i++) await call();
console.log(((performance.now()-t)*1000/20000).toFixed(1), "µs/call");
await part.stop(); await up.stop(); fs.rmSync(dir, {recursive: true});
