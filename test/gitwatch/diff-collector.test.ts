import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DiffCollector, MAX_FILE_DIFF_BYTES, unquote } from "../../src/gitwatch/diff-collector.js";
import { humanizeIBytes } from "../../src/gitwatch/humanize.js";
import { formatRfc3339Nano } from "../../src/gitwatch/rfc3339.js";

const DIFF = [
  "diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n",
  'diff --git "a/tab\\there" "b/tab\\there"\nnew file mode 100644\nindex 0000000..3e75765\n--- /dev/null\n+++ "b/tab\\there"\n@@ -0,0 +1 @@\n+x\n',
  "diff --git a/bin.dat b/bin.dat\nnew file mode 100644\nindex 0000000..d5d0b8b\nBinary files /dev/null and b/bin.dat differ\n",
  "diff --git a/with space b/with space\nindex 1..2 100644\n--- a/with space\t\n+++ b/with space\t\n@@ -1 +1 @@\n-a\n+b\n",
].join("");

function collect(chunks: Buffer[]) {
  const c = new DiffCollector({ kept: 0, limit: 1 << 30 });
  chunks.forEach((b) => c.push(b));
  return c.end();
}

describe("diff collector", () => {
  it("splits a diff into file sections with their worktree paths", () => {
    const sections = collect([Buffer.from(DIFF)]);
    assert.deepEqual(
      sections.map((s) => [s.path, s.binary]),
      [
        ["a.txt", false],
        ["tab\there", false],
        ["bin.dat", true],
        ["with space", false],
      ],
    );
    assert.equal(sections.map((s) => s.text).join(""), DIFF);
  });

  it("gives the same sections however the stream is chunked", () => {
    const whole = collect([Buffer.from(DIFF)]);
    const bytes = Buffer.from(DIFF);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = points.slice(1).map((end, i) => bytes.subarray(points[i], end));
        assert.deepEqual(collect(chunks), whole);
      }),
    );
  });

  it("stops keeping a file's text past the per-file limit but keeps counting", () => {
    const body = `+${"x".repeat(99)}\n`.repeat(Math.ceil(MAX_FILE_DIFF_BYTES / 100) + 10);
    const text = `diff --git a/big b/big\n--- a/big\n+++ b/big\n@@ -1 +1 @@\n${body}`;
    const [section] = collect([Buffer.from(text)]);
    assert.equal(section!.text, undefined);
    assert.equal(section!.bytes, Buffer.byteLength(text));
  });
});

describe("helpers", () => {
  it("undoes git's C quoting, including octal UTF-8 bytes", () => {
    assert.equal(unquote('"a/\\303\\274ber \\"q\\" \\\\ \\t"'), 'a/über "q" \\ \t');
    assert.equal(unquote("plain"), "plain");
    assert.equal(unquote('"broken'), undefined);
  });

  it("prints scanned_at as Go's RFC3339Nano: UTC, trailing zeros of the fraction trimmed", () => {
    const second = BigInt(Date.UTC(2026, 2, 3, 10, 0, 1)) * 1_000_000n;
    assert.deepEqual(
      [0n, 1n, 120_000_000n, 123_456_789n, 100_000n].map((ns) => formatRfc3339Nano(second + ns)),
      [
        "2026-03-03T10:00:01Z",
        "2026-03-03T10:00:01.000000001Z",
        "2026-03-03T10:00:01.12Z",
        "2026-03-03T10:00:01.123456789Z",
        "2026-03-03T10:00:01.0001Z",
      ],
    );
  });

  it("prints sizes as Go's humanize.IBytes", () => {
    assert.deepEqual(
      [0, 9, 10, 300, 1023, 1024, 1536, 5 * 1024 * 1024, 12 * 1024 * 1024, 10 * 1024 - 1, 3 * 1024 * 1024 + 1].map(
        humanizeIBytes,
      ),
      ["0 B", "9 B", "10 B", "300 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "12 MiB", "10 KiB", "3.0 MiB"],
    );
  });
});
