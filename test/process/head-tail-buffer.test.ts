import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeUtf8LikeGo } from "../../src/process/go-utf8.js";
import {
  HeadTailBuffer,
  LINE_TRUNCATION_SUFFIX,
  MAX_HEAD_BYTES,
  MAX_LINE_LENGTH,
  truncateLines,
} from "../../src/process/head-tail-buffer.js";

const b = (s: string) => Buffer.from(s);

describe("HeadTailBuffer (Coder's headtail_test.go)", () => {
  it("renders an empty buffer as empty output without truncation", () => {
    const buf = new HeadTailBuffer();
    assert.deepEqual(buf.output(), { output: "", truncation: null });
    assert.equal(buf.len(), 0);
    assert.equal(buf.totalWritten(), 0);
    assert.equal(buf.bytes().length, 0);
  });

  it("returns small output unchanged", () => {
    const buf = new HeadTailBuffer();
    assert.equal(buf.write(b("hello world\n")), 12);
    assert.deepEqual(buf.output(), { output: "hello world\n", truncation: null });
    assert.equal(buf.len(), 12);
    assert.equal(buf.totalWritten(), 12);
  });

  it("returns exactly head-size output verbatim", () => {
    const line = "x".repeat(79) + "\n";
    let s = line.repeat(Math.floor(MAX_HEAD_BYTES / 80));
    s += "y".repeat(MAX_HEAD_BYTES - s.length);
    const buf = new HeadTailBuffer();
    buf.write(b(s));
    assert.deepEqual(buf.output(), { output: s, truncation: null });
    assert.equal(buf.len(), MAX_HEAD_BYTES);
  });

  it("joins contiguous head and tail with one newline and reports 0 omitted", () => {
    const buf = new HeadTailBuffer(10, 10);
    buf.write(b("0123456789abcdefghij"));
    const { output, truncation } = buf.output();
    assert.equal(output, "0123456789\nabcdefghij");
    assert.equal(truncation?.omitted_bytes, 0);
  });

  it("omits the middle of large output and reports it", () => {
    const buf = new HeadTailBuffer(10, 10);
    buf.write(b("A".repeat(50) + "Z".repeat(50)));
    const { output, truncation } = buf.output();
    assert.equal(truncation?.original_bytes, 100);
    assert.equal(truncation?.omitted_bytes, 80);
    assert.ok(output.startsWith("A".repeat(10)));
    assert.ok(output.endsWith("Z".repeat(10)));
    assert.ok(output.includes("... [omitted 80 bytes] ..."));
    assert.equal(buf.len(), 20);
    assert.equal(buf.totalWritten(), 100);
  });

  it("stays bounded over 5 MiB of writes", () => {
    const buf = new HeadTailBuffer();
    const chunk = Buffer.alloc(4097, "q");
    let total = 0;
    while (total < 5 * 1024 * 1024) total += buf.write(chunk);
    assert.ok(buf.len() <= 32768);
    assert.equal(buf.totalWritten(), total);
    assert.ok((buf.output().truncation?.omitted_bytes ?? 0) > 0);
  });

  it("cuts a long line to 2048 bytes ending in the marker", () => {
    const buf = new HeadTailBuffer();
    buf.write(b("m".repeat(2548) + "\n"));
    const lines = buf.output().output.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1);
    assert.equal(Buffer.byteLength(lines[0]!), MAX_LINE_LENGTH);
    assert.ok(lines[0]!.endsWith(LINE_TRUNCATION_SUFFIX));
  });

  it("cuts a long line in the tail", () => {
    const buf = new HeadTailBuffer(20, 5000);
    buf.write(b("head data goes here\n"));
    buf.write(b("T".repeat(2148) + "\n"));
    const { output, truncation } = buf.output();
    assert.notEqual(truncation, null);
    assert.ok(output.includes("... [truncated]"));
  });

  it("accepts many interleaved writers", async () => {
    const buf = new HeadTailBuffer();
    await Promise.all(
      Array.from({ length: 10 }, async (_, w) => {
        for (let i = 0; i < 1000; i++) {
          buf.write(b(`writer ${w} line ${i}\n`));
          if (i % 100 === 0) await Promise.resolve();
        }
      }),
    );
    assert.ok(buf.output().output.length > 0);
  });

  it("fills every truncation field", () => {
    const buf = new HeadTailBuffer(10, 10);
    buf.write(b("D".repeat(50)));
    assert.deepEqual(buf.output().truncation, {
      original_bytes: 50,
      retained_bytes: 50,
      omitted_bytes: 30,
      strategy: "head_tail",
    });
  });

  it("assembles byte-at-a-time writes", () => {
    const buf = new HeadTailBuffer();
    for (const c of b("hello world")) buf.write(Uint8Array.of(c));
    assert.deepEqual(buf.output(), { output: "hello world", truncation: null });
  });

  it("treats an empty write as a no-op", () => {
    const buf = new HeadTailBuffer();
    assert.equal(buf.write(new Uint8Array(0)), 0);
    assert.equal(buf.totalWritten(), 0);
  });

  it("forgets everything on reset", () => {
    const buf = new HeadTailBuffer();
    buf.write(b("some data"));
    buf.reset();
    assert.equal(buf.len(), 0);
    assert.equal(buf.totalWritten(), 0);
    assert.deepEqual(buf.output(), { output: "", truncation: null });
  });

  it("keeps its output when closed, and accepts writes after close", () => {
    const buf = new HeadTailBuffer(4, 4);
    buf.write(b("abcdefghij"));
    buf.close();
    assert.equal(buf.closed, true);
    assert.equal(buf.output().output, "abcd\n\n... [omitted 2 bytes] ...\n\nghij");
    buf.write(b("XY"));
    assert.equal(buf.output().output, "abcd\n\n... [omitted 4 bytes] ...\n\nijXY");
  });

  it("returns a copy from bytes()", () => {
    const buf = new HeadTailBuffer();
    buf.write(b("original"));
    const copy = buf.bytes();
    copy[0] = 0x58;
    assert.equal(buf.bytes().toString(), "original");
  });

  it("keeps the last bytes across ring wraparound", () => {
    const buf = new HeadTailBuffer(5, 10);
    for (const s of ["HEADD", "0123456789", "abcdefghij", "ABCDE"]) buf.write(b(s));
    assert.ok(buf.output().output.endsWith("fghijABCDE"));
  });

  it("cuts only the long line among short ones", () => {
    const buf = new HeadTailBuffer();
    buf.write(b("short line\n" + "L".repeat(2148) + "\n" + "short line\n"));
    const lines = buf.output().output.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 3);
    assert.equal(lines[0], "short line");
    assert.ok(lines[1]!.endsWith("... [truncated]"));
    assert.equal(lines[2], "short line");
  });
});

