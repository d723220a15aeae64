import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FilesService } from "../../gen/agentd/files/v1/files_pb.js";
import { filesFixture, put } from "./helpers.js";

const { agentd, scratch } = filesFixture();
const rpc = () => createClient(FilesService, createConnectTransport({ baseUrl: agentd().url, httpVersion: "1.1" }));
const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

describe("agentd.files.v1.FilesService over Connect", () => {
  it("streams a file in chunks; the first carries length, type and whole-file sha256", async () => {
    const big = Buffer.alloc(200 * 1024, "z");
    const p = put(scratch(), "big.txt", big);
    const chunks = [];
    for await (const m of rpc().readFile({ path: p })) chunks.push(m);
    assert.ok(chunks.length > 1);
    assert.equal(chunks[0]!.length, BigInt(big.length));
    assert.equal(chunks[0]!.contentType, "application/octet-stream");
    assert.equal(chunks[0]!.sha256, sha(big));
    assert.deepEqual(Buffer.concat(chunks.map((c) => c.data)), big);
  });

  it("reads lines, writes and edits with the JSON API's rules", async () => {
    const d = scratch();
    const p = path.join(d, "sub", "f.txt");
    const w = await rpc().writeFile({ path: p, content: Buffer.from("a\nb\n") });
    assert.equal(w.message, `Successfully wrote to "${p}"`);
    assert.equal(w.sha256, sha("a\nb\n"));
    const lines = await rpc().readFileLines({ path: p });
    assert.equal(lines.content, "1\ta\n2\tb\n3\t");
    assert.equal(lines.totalLines, 3n);
    assert.equal(lines.sha256, sha("a\nb\n"));
    const e = await rpc().editFiles({ files: [{ path: p, edits: [{ oldText: "b", newText: "c" }] }], includeDiff: true });
    assert.equal(e.files[0]!.path, p);
    assert.match(e.files[0]!.diff, /^-b\n\+c$/m);
    assert.equal(fs.readFileSync(p, "utf8"), "a\nc\n");
    const listing = await rpc().listDirectory({ path: d });
    assert.deepEqual(listing.contents.map((c) => [c.name, c.isDir]), [["sub", true]]);
    assert.equal((await rpc().resolvePath({ path: path.join(d, "sub", "x", "..", "y") })).resolvedPath, path.join(d, "sub", "y"));
  });

  it("answers read-lines failures in the message, and maps other failures to codes: 404 NotFound, 400 InvalidArgument, 412 FailedPrecondition with the current hash", async () => {
    const d = scratch();
    const relative = await rpc().readFileLines({ path: "relative" });
    assert.deepEqual([relative.success, relative.error], [false, 'file path must be absolute: "relative"']);
    const notFound = await rejection(rpc().editFiles({ files: [{ path: path.join(d, "nope"), edits: [{ oldText: "a", newText: "b" }] }] }));
    assert.equal(notFound.code, Code.NotFound);
    const p = put(d, "f.txt", "now");
    const stale = await rejection(rpc().writeFile({ path: p, content: Buffer.from("x"), ifMatchSha256: sha("before") }));
    assert.equal(stale.code, Code.FailedPrecondition);
    assert.equal(stale.metadata.get("etag"), `"${sha("now")}"`);
    assert.equal(fs.readFileSync(p, "utf8"), "now");
    const edit = await rejection(rpc().editFiles({ files: [{ path: p, edits: [{ oldText: "absent", newText: "b" }] }] }));
    assert.equal(edit.code, Code.InvalidArgument);
    assert.match(edit.rawMessage, /old_text not found in file/);
  });

  it("counts Connect calls in agentd_files_requests_total by route and the status of the same outcome", async () => {
    const text = await (await fetch(`${agentd().url}/metrics`)).text();
    for (const name of ["agentd_files_requests_total", "agentd_files_read_bytes_total", "agentd_files_written_bytes_total", "agentd_files_edits_total"]) {
      assert.match(text, new RegExp(`^# TYPE ${name} counter`, "m"), name);
    }
    assert.match(text, /^agentd_files_requests_total\{route="write-file",code="412"\} 1$/m);
  });
});
