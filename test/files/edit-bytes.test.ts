import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { EditError, applyEdits } from "../../src/files/edit-engine.js";

const edit = (search: string, replace: string, replaceAll = false) => ({ search, replace, replaceAll });
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

describe("invalid UTF-8 and binary content", () => {
  it("changes only the matched bytes of a file that is not valid UTF-8", () => {
    const content = bytes([0xff, 0xfe], "abc", [0x80, 0x0a], "x", [0xc3]);
    const { content: out, passes } = applyEdits(content, [edit("abc", "ÄBC")]);
    assert.deepEqual(out, bytes([0xff, 0xfe], "ÄBC", [0x80, 0x0a], "x", [0xc3]));
    assert.deepEqual(passes, ["exact"]);
  });

  it("edits around NUL bytes", () => {
    const content = bytes([0x00, 0x01, 0x02], "MARK", [0x00, 0xff]);
    assert.deepEqual(applyEdits(content, [edit("MARK", "done")]).content, bytes([0x00, 0x01, 0x02], "done", [0x00, 0xff]));
  });

  it("keeps invalid bytes on other lines through the fuzzy passes", () => {
    const content = bytes([0xff, 0x0a], "  key  \n", [0xfe, 0xc0]);
    const { content: out, passes } = applyEdits(content, [edit("key\n", "KEY\n")]);
    assert.deepEqual(out, bytes([0xff, 0x0a], "  KEY  \n", [0xfe, 0xc0]));
    assert.deepEqual(passes, ["indentation"]);
  });

  it("matches non-ASCII old_text by its UTF-8 bytes", () => {
    assert.equal(applyEdits(Buffer.from("naïve café\n"), [edit("café", "bar")]).content.toString(), "naïve bar\n");
  });

  it("trims Unicode whitespace in the indentation pass, as Go's TrimSpace does", () => {
    const out = applyEdits(Buffer.from("a\n\u00a0\u3000value\u2003\nb\n"), [edit("value\n", "VALUE\n")]);
    assert.equal(out.content.toString(), "a\nVALUE\nb\n");
    assert.deepEqual(out.passes, ["indentation"]);
  });

  it("does not treat a byte that only starts a space character as whitespace", () => {
    assert.throws(
      () => applyEdits(bytes("a\n", [0xc2], "value\nb\n"), [edit("value \n", "VALUE\n")]),
      (err) => err instanceof EditError && err.message.startsWith("old_text not found in file."),
    );
  });

  it("counts invalid bytes as U+FFFD in the miscount hint", () => {
    const content = bytes("x ", [0xff, 0xff, 0xff], "\n");
    assert.throws(
      () => applyEdits(content, [edit("x \uFFFD\n", "y\n")]),
      (err) => err instanceof EditError && err.message.endsWith('. Your old_text has 1 "\uFFFD" (U+FFFD); the file has 3 at line 1'),
    );
  });

  it("leaves the input Buffer untouched", () => {
    const content = Buffer.from("one two\n");
    applyEdits(content, [edit("one", "1")]);
    assert.equal(content.toString(), "one two\n");
  });
});

/** Byte arrays that never contain `marker`. */
const bytesWithout = (marker: Buffer) => fc.uint8Array({ maxLength: 200 }).map(Buffer.from).filter((b) => !b.includes(marker));

describe("properties", () => {
  it("an exact edit of a unique marker equals a plain replace of those bytes", () => {
    const marker = Buffer.from("\u0000<<MARK>>\u0001");
    fc.assert(
      fc.property(bytesWithout(marker), bytesWithout(marker), fc.string({ maxLength: 40 }).filter((s) => !s.includes("\n")), (before, after, replace) => {
        const content = Buffer.concat([before, marker, after]);
        const out = applyEdits(content, [edit(marker.toString(), replace)]);
        assert.deepEqual(out.content, Buffer.concat([before, Buffer.from(replace), after]));
        assert.deepEqual(out.passes, ["exact"]);
      }),
    );
  });

  it("a fuzzy edit leaves every byte outside the matched line unchanged", () => {
    const target = Buffer.from("target line");
    const lineWithout = bytesWithout(target).map((b) => Buffer.concat([b.filter((c) => c !== 0x0a), Buffer.from("\n")]));
    fc.assert(
      fc.property(lineWithout, bytesWithout(target), fc.constantFrom(" ", "\t", "  \t"), (head, tail, indent) => {
        const line = Buffer.from(`${indent}target line${indent}\n`);
        const content = Buffer.concat([head, line, tail]);
        const out = applyEdits(content, [edit("target line\n", "changed\n")]).content;
        assert.deepEqual(out, Buffer.concat([head, Buffer.from(`${indent}changed${indent}\n`), tail]));
      }),
    );
  });

  it("an exact replace_all equals splitting on old_text and joining with new_text", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[ab \n]{0,60}$/), fc.constantFrom("a", "ab", "b a", "a\nb"), fc.stringMatching(/^[xy ]{0,4}$/), (content, search, replace) => {
        fc.pre(content.includes(search));
        const out = applyEdits(Buffer.from(content), [edit(search, replace, true)]);
        assert.equal(out.content.toString(), content.split(search).join(replace));
        assert.deepEqual(out.passes, ["exact"]);
      }),
    );
  });
});
