import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "../helpers/agentd.js";
import { filesFixture, put } from "./helpers.js";

const home = fs.realpathSync(tempDir("agentd-files-home-"));
const { api, scratch } = filesFixture({ env: { HOME: home } });
process.on("exit", () => fs.rmSync(home, { recursive: true, force: true }));

describe("POST /api/v0/list-directory", () => {
  it("lists directories first, then files, each in byte order; a symlink to a directory is not is_dir", async () => {
    const d = scratch();
    for (const name of ["b.txt", "B.txt", "a.txt", "_x"]) put(d, name, "");
    for (const name of ["zdir", "Adir"]) fs.mkdirSync(path.join(d, name));
    fs.symlinkSync(path.join(d, "zdir"), path.join(d, "link"));
    const r = await api().list({ path: d.split("/").filter(Boolean), relativity: "root" });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      absolute_path: d.split("/").filter(Boolean),
      absolute_path_string: d,
      contents: [
        { name: "Adir", absolute_path_string: path.join(d, "Adir"), is_dir: true },
        { name: "zdir", absolute_path_string: path.join(d, "zdir"), is_dir: true },
        ...["B.txt", "_x", "a.txt", "b.txt", "link"].map((name) => ({ name, absolute_path_string: path.join(d, name), is_dir: false })),
      ],
    });
  });

  it("lists relative to the agent's home directory", async () => {
    put(home, "project/readme.md", "");
    const r = await api().list({ path: ["project"], relativity: "home" });
    assert.equal(r.json.absolute_path_string, path.join(home, "project"));
    assert.deepEqual(r.json.contents, [{ name: "readme.md", absolute_path_string: path.join(home, "project", "readme.md"), is_dir: false }]);
  });

  it("root with no segments lists / and answers absolute_path []", async () => {
    const r = await api().list({ path: [], relativity: "root" });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.absolute_path, []);
    assert.equal(r.json.absolute_path_string, "/");
    assert.ok(r.json.contents.some((e: { name: string }) => e.name === "tmp"));
  });

  it("takes an absolute ?path= over the body, and cleans .. segments", async () => {
    const d = scratch();
    put(d, "inner/f.txt", "");
    assert.equal((await api().list({}, { path: path.join(d, "inner") })).json.contents[0].name, "f.txt");
    const segs = [...d.split("/").filter(Boolean), "inner", "..", "inner"];
    assert.equal((await api().list({ path: segs, relativity: "root" })).json.absolute_path_string, path.join(d, "inner"));
  });

  it("an empty directory has contents []", async () => {
    assert.deepEqual((await api().list({}, { path: scratch() })).json.contents, []);
  });

  describe("errors", () => {
    it("500 path must be absolute for a relative ?path=", async () => {
      const r = await api().list({}, { path: "rel" });
      assert.equal(r.status, 500);
      assert.equal(r.text, '{"message":"path must be absolute: \\"rel\\""}\n');
    });

    it("404 failed to open directory for a missing one", async () => {
      const p = path.join(scratch(), "missing");
      const r = await api().list({}, { path: p });
      assert.equal(r.status, 404);
      assert.equal(r.json.message, `failed to open directory "${p}": open ${p}: no such file or directory`);
    });

    it("500 is not a directory for a file", async () => {
      const p = put(scratch(), "f.txt", "");
      const r = await api().list({}, { path: p });
      assert.equal(r.status, 500);
      assert.equal(r.json.message, `path "${p}" is not a directory`);
    });

    it("500 unsupported relativity type", async () => {
      const r = await api().list({ path: [], relativity: "cwd" });
      assert.equal(r.status, 500);
      assert.equal(r.json.message, 'unsupported relativity type "cwd"');
      assert.equal((await api().list({})).json.message, 'unsupported relativity type ""');
    });

    it("400 for malformed JSON and unknown query parameters", async () => {
      const bad = await api().list("{");
      assert.deepEqual(bad.json, { message: "Request body must be valid JSON.", detail: "unexpected EOF" });
      const typed = await api().list({ path: "x" });
      assert.equal(typed.json.detail, "json: cannot unmarshal string into Go struct field LSRequest.path of type []string");
      const extra = await api().list({}, { path: "/", depth: "1" });
      assert.equal(extra.status, 400);
      assert.deepEqual(extra.json.validations, [{ field: "depth", detail: '"depth" is not a valid query param' }]);
    });
  });
});

describe("GET /api/v0/resolve-path", () => {
  it("resolves symlinks of the existing prefix and keeps the missing tail", async () => {
    const d = scratch();
    fs.mkdirSync(path.join(d, "real"));
    fs.symlinkSync("real", path.join(d, "rel-link"));
    fs.symlinkSync(path.join(d, "rel-link"), path.join(d, "abs-link"));
    const r = await api().resolve({ path: path.join(d, "abs-link", "new", "file.txt") });
    assert.equal(r.status, 200);
    assert.equal(r.text, `{"resolved_path":"${path.join(d, "real", "new", "file.txt")}"}\n`);
  });

  it("cleans the path", async () => {
    const d = scratch();
    assert.equal((await api().resolve({ path: `${d}/./a/../b/` })).json.resolved_path, path.join(d, "b"));
  });

  it("follows a chain of 40 symlinks, refuses 41 and loops", async () => {
    const d = scratch();
    put(d, "target", "");
    fs.symlinkSync(path.join(d, "target"), path.join(d, "l0"));
    for (let i = 1; i <= 40; i++) fs.symlinkSync(path.join(d, `l${i - 1}`), path.join(d, `l${i}`));
    assert.equal((await api().resolve({ path: path.join(d, "l39") })).json.resolved_path, path.join(d, "target"));
    const deep = await api().resolve({ path: path.join(d, "l40") });
    assert.equal(deep.status, 500);
    assert.equal(deep.json.message, `too many levels of symlinks resolving "${path.join(d, "target")}"`);
    fs.symlinkSync(path.join(d, "loop"), path.join(d, "loop2"));
    fs.symlinkSync(path.join(d, "loop2"), path.join(d, "loop"));
    const loop = await api().resolve({ path: path.join(d, "loop") });
    assert.equal(loop.status, 500);
    assert.match(loop.json.message, /^too many levels of symlinks resolving /);
  });

  it("400 for relative paths and ~, and for unknown parameters", async () => {
    const r = await api().resolve({ path: "~/x" });
    assert.equal(r.status, 400);
    assert.equal(r.json.message, 'file path must be absolute: "~/x"');
    const extra = await api().resolve({ path: "/", follow: "1" });
    assert.equal(extra.status, 400);
  });
});
