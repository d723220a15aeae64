import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { editFromJson } from "../../src/files/edit-engine.js";
import { GoJsonError } from "../../src/process/go-json.js";

const parse = (json: string) => editFromJson(JSON.parse(json));

describe("editFromJson", () => {
  it("reads old_text, new_text and replace_all", () => {
    assert.deepEqual(parse('{"old_text":"a","new_text":"b","replace_all":true}'), { search: "a", replace: "b", replaceAll: true });
  });

  it("reads the legacy search and replace keys", () => {
    assert.deepEqual(parse('{"search":"a","replace":"b","replace_all":true}'), { search: "a", replace: "b", replaceAll: true });
  });

  it("falls back to the legacy keys only when old_text and new_text are both empty", () => {
    assert.deepEqual(parse('{"old_text":"","new_text":"","search":"a","replace":"b"}'), { search: "a", replace: "b", replaceAll: false });
    assert.deepEqual(parse('{"old_text":"x","search":"a","replace":"b"}'), { search: "x", replace: "", replaceAll: false });
    assert.deepEqual(parse('{"new_text":"y","search":"a","replace":"b"}'), { search: "", replace: "y", replaceAll: false });
  });

  it("accepts what coderd's FileEdit marshals: both key sets with the same values", () => {
    assert.deepEqual(parse('{"old_text":"a","new_text":"b","search":"a","replace":"b"}'), { search: "a", replace: "b", replaceAll: false });
  });

  it("matches keys case-insensitively, as Go does, a later key winning", () => {
    assert.deepEqual(parse('{"OLD_TEXT":"a","New_Text":"b","Replace_All":true}'), { search: "a", replace: "b", replaceAll: true });
    assert.deepEqual(parse('{"old_text":"a","OLD_TEXT":"c"}'), { search: "c", replace: "", replaceAll: false });
    assert.deepEqual(parse('{"\u017fearch":"a","replace":"b"}'), { search: "a", replace: "b", replaceAll: false });
  });

  it("ignores unknown keys and null values", () => {
    assert.deepEqual(parse('{"old_text":"a","new_text":null,"replace_all":null,"extra":[1]}'), { search: "a", replace: "", replaceAll: false });
    assert.deepEqual(parse("null"), { search: "", replace: "", replaceAll: false });
  });

  it("rejects values of the wrong type with Go's error text", () => {
    assert.throws(() => parse('{"old_text":5}'), new GoJsonError("json: cannot unmarshal number into Go struct field FileEdit.old_text of type string"));
    assert.throws(() => parse('{"replace_all":"yes"}'), new GoJsonError("json: cannot unmarshal string into Go struct field FileEdit.replace_all of type bool"));
    assert.throws(() => parse('"text"'), new GoJsonError("json: cannot unmarshal string into Go value of type workspacesdk.FileEdit"));
    assert.throws(() => parse("[]"), GoJsonError);
  });
});
