import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { goJson } from "../../src/http/json.js";
import { linesResponseJson } from "../../src/files/lines-json.js";
import { DEFAULT_LINE_LIMITS, linesError, numberLines } from "../../src/files/read-lines.js";
import { decodeUtf8LikeGo } from "../../src/process/go-utf8.js";

/** The reference encoding: decode the content as Go's encoder reads it, then goJson. */
function reference(response: ReturnType<typeof numberLines>): string {
  const { content, ...rest } = response;
  return goJson(content === undefined ? rest : { ...rest, content: decodeUtf8LikeGo(content) });
}

const limits = { ...DEFAULT_LINE_LIMITS, maxResponseBytes: 1 << 20 };

describe("linesResponseJson", () => {
  it("writes the bytes goJson writes for the decoded content: escapes, U+2028/9, HTML characters, invalid UTF-8", () => {
    const data = Buffer.concat([
      Buffer.from('a "quoted" \\ <b>&amp;\t\r\x00\x1b\x7f é 日本 😀 \u2028\u2029\n'),
      Buffer.from([0xff, 0xc3, 0x0a, 0xed, 0xa0, 0x80, 0xe2, 0x80, 0x0a, 0xf0, 0x9f, 0x98]),
    ]);
    const response = numberLines(data, data.length, 1, 0, limits);
    assert.equal(linesResponseJson(response).toString("latin1"), Buffer.from(reference(response)).toString("latin1"));
  });

  it("matches goJson for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const data = Buffer.from(bytes);
        const response = numberLines(data, data.length, 1, 0, limits);
        assert.deepEqual(linesResponseJson(response), Buffer.from(reference(response)));
      }),
      { numRuns: 2000 },
    );
  });

  it("encodes failures and empty files as goJson does", () => {
    for (const response of [linesError('file does not exist: /a<b>&"c"'), numberLines(Buffer.alloc(0), 0, 1, 0, limits)]) {
      assert.equal(linesResponseJson(response).toString(), reference(response));
    }
  });
});
