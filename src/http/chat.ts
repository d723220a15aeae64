import type { IncomingHttpHeaders } from "node:http";
import type { HandlerContext } from "@connectrpc/connect";

/** Header coderd sets on chat tool calls (workspacesdk.CoderChatIDHeader). */
export const CHAT_ID_HEADER = "coder-chat-id";
/** JSON array of the chat's ancestor chat ids, for sub-agent chats. */
export const ANCESTOR_CHAT_IDS_HEADER = "coder-ancestor-chat-ids";

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** Who a request acts for. `chatId` is undefined for non-chat requests. */
export interface ChatScope {
  chatId: string | undefined;
  ancestorChatIds: string[];
}

/**
 * Canonical lowercase hyphenated form of a UUID (Go's uuid.Parse also accepts
 * the `urn:uuid:` and braced forms), or undefined when it does not parse.
 */
export function canonicalUuid(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let v = value.trim();
  if (/^urn:uuid:/i.test(v)) v = v.slice(9);
  else if (v.startsWith("{") && v.endsWith("}")) v = v.slice(1, -1);
  if (!UUID_RE.test(v)) return undefined;
  const hex = v.replace(/-/g, "").toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads `Coder-Chat-Id` and `Coder-Ancestor-Chat-Ids`. A missing or
 * unparseable chat id makes the request non-chat (no error); bad ancestor
 * JSON means no ancestors, and bad entries are skipped.
 */
export function chatScope(headers: IncomingHttpHeaders): ChatScope {
  const chatId = canonicalUuid(headerValue(headers, CHAT_ID_HEADER));
  return { chatId, ancestorChatIds: parseAncestors(headerValue(headers, ANCESTOR_CHAT_IDS_HEADER)) };
}

function parseAncestors(raw: string | undefined): string[] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  return Array.isArray(parsed) ? ancestorIds(parsed) : [];
}

/**
 * Ancestor chat ids as Coder keeps them: each entry in canonical form,
 * entries that are not UUIDs (and the nil UUID) skipped, duplicates dropped.
 */
export function ancestorIds(entries: readonly unknown[]): string[] {
  const ids: string[] = [];
  for (const entry of entries) {
    const id = typeof entry === "string" ? canonicalUuid(entry) : undefined;
    if (id && id !== NIL_UUID && !ids.includes(id)) ids.push(id);
  }
  return ids;
}

/**
 * The chat scope of a Connect call: the request's `chat_id` (and ancestors)
 * when set, else the Coder-Chat-Id headers as the JSON API reads them. An
 * unparseable chat id makes the call non-chat.
 */
export function callChatScope(chatId: string, ancestorChatIds: string[], ctx: HandlerContext): ChatScope {
  if (chatId) return { chatId: canonicalUuid(chatId), ancestorChatIds: ancestorIds(ancestorChatIds) };
  return chatScope(Object.fromEntries(ctx.requestHeader.entries()));
}
