import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ancestorIds, chatScope } from "../../src/http/chat.js";

const A = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

describe("chat headers", () => {
  it("treats a request without Coder-Chat-Id as non-chat", () => {
    assert.deepEqual(chatScope({}), { chatId: undefined, ancestorChatIds: [] });
  });

  it("treats an unparseable chat id as non-chat, not an error", () => {
    assert.equal(chatScope({ "coder-chat-id": "not-a-uuid" }).chatId, undefined);
    assert.equal(chatScope({ "coder-chat-id": "" }).chatId, undefined);
  });

  it("stores the chat id in canonical lowercase form", () => {
    assert.equal(chatScope({ "coder-chat-id": A.toUpperCase() }).chatId, A);
    assert.equal(chatScope({ "coder-chat-id": A.replace(/-/g, "") }).chatId, A);
    assert.equal(chatScope({ "coder-chat-id": `{${A}}` }).chatId, A);
  });

  it("parses ancestors as a JSON array, skipping bad entries and the nil UUID", () => {
    const scope = chatScope({
      "coder-chat-id": A,
      "coder-ancestor-chat-ids": JSON.stringify([B.toUpperCase(), "nope", 7, "00000000-0000-0000-0000-000000000000", B]),
    });
    assert.deepEqual(scope.ancestorChatIds, [B]);
  });

  it("ignores malformed ancestor JSON", () => {
    assert.deepEqual(chatScope({ "coder-chat-id": A, "coder-ancestor-chat-ids": "[oops" }).ancestorChatIds, []);
    assert.deepEqual(chatScope({ "coder-chat-id": A, "coder-ancestor-chat-ids": '{"a":1}' }).ancestorChatIds, []);
  });

  it("keeps ancestor ids from a Connect request the way it keeps the header's: canonical, nil and bad entries skipped, no repeats", () => {
    assert.deepEqual(ancestorIds([A.toUpperCase(), "00000000-0000-0000-0000-000000000000", "nope", A, B]), [A, B]);
  });
});
