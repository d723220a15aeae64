import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { startAgentd, tempDir } from "/work/wt/filesperf/test/helpers/agentd.js";
const MIB = 1024 * 1024;
const which = process.argv[2];
const dir = tempDir("fp-w-");
process.env.FP_WHICH = which; process.execPath = "/tmp/node-prof";
const agentd = await startAgentd({ env: { AGENTD_LOG_LEVEL: "info" } });
function upload(url: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { "Content-Length": data.length } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`write-file: ${res.statusCode}`))));
    });
    req.on("error", reject);
    for (let off = 0; off < data.length; off += MIB) req.write(data.subarray(off, off + MIB));
    req.end();
  });
}
try {
  if (which === "w") {
    const data = Buffer.alloc(64 * MIB, "w");
    for (let i = 0; i < 8; i++) { const t0 = performance.now(); await upload(`${agentd.url}/api/v0/write-file?path=${path.join(dir, "x.bin")}`, data); console.log((64/((performance.now()-t0)/1000)).toFixed(0), "MiB/s"); }
  } else if (which === "e") {
    const line = "const value = compute(input); // a line of ordinary source code\n";
    const p = path.join(dir, "e.js");
    fs.writeFileSync(p, line.repeat(Math.ceil(MIB / line.length)).slice(0, MIB - 20) + "MARKER_A\n");
    for (let i = 0; i < 100; i++) { const [a,b] = i%2===0 ? ["MARKER_A","MARKER_B"] : ["MARKER_B","MARKER_A"];
      const t0 = performance.now();
      const r = await fetch(`${agentd.url}/api/v0/edit-files`, { method: "POST", body: JSON.stringify({ files: [{ path: p, edits: [{ old_text: a, new_text: b }] }] }) });
      await r.arrayBuffer(); if (i % 20 === 0) console.log((performance.now()-t0).toFixed(1), "ms", r.status);
    }
  }
} finally { await agentd.stop(); fs.rmSync(dir, { recursive: true, force: true }); fs.rmSync(agentd.dir, { recursive: true, force: true }); }