describe("rendering invalid UTF-8 like Go's JSON encoder", () => {
  it("keeps valid UTF-8", () => {
    assert.equal(decodeUtf8LikeGo(b("héllo ✓ 😀")), "héllo ✓ 😀");
  });

  it("replaces each byte of a truncated sequence with its own U+FFFD", () => {
    const euro = b("€");
    assert.equal(decodeUtf8LikeGo(Buffer.concat([b("a"), euro.subarray(0, 2), b("b")])), "a\uFFFD\uFFFDb");
    assert.equal(decodeUtf8LikeGo(b("😀").subarray(0, 3)), "\uFFFD\uFFFD\uFFFD");
  });

  it("rejects overlong forms, surrogates and code points past U+10FFFF", () => {
    assert.equal(decodeUtf8LikeGo(Uint8Array.of(0xc0, 0xaf)), "\uFFFD\uFFFD");
    assert.equal(decodeUtf8LikeGo(Uint8Array.of(0xe0, 0x80, 0xaf)), "\uFFFD\uFFFD\uFFFD");
    assert.equal(decodeUtf8LikeGo(Uint8Array.of(0xed, 0xa0, 0x80)), "\uFFFD\uFFFD\uFFFD");
    assert.equal(decodeUtf8LikeGo(Uint8Array.of(0xf4, 0x90, 0x80, 0x80)), "\uFFFD\uFFFD\uFFFD\uFFFD");
    assert.equal(decodeUtf8LikeGo(Uint8Array.of(0xff, 0x41)), "\uFFFDA");
  });

  it("counts retained bytes before rendering", () => {
    const buf = new HeadTailBuffer(4, 4);
    buf.write(b("€€€€"));
    const { output, truncation } = buf.output();
    assert.equal(truncation?.retained_bytes, 4 + Buffer.byteLength("\n\n... [omitted 4 bytes] ...\n\n") + 4);
    assert.ok(output.startsWith("€\uFFFD\n"));
  });
});

/** Reference: keep every byte, slice head and tail at the end. */
function referenceOutput(all: Buffer, head: number, tail: number): { bytes: Buffer; omitted: number | null } {
  if (all.length === 0) return { bytes: all, omitted: null };
  const h = all.subarray(0, Math.min(head, all.length));
  const rest = all.subarray(h.length);
  if (h.length < head || rest.length === 0 || tail === 0) return { bytes: truncateLines(h), omitted: null };
  const t = rest.subarray(Math.max(0, rest.length - tail));
  const omitted = all.length - h.length - t.length;
  const sep = omitted > 0 ? `\n\n... [omitted ${omitted} bytes] ...\n\n` : "\n";
  return { bytes: Buffer.concat([truncateLines(h), b(sep), truncateLines(t)]), omitted };
}

describe("HeadTailBuffer properties", () => {
  const writes = fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 40 });
  const sizes = fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 3000 }));

  it("retains at most head+tail bytes and matches the slicing reference", () => {
    fc.assert(
      fc.property(sizes, writes, fc.array(fc.boolean(), { maxLength: 40 }), ([head, tail], chunks, closes) => {
        const buf = new HeadTailBuffer(head, tail);
        chunks.forEach((c, i) => {
          buf.write(c);
          // close() trims the halves; writing after it must not change the result.
          if (closes[i]) buf.close();
        });
        const all = Buffer.concat(chunks);
        assert.ok(buf.len() <= head + tail);
        assert.equal(buf.totalWritten(), all.length);
        const got = buf.rawOutput();
        const want = referenceOutput(all, head, tail);
        assert.deepEqual(got.bytes, want.bytes);
        assert.equal(got.truncation?.omitted_bytes ?? null, want.omitted);
        if (got.truncation) assert.equal(got.truncation.retained_bytes, got.bytes.length);
      }),
      { numRuns: 300 },
    );
  });

  it("renders newline-rich text identically to the reference", () => {
    const text = fc.array(fc.constantFrom("a", "\n", "é", "x".repeat(700)), { maxLength: 30 }).map((a) => a.join(""));
    fc.assert(
      fc.property(fc.array(text, { maxLength: 20 }), (chunks) => {
        const buf = new HeadTailBuffer(2500, 2500);
        for (const c of chunks) buf.write(b(c));
        const want = referenceOutput(b(chunks.join("")), 2500, 2500);
        assert.equal(buf.output().output, decodeUtf8LikeGo(want.bytes));
      }),
      { numRuns: 200 },
    );
  });
});
