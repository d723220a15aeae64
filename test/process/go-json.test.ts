import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { goQuote } from "../../src/process/errors.js";
import { decodeGoJson, GoJsonError, type GoStruct } from "../../src/process/go-json.js";

const START: GoStruct = {
  typeName: "workspacesdk.StartProcessRequest",
  fields: { command: "string", env: "map[string]string", background: "bool", timeout_ms: "uint64" },
};

function error(body: string): string {
  try {
    decodeGoJson(body, START);
  } catch (err) {
    assert.ok(err instanceof GoJsonError);
    return err.message;
  }
  assert.fail(`decoded ${body}`);
}

describe("decoding request bodies like Go's json.Decoder", () => {
  it("reads the first value and ignores what follows it", () => {
    assert.deepEqual(decodeGoJson('{"command":"a"}{"command":"b"}', START), { command: "a" });
    assert.deepEqual(decodeGoJson('  {"command":"a"} ]]] ', START), { command: "a" });
  });

  it("matches keys exactly first, then case-insensitively, last one winning", () => {
    assert.deepEqual(decodeGoJson('{"Command":"x","COMMAND":"y"}', START), { command: "y" });
    assert.deepEqual(decodeGoJson('{"BACKGROUND":true,"other":{"deep":[1,2,{"a":null}]}}', START), { background: true });
  });

  it("leaves null fields at their zero value and merges repeated maps", () => {
    assert.deepEqual(decodeGoJson('{"command":null}', START), {});
    assert.deepEqual(decodeGoJson('{"env":{"A":"1"},"env":{"B":"2","C":null}}', START), { env: { A: "1", B: "2", C: "" } });
    assert.deepEqual(decodeGoJson("null", START), {});
  });

  it("decodes escapes in strings", () => {
    assert.deepEqual(decodeGoJson('{"command":"a\\tb\\u00e9\\ud83d\\ude00\\/"}', START), { command: "a\tbé😀/" });
  });

  it("reports empty and truncated bodies as EOF and unexpected EOF", () => {
    assert.equal(error(""), "EOF");
    assert.equal(error("   \n"), "EOF");
    assert.equal(error('{"command":'), "unexpected EOF");
    assert.equal(error('{"command":"abc'), "unexpected EOF");
    assert.equal(error("[1,"), "unexpected EOF");
  });

  it("reports syntax errors with Go's wording", () => {
    assert.equal(error("{invalid json"), "invalid character 'i' looking for beginning of object key string");
    assert.equal(error("xyz"), "invalid character 'x' looking for beginning of value");
    assert.equal(error('{"a" 1}'), "invalid character '1' after object key");
    assert.equal(error('{"a":1 "b":2}'), "invalid character '\"' after object key:value pair");
    assert.equal(error("[1 2]"), "invalid character '2' after array element");
    assert.equal(error('{"a":tru}'), "invalid character '}' in literal true (expecting 'e')");
    assert.equal(error('{"a":-x}'), "invalid character 'x' in numeric literal");
    assert.equal(error('{"a":1.x}'), "invalid character 'x' after decimal point in numeric literal");
    assert.equal(error('{"a":1ex}'), "invalid character 'x' in exponent of numeric literal");
    assert.equal(error('{"a":"\\q"}'), "invalid character 'q' in string escape code");
    assert.equal(error('{"a":"\\u12x4"}'), "invalid character 'x' in \\u hexadecimal character escape");
    assert.equal(error('{"a":"\n"}'), "invalid character '\\n' in string literal");
    assert.equal(error("{'a':1}"), "invalid character '\\'' looking for beginning of object key string");
    assert.equal(error("123x"), "invalid character 'x' after top-level value");
  });

  it("reports type mismatches with the struct field and Go type", () => {
    const field = (f: string, what: string, type: string) =>
      `json: cannot unmarshal ${what} into Go struct field StartProcessRequest.${f} of type ${type}`;
    assert.equal(error('{"command":1}'), field("command", "number", "string"));
    assert.equal(error('{"command":["a"]}'), field("command", "array", "string"));
    assert.equal(error('{"background":"yes"}'), field("background", "string", "bool"));
    assert.equal(error('{"timeout_ms":-1}'), field("timeout_ms", "number -1", "uint64"));
    assert.equal(error('{"timeout_ms":1.5}'), field("timeout_ms", "number 1.5", "uint64"));
    assert.equal(error('{"env":{"K":1}}'), field("env.K", "number", "string"));
    assert.equal(error('"text"'), "json: cannot unmarshal string into Go value of type workspacesdk.StartProcessRequest");
  });

  it("rejects nesting deeper than Go's limit", () => {
    assert.equal(error(`{"x":${"[".repeat(10001)}`), "exceeded max depth");
  });
});

describe("Go %q quoting", () => {
  it("quotes ordinary ids as JSON would", () => {
    assert.equal(goQuote("abc-123"), '"abc-123"');
  });

  it("escapes quotes, backslashes, control and non-printable characters as Go does", () => {
    assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(goQuote("\n\t\x07\x00\x7f"), '"\\n\\t\\a\\x00\\x7f"');
    assert.equal(goQuote("é😀"), '"é😀"');
    assert.equal(goQuote("\u00ad\u200b"), '"\\u00ad\\u200b"');
  });
});
