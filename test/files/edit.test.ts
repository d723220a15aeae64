import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { filesFixture, put, tempFiles } from "./helpers.js";

const { api, agentd, scratch } = filesFixture();

const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
const read = (p: string) => fs.readFileSync(p, "utf8");
const edit = (p: string, old_text: string, new_text: string, extra: Record<string, unknown> = {}) => ({
  path: p,
  edits: [{ old_text, new_text, ...extra }],
});

describe("POST /api/v0/edit-files", () => {
  it("replaces one exact match and answers {}", async () => {
    const p = put(scratch(), "a.go", "func a() {\n\treturn 1\n}\n");
    const r = await api().edit({ files: [edit(p, "return 1", "return 2")] });
    assert.equal(r.status, 200);
    assert.equal(r.text, "{}\n");
    assert.equal(read(p), "func a() {\n\treturn 2\n}\n");
  });

  it("accepts the legacy search/replace keys; old_text/new_text win when either is set", async () => {
    const p = put(scratch(), "l.txt", "alpha beta gamma");
    await api().edit({ files: [{ path: p, edits: [{ search: "beta", replace: "BETA" }] }] });
    assert.equal(read(p), "alpha BETA gamma");
    await api().edit({ files: [{ path: p, edits: [{ old_text: "alpha", new_text: "", search: "gamma", replace: "x" }] }] });
    assert.equal(read(p), " BETA gamma");
  });

  it("matches JSON keys case-insensitively, as Go's decoder does", async () => {
    const p = put(scratch(), "k.txt", "one");
    const r = await api().edit({ FILES: [{ Path: p, Edits: [{ OLD_TEXT: "one", New_Text: "two" }] }] });
    assert.equal(r.status, 200);
    assert.equal(read(p), "two");
  });

  it("replace_all replaces every non-overlapping occurrence", async () => {
    const p = put(scratch(), "r.txt", "aaa x aaa x aa");
    await api().edit({ files: [edit(p, "aa", "b", { replace_all: true })] });
    assert.equal(read(p), "ba x ba x b");
  });

  it("applies edits in order, each on the result of the one before", async () => {
    const p = put(scratch(), "s.txt", "one");
    const r = await api().edit({
      files: [{ path: p, edits: [{ old_text: "one", new_text: "two" }, { old_text: "two", new_text: "three" }] }],
    });
    assert.equal(r.status, 200);
    assert.equal(read(p), "three");
  });

  it("include_diff answers a unified diff per file labelled with the caller's path", async () => {
    const p = put(scratch(), "d.txt", "1\n2\n3\n4\n5\n6\n7\n8\n");
    const r = await api().edit({ files: [edit(p, "5\n", "five\n")], include_diff: true });
    assert.deepEqual(r.json, {
      files: [{ path: p, diff: `--- ${p}\n+++ ${p}\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n` }],
    });
  });

  it("an edit to identical text succeeds with an empty diff", async () => {
    const p = put(scratch(), "same.txt", "keep");
    const r = await api().edit({ files: [edit(p, "keep", "keep")], include_diff: true });
    assert.deepEqual(r.json, { files: [{ path: p, diff: "" }] });
  });

  it("keeps the file's mode and leaves no temp file", async () => {
    const d = scratch();
    const p = put(d, "x.sh", "echo a\n", 0o700);
    await api().edit({ files: [edit(p, "a", "b")] });
    assert.equal(fs.statSync(p).mode & 0o777, 0o700);
    assert.deepEqual(tempFiles(d), []);
  });

  it("edits a CRLF file byte for byte, keeping its line endings", async () => {
    const p = put(scratch(), "w.txt", "one\r\ntwo\r\nthree\r\n");
    await api().edit({ files: [edit(p, "two\r\n", "2\r\n")] });
    assert.equal(read(p), "one\r\n2\r\nthree\r\n");
  });

  it("edits text next to binary and invalid UTF-8 bytes without touching them", async () => {
    const bytes = Buffer.concat([Buffer.from([0, 0xff, 0xc3, 0x28]), Buffer.from("NAME=old\n"), Buffer.from([0xfe, 0])]);
    const p = put(scratch(), "mixed.bin", bytes);
    assert.equal((await api().edit({ files: [edit(p, "NAME=old", "NAME=new")] })).status, 200);
    assert.deepEqual(fs.readFileSync(p), Buffer.concat([Buffer.from([0, 0xff, 0xc3, 0x28]), Buffer.from("NAME=new\n"), Buffer.from([0xfe, 0])]));
  });

  it("edits through a symlink; the link stays a link", async () => {
    const d = scratch();
    const target = put(d, "real.txt", "v1");
    fs.symlinkSync(target, path.join(d, "link.txt"));
    assert.equal((await api().edit({ files: [edit(path.join(d, "link.txt"), "v1", "v2")] })).status, 200);
    assert.ok(fs.lstatSync(path.join(d, "link.txt")).isSymbolicLink());
    assert.equal(read(target), "v2");
  });

  describe("edit failures (400 edit <resolved path>: <reason>, nothing written)", () => {
    it("old_text matching zero places", async () => {
      const p = put(scratch(), "z.txt", "hello");
      const r = await api().edit({ files: [edit(p, "absent", "x")] });
      assert.equal(r.status, 400);
      assert.match(
        r.json.message,
        new RegExp(`^edit ${p}: old_text not found in file\\. Verify that old_text matches the file content exactly, including whitespace and indentation`),
      );
      assert.equal(read(p), "hello");
    });

    it("old_text matching two places", async () => {
      const p = put(scratch(), "two.txt", "x = 1\nx = 1\n");
      const r = await api().edit({ files: [edit(p, "x = 1", "x = 2")] });
      assert.equal(r.status, 400);
      assert.equal(
        r.json.message,
        `edit ${p}: old_text matches 2 occurrences (expected exactly 1). Include more surrounding context to make the match unique, or set replace_all to true`,
      );
      assert.equal(read(p), "x = 1\nx = 1\n");
    });

    it("an empty old_text", async () => {
      const p = put(scratch(), "e.txt", "x");
      const r = await api().edit({ files: [edit(p, "", "y")] });
      assert.equal(r.json.message, `edit ${p}: old_text must not be empty; include the text you want to match`);
    });

    it("a later edit failing keeps the earlier edits of the same file from being written", async () => {
      const p = put(scratch(), "seq.txt", "a b");
      const r = await api().edit({ files: [{ path: p, edits: [{ old_text: "a", new_text: "A" }, { old_text: "zzz", new_text: "" }] }] });
      assert.equal(r.status, 400);
      assert.equal(read(p), "a b");
    });
  });

  describe("several files: all or nothing", () => {
    it("writes every file when all edits apply", async () => {
      const d = scratch();
      const a = put(d, "a.txt", "A1");
      const b = put(d, "b.txt", "B1");
      assert.equal((await api().edit({ files: [edit(a, "A1", "A2"), edit(b, "B1", "B2")] })).status, 200);
      assert.equal(read(a), "A2");
      assert.equal(read(b), "B2");
    });

    it("writes nothing when one file fails; errors of all files joined by newlines; the highest status wins", async () => {
      const d = scratch();
      const good = put(d, "good.txt", "ok");
      const missing = path.join(d, "missing.txt");
      const dir = path.join(d, "sub");
      fs.mkdirSync(dir);
      const r = await api().edit({
        files: [edit(good, "ok", "changed"), edit("relative.txt", "a", "b"), edit(missing, "a", "b"), edit(dir, "a", "b"), { path: good.replace("good", "none"), edits: [] }],
      });
      assert.equal(r.status, 404);
      assert.equal(
        r.json.message,
        [
          'file path must be absolute: "relative.txt"',
          `open ${missing}: no such file or directory`,
          `open ${dir}: not a file`,
          "must specify at least one edit",
        ].join("\n"),
      );
      assert.equal(read(good), "ok");
      assert.deepEqual(tempFiles(d), []);
    });

    it('400 "path" is required for an entry without a path', async () => {
      const r = await api().edit({ files: [{ edits: [{ old_text: "a", new_text: "b" }] }] });
      assert.equal(r.status, 400);
      assert.equal(r.json.message, '"path" is required');
    });
  });

  describe("duplicate entries", () => {
    it("merges entries with the same path (after cleaning) into one, edits in order", async () => {
      const d = scratch();
      const p = put(d, "m.txt", "one two");
      const r = await api().edit({
        files: [edit(p, "one", "1"), edit(path.join(d, ".", "m.txt").replace("/m.txt", "//m.txt"), "two", "2")],
        include_diff: true,
      });
      assert.equal(r.status, 200);
      assert.equal(read(p), "1 2");
      assert.equal(r.json.files.length, 1);
    });

    it("400 when two different paths alias one real file, nothing written", async () => {
      const d = scratch();
      const real = put(d, "real.txt", "one two");
      const link = path.join(d, "alias.txt");
      fs.symlinkSync(real, link);
      const r = await api().edit({ files: [edit(real, "one", "1"), edit(link, "two", "2")] });
      assert.equal(r.status, 400);
      assert.equal(
        r.json.message,
        `duplicate file path "${link}" aliases "${real}" (same real file): combine edits into a single entry's "edits" list`,
      );
      assert.equal(read(real), "one two");
    });
  });

  describe("expected_sha256 (precondition per file)", () => {
    it("edits when the hash matches", async () => {
      const p = put(scratch(), "h.txt", "v1");
      const r = await api().edit({ files: [{ ...edit(p, "v1", "v2"), expected_sha256: sha("v1") }] });
      assert.equal(r.status, 200);
      assert.equal(read(p), "v2");
    });

    it("412 with current_sha256 and ETag when a file changed; no file is written", async () => {
      const d = scratch();
      const other = put(d, "other.txt", "o1");
      const p = put(d, "h.txt", "changed by a person");
      const r = await api().edit({
        files: [edit(other, "o1", "o2"), { ...edit(p, "changed", "x"), expected_sha256: sha("what the agent read") }],
      });
      assert.equal(r.status, 412);
      const current = sha("changed by a person");
      assert.deepEqual(r.json, {
        message: `file ${JSON.stringify(p)} changed since it was read: its sha256 is ${current}, not ${sha("what the agent read")}`,
        current_sha256: current,
      });
      assert.equal(r.headers.get("etag"), `"${current}"`);
      assert.equal(read(other), "o1");
      assert.equal(read(p), "changed by a person");
    });
  });

  describe("bad bodies", () => {
    it("400 Request body must be valid JSON. with Go's decoder text", async () => {
      const cases: [string, string][] = [
        ["", "EOF"],
        ["{", "unexpected EOF"],
        ["{'files':1}", "invalid character '\\'' looking for beginning of object key string"],
        ['{"files":"x"}', "json: cannot unmarshal string into Go struct field FileEditRequest.files of type []workspacesdk.FileEdits"],
        ['{"files":[{"path":1}]}', "json: cannot unmarshal number into Go struct field FileEditRequest.files.path of type string"],
        ["[]", "json: cannot unmarshal array into Go value of type workspacesdk.FileEditRequest"],
      ];
      for (const [body, detail] of cases) {
        const r = await api().edit(body);
        assert.equal(r.status, 400, body);
        assert.deepEqual(r.json, { message: "Request body must be valid JSON.", detail }, body);
      }
    });

    it('400 must specify at least one file for "files": [], {} and null', async () => {
      for (const body of ['{"files":[]}', "{}", "null"]) {
        const r = await api().edit(body);
        assert.equal(r.status, 400);
        assert.equal(r.text, '{"message":"must specify at least one file"}\n');
      }
    });

    it("400 for a NUL byte in a path", async () => {
      const r = await api().edit({ files: [edit("/tmp/a\0b", "a", "b")] });
      assert.equal(r.status, 400);
      assert.equal(r.json.message, 'file path must not contain NUL bytes: "/tmp/a\\x00b"');
    });
  });

  it("concurrent edits of one file each apply: no edit is lost to another's read-modify-write", async () => {
    const tokens = Array.from({ length: 20 }, (_, i) => `token-${i};`);
    const p = put(scratch(), "shared.txt", tokens.join("\n"));
    const results = await Promise.all(tokens.map((t) => api().edit({ files: [edit(p, t, t.toUpperCase())] })));
    assert.deepEqual(results.map((r) => r.status), tokens.map(() => 200));
    assert.equal(read(p), tokens.map((t) => t.toUpperCase()).join("\n"));
  });

  it("counts edits by matching pass and bytes written in agentd_files_* metrics", async () => {
    const p = put(scratch(), "m.txt", "metric");
    await api().edit({ files: [edit(p, "metric", "counted")] });
    const text = await (await fetch(`${agentd().url}/metrics`)).text();
    assert.match(text, /^agentd_files_edits_total\{pass="exact"\} [1-9]/m);
    assert.match(text, /^agentd_files_requests_total\{route="edit-files",code="200"\} [1-9]/m);
    assert.match(text, /^agentd_files_written_bytes_total [1-9]/m);
  });
});
