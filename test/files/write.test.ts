import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { filesFixture, put, tempFiles } from "./helpers.js";

/** A small limit so the over-limit case needs no 64 MiB body. */
const MAX_WRITE_BYTES = 1024 * 1024;
const { api, scratch } = filesFixture({ args: ["--max-write-bytes", String(MAX_WRITE_BYTES)] });

const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

/** A request body sent in chunks (Transfer-Encoding: chunked, no Content-Length). */
function chunked(parts: Buffer[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      const next = parts.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

describe("POST /api/v0/write-file", () => {
  it("writes the body, creating parent directories, and answers Coder's message", async () => {
    const d = scratch();
    const p = path.join(d, "a", "b", "new.txt");
    const r = await api().write(p, "hello\n");
    assert.equal(r.status, 200);
    assert.equal(r.text, `{"message":"Successfully wrote to \\"${p}\\""}\n`);
    assert.equal(fs.readFileSync(p, "utf8"), "hello\n");
    assert.equal(fs.statSync(path.join(d, "a")).mode & 0o777, 0o755 & ~process.umask());
    assert.deepEqual(tempFiles(path.dirname(p)), []);
  });

  it("replaces an existing file and keeps its mode", async () => {
    const p = put(scratch(), "run.sh", "old", 0o751);
    assert.equal((await api().write(p, "#!/bin/sh\n")).status, 200);
    assert.equal(fs.readFileSync(p, "utf8"), "#!/bin/sh\n");
    assert.equal(fs.statSync(p).mode & 0o777, 0o751);
  });

  it("writes through a symlink: the link stays, its target changes", async () => {
    const d = scratch();
    const target = put(d, "real/t.txt", "old");
    const link = path.join(d, "link.txt");
    fs.symlinkSync(target, link);
    assert.equal((await api().write(link, "new")).status, 200);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.readFileSync(target, "utf8"), "new");
  });

  it("writes through a symlinked directory to a file that does not exist yet", async () => {
    const d = scratch();
    fs.mkdirSync(path.join(d, "real"));
    fs.symlinkSync(path.join(d, "real"), path.join(d, "alias"));
    assert.equal((await api().write(path.join(d, "alias", "deep", "f.txt"), "x")).status, 200);
    assert.equal(fs.readFileSync(path.join(d, "real", "deep", "f.txt"), "utf8"), "x");
  });

  it("writes binary, CRLF and invalid UTF-8 bytes unchanged", async () => {
    const bytes = Buffer.from([0, 0xff, 0x0d, 0x0a, 0xc3, 0x28, 0xef, 0xbb, 0xbf]);
    const p = path.join(scratch(), "bin.dat");
    assert.equal((await api().write(p, bytes)).status, 200);
    assert.deepEqual(fs.readFileSync(p), bytes);
  });

  it("streams a chunked body", async () => {
    const parts = Array.from({ length: 8 }, (_, i) => Buffer.alloc(64 * 1024, 65 + i));
    const whole = Buffer.concat(parts);
    const p = path.join(scratch(), "chunked.bin");
    assert.equal((await api().write(p, chunked([...parts]))).status, 200);
    assert.deepEqual(fs.readFileSync(p), whole);
  });

  it("writes an empty body as an empty file", async () => {
    const p = put(scratch(), "e.txt", "something");
    assert.equal((await api().write(p, "")).status, 200);
    assert.equal(fs.readFileSync(p, "utf8"), "");
  });

  describe("a body over --max-write-bytes", () => {
    it("413 before reading when Content-Length is over, nothing changed", async () => {
      const d = scratch();
      const p = put(d, "keep.txt", "original");
      const r = await api().write(p, Buffer.alloc(MAX_WRITE_BYTES + 1));
      assert.equal(r.status, 413);
      assert.equal(r.json.message, `Request body must be at most ${MAX_WRITE_BYTES} bytes.`);
      assert.equal(fs.readFileSync(p, "utf8"), "original");
      assert.deepEqual(tempFiles(d), []);
    });

    it("413 when a chunked body passes the limit midway; the temp file is removed", async () => {
      const d = scratch();
      const p = put(d, "keep.txt", "original");
      const parts = Array.from({ length: 20 }, () => Buffer.alloc(64 * 1024, 1));
      const r = await api().write(p, chunked(parts));
      assert.equal(r.status, 413);
      assert.equal(fs.readFileSync(p, "utf8"), "original");
      assert.deepEqual(tempFiles(d), []);
    });

    it("accepts exactly the limit", async () => {
      const p = path.join(scratch(), "max.bin");
      assert.equal((await api().write(p, Buffer.alloc(MAX_WRITE_BYTES, 7))).status, 200);
      assert.equal(fs.statSync(p).size, MAX_WRITE_BYTES);
    });
  });

  describe("If-Match (sha256 precondition)", () => {
    it("writes when the file still has the hash it was read with", async () => {
      const p = put(scratch(), "f.txt", "v1");
      const etag = (await api().readFile({ path: p })).headers.get("etag")!;
      assert.equal(etag, `"${sha("v1")}"`);
      const r = await api().write(p, "v2", { "If-Match": etag });
      assert.equal(r.status, 200);
      assert.equal(fs.readFileSync(p, "utf8"), "v2");
    });

    it("412 with the current hash (body and ETag) when the file changed, nothing written", async () => {
      const d = scratch();
      const p = put(d, "f.txt", "v1");
      const etag = (await api().readLines({ path: p })).headers.get("etag")!;
      fs.writeFileSync(p, "edited by a person");
      const r = await api().write(p, "agent's version", { "If-Match": etag });
      assert.equal(r.status, 412);
      const current = sha("edited by a person");
      assert.deepEqual(r.json, {
        message: `file ${JSON.stringify(p)} changed since it was read: its sha256 is ${current}, not ${etag.slice(1, -1)}`,
        current_sha256: current,
      });
      assert.equal(r.headers.get("etag"), `"${current}"`);
      assert.equal(fs.readFileSync(p, "utf8"), "edited by a person");
      assert.deepEqual(tempFiles(d), []);
    });

    it("412 when the file was deleted; * requires only that it exists", async () => {
      const d = scratch();
      const p = path.join(d, "gone.txt");
      const r = await api().write(p, "x", { "If-Match": `"${sha("x")}"` });
      assert.equal(r.status, 412);
      assert.equal(r.json.current_sha256, "");
      assert.equal(fs.existsSync(p), false);
      assert.equal((await api().write(p, "x", { "If-Match": "*" })).status, 412);
      put(d, "gone.txt", "back");
      assert.equal((await api().write(p, "x", { "If-Match": "*" })).status, 200);
    });

    it("400 for a malformed If-Match, nothing written", async () => {
      const p = put(scratch(), "f.txt", "v1");
      const r = await api().write(p, "v2", { "If-Match": "abc" });
      assert.equal(r.status, 400);
      assert.match(r.json.message, /^If-Match must be "\*" or a quoted sha256 hex digest/);
      assert.equal(fs.readFileSync(p, "utf8"), "v1");
    });
  });

  describe("bad input (nothing written)", () => {
    it("400 for relative, ~ and NUL paths", async () => {
      for (const p of ["x.txt", "~/x.txt"]) {
        const r = await api().write(p, "x");
        assert.equal(r.status, 400);
        assert.equal(r.json.message, `file path must be absolute: ${JSON.stringify(p)}`);
      }
      const r = await api().write("/tmp/a\0b", "x");
      assert.equal(r.status, 400);
      assert.equal(r.json.message, 'file path must not contain NUL bytes: "/tmp/a\\x00b"');
    });

    it("400 open <path>: is a directory when the target is a directory", async () => {
      const d = scratch();
      const r = await api().write(d, "x");
      assert.equal(r.status, 400);
      assert.equal(r.json.message, `open ${d}: is a directory`);
    });

    it("500 when a parent is a file: resolving the path fails with ENOTDIR, as in Coder", async () => {
      const d = scratch();
      const file = put(d, "file.txt", "x");
      const child = path.join(file, "child.txt");
      const r = await api().write(child, "y");
      assert.equal(r.status, 500);
      assert.equal(r.json.message, `resolve symlink "${child}": lstat ${child}: not a directory`);
      assert.equal(fs.readFileSync(file, "utf8"), "x");
    });

    it("500 resolve symlink for a symlink loop", async () => {
      const d = scratch();
      fs.symlinkSync(path.join(d, "b"), path.join(d, "a"));
      fs.symlinkSync(path.join(d, "a"), path.join(d, "b"));
      const p = path.join(d, "a");
      const r = await api().write(p, "x");
      assert.equal(r.status, 500);
      assert.match(r.json.message, new RegExp(`^resolve symlink "${p}": too many levels of symlinks resolving "${d}/[ab]"$`));
    });

    it("400 for a missing or repeated path and unknown parameters", async () => {
      const r = await api().call("POST", "write-file", { query: { path: "/tmp/x", mode: "644" }, body: "x" });
      assert.equal(r.status, 400);
      assert.deepEqual(r.json.validations, [{ field: "mode", detail: '"mode" is not a valid query param' }]);
      const missing = await api().call("POST", "write-file", { body: "x" });
      assert.equal(missing.json.validations[0].detail, 'Query param "path" is required and cannot be empty');
    });
  });
});
