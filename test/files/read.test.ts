import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { filesFixture, IS_ROOT, put } from "./helpers.js";

const { api, agentd, scratch } = filesFixture();

const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${agentd().url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

describe("GET /api/v0/read-file", () => {
  it("returns the whole file with a mime type by extension, Content-Length and its sha256 as ETag", async () => {
    const p = put(scratch(), "data.json", '{"a":1}\n');
    const r = await api().readFile({ path: p });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"a":1}\n');
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.equal(r.headers.get("content-length"), "8");
    assert.equal(r.headers.get("etag"), `"${sha('{"a":1}\n')}"`);
  });

  it("uses Go's types (text/css; charset=utf-8), matches the extension case-insensitively, else application/octet-stream", async () => {
    const d = scratch();
    assert.equal((await api().readFile({ path: put(d, "s.CSS", "x") })).headers.get("content-type"), "text/css; charset=utf-8");
    assert.equal((await api().readFile({ path: put(d, "x.ts", "x") })).headers.get("content-type"), "application/octet-stream");
    assert.equal((await api().readFile({ path: put(d, "Makefile", "x") })).headers.get("content-type"), "application/octet-stream");
  });

  it("returns the [offset, offset+limit) byte range without an ETag", async () => {
    const p = put(scratch(), "r.txt", "0123456789");
    const r = await api().readFile({ path: p, offset: "2", limit: "3" });
    assert.equal(r.text, "234");
    assert.equal(r.headers.get("content-length"), "3");
    assert.equal(r.headers.get("etag"), null);
    assert.equal((await api().readFile({ path: p, offset: "7" })).text, "789");
    assert.equal((await api().readFile({ path: p, limit: "100" })).text, "0123456789");
  });

  it("answers 200 with an empty body for an offset past the end", async () => {
    const r = await api().readFile({ path: put(scratch(), "e.txt", "abc"), offset: "10" });
    assert.equal(r.status, 200);
    assert.equal(r.text, "");
    assert.equal(r.headers.get("content-length"), "0");
  });

  it("is binary safe: NUL, invalid UTF-8 and CRLF come back byte for byte", async () => {
    const bytes = Buffer.from([0, 1, 0xff, 0xfe, 0x0d, 0x0a, 0xc3, 0x28, 0x80]);
    const p = put(scratch(), "b.bin", bytes);
    const res = await fetch(`${agentd().url}/api/v0/read-file?path=${encodeURIComponent(p)}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
  });

  it("reads only the requested range: a 4 KiB limit on a 1 GiB file reads 4 KiB", async () => {
    const p = path.join(scratch(), "big.bin");
    const fd = fs.openSync(p, "w");
    fs.ftruncateSync(fd, 1 << 30);
    fs.writeSync(fd, Buffer.from("marker"), 0, 6, 512 << 20);
    fs.closeSync(fd);
    const before = await metric("agentd_files_read_bytes_total");
    const r = await api().readFile({ path: p, offset: String(512 << 20), limit: "4096" });
    assert.equal(r.status, 200);
    assert.equal(r.text.length, 4096);
    assert.ok(r.text.startsWith("marker"));
    assert.equal((await metric("agentd_files_read_bytes_total")) - before, 4096);
  });

  it("follows symlinks", async () => {
    const d = scratch();
    const target = put(d, "t.txt", "through the link");
    fs.symlinkSync(target, path.join(d, "link.txt"));
    assert.equal((await api().readFile({ path: path.join(d, "link.txt") })).text, "through the link");
  });

  describe("errors", () => {
    it("400 for a relative path or ~, with Go's %q quoting", async () => {
      for (const p of ["rel/x.txt", "~/x", 'we"ird\tname']) {
        const r = await api().readFile({ path: p });
        assert.equal(r.status, 400);
        assert.equal(r.json.message, `file path must be absolute: ${JSON.stringify(p)}`);
      }
    });

    it("400 for a NUL byte in the path", async () => {
      const r = await api().readFile({ path: "/tmp/a\0b" });
      assert.equal(r.status, 400);
      assert.equal(r.text, '{"message":"file path must not contain NUL bytes: \\"/tmp/a\\\\x00b\\""}\n');
    });

    it("404 with Go's error text for a missing file", async () => {
      const p = path.join(scratch(), "missing.txt");
      const r = await api().readFile({ path: p });
      assert.equal(r.status, 404);
      assert.equal(r.text, `{"message":"open ${p}: no such file or directory"}\n`);
    });

    it("400 open <path>: not a file for a directory", async () => {
      const d = scratch();
      const r = await api().readFile({ path: d });
      assert.equal(r.status, 400);
      assert.equal(r.json.message, `open ${d}: not a file`);
    });

    it("500 for a symlink loop", async () => {
      const d = scratch();
      fs.symlinkSync(path.join(d, "b"), path.join(d, "a"));
      fs.symlinkSync(path.join(d, "a"), path.join(d, "b"));
      const r = await api().readFile({ path: path.join(d, "a") });
      assert.equal(r.status, 500);
      assert.equal(r.json.message, `open ${path.join(d, "a")}: too many levels of symbolic links`);
    });

    it("403 for an unreadable file", { skip: IS_ROOT && "root reads any file" }, async () => {
      const p = put(scratch(), "secret.txt", "x", 0o000);
      const r = await api().readFile({ path: p });
      assert.equal(r.status, 403);
      assert.equal(r.json.message, `open ${p}: permission denied`);
    });

    it("400 Query parameters have invalid values. for a missing path, bad numbers, repeats and unknown params", async () => {
      const r = await api().readFile({ offset: "x", limit: "-1", extra: "1" });
      assert.equal(r.status, 400);
      assert.deepEqual(r.json, {
        message: "Query parameters have invalid values.",
        validations: [
          { field: "path", detail: 'Query param "path" is required and cannot be empty' },
          { field: "offset", detail: 'Query param "offset" must be a valid 64-bit positive integer: strconv.ParseInt: parsing "x": invalid syntax' },
          { field: "limit", detail: 'Query param "limit" must be a valid 64-bit positive integer: value is negative' },
          { field: "extra", detail: '"extra" is not a valid query param' },
        ],
      });
      const empty = await api().readFile({ path: "" });
      assert.equal(empty.json.validations[0].detail, 'Query param "path" is required and cannot be empty');
      const url = `${agentd().url}/api/v0/read-file?path=/a&path=/b`;
      const twice = (await (await fetch(url)).json()) as { validations: { detail: string }[] };
      assert.equal(twice.validations[0]!.detail, 'Query param "path" provided more than once, found 2 times. Only provide 1 instance of this query param.');
    });
  });
});

describe("GET /api/v0/read-file-lines", () => {
  const lines = (query: Record<string, string>) => api().readLines(query);

  it("numbers lines; a trailing newline makes an empty last line; ETag is the file's sha256", async () => {
    const p = put(scratch(), "a.txt", "a\nb\n");
    const r = await lines({ path: p });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"success":true,"file_size":4,"total_lines":3,"lines_read":3,"content":"1\\ta\\n2\\tb\\n3\\t"}\n');
    assert.equal(r.headers.get("etag"), `"${sha("a\nb\n")}"`);
  });

  it("answers {\"success\":true} for an empty file (zero fields omitted)", async () => {
    const r = await lines({ path: put(scratch(), "empty.txt", "") });
    assert.equal(r.text, '{"success":true}\n');
  });

  it("applies offset and limit; offset 0 means 1", async () => {
    const p = put(scratch(), "n.txt", "l1\nl2\nl3\nl4");
    assert.equal((await lines({ path: p, offset: "2", limit: "2" })).json.content, "2\tl2\n3\tl3");
    assert.equal((await lines({ path: p, offset: "0", limit: "1" })).json.content, "1\tl1");
    assert.equal((await lines({ path: p, offset: "4" })).json.lines_read, 1);
  });

  it("keeps \\r inside lines of a CRLF file", async () => {
    const r = await lines({ path: put(scratch(), "crlf.txt", "a\r\nb\r\n") });
    assert.equal(r.json.content, "1\ta\r\n2\tb\r\n3\t");
  });

  it("cuts lines at max_line_bytes bytes (even inside a UTF-8 character) and marks them", async () => {
    const p = put(scratch(), "long.txt", "abcdef\né€x\n");
    const r = await lines({ path: p, max_line_bytes: "4" });
    // é is 2 bytes; the cut keeps 2 of the 3 bytes of €, each invalid byte a U+FFFD.
    assert.equal(r.json.content, "1\tabcd... [truncated]\n2\té\ufffd\ufffd... [truncated]\n3\t");
  });

  it("renders each invalid UTF-8 byte as one U+FFFD, as Go's JSON encoder does", async () => {
    const r = await lines({ path: put(scratch(), "bad.txt", Buffer.from([0x61, 0xe2, 0x82, 0x62])) });
    assert.equal(r.json.content, "1\ta\ufffd\ufffdb");
  });

  it("offset past the end: 200 with success false", async () => {
    const r = await lines({ path: put(scratch(), "s.txt", "one\ntwo"), offset: "3" });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"success":false,"error":"offset 3 is beyond the file length of 2 lines"}\n');
  });

  it("refuses the whole answer past max_response_bytes (no partial content)", async () => {
    const p = put(scratch(), "b.txt", "aaaa\nbbbb\ncccc");
    // "1\taaaa" (6) + "\n2\tbbbb" (7) = 13 fits; the third line would make 20.
    assert.equal((await lines({ path: p, max_response_bytes: "13", limit: "2" })).json.lines_read, 2);
    const r = await lines({ path: p, max_response_bytes: "19" });
    assert.deepEqual(r.json, {
      success: false,
      error: "output would exceed 19 bytes. Read less at a time using offset and limit parameters.",
    });
  });

  it("refuses past max_response_lines when limit asks for more", async () => {
    const p = put(scratch(), "l.txt", "1\n2\n3\n4");
    const r = await lines({ path: p, max_response_lines: "2", limit: "3" });
    assert.equal(r.json.error, "output would exceed 2 lines. Read less at a time using offset and limit parameters.");
    assert.equal((await lines({ path: p, max_response_lines: "2" })).json.lines_read, 2);
  });

  it("refuses a file over max_file_size without reading it", async () => {
    const p = put(scratch(), "big.txt", "x".repeat(100));
    const r = await lines({ path: p, max_file_size: "99" });
    assert.equal(
      r.json.error,
      "file is 100 bytes which exceeds the maximum of 99 bytes. Use grep, sed, or awk to extract the content you need, or use offset and limit to read a portion.",
    );
  });

  it("reports path problems in the body with status 200", async () => {
    const d = scratch();
    const cases: [string, string][] = [
      ["rel", 'file path must be absolute: "rel"'],
      [path.join(d, "nope"), `file does not exist: ${path.join(d, "nope")}`],
      [d, `not a file: ${d}`],
    ];
    for (const [p, error] of cases) {
      const r = await lines({ path: p });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { success: false, error });
    }
  });

  it("400 for unknown query parameters", async () => {
    const r = await lines({ path: "/x", max_bytes: "1" });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.validations, [{ field: "max_bytes", detail: '"max_bytes" is not a valid query param' }]);
  });
});
