import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { WatchResponseSchema, type GitWatchService, type WatchResponse } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { ancestorIds, canonicalUuid } from "../http/chat.js";
import type { PathStore } from "./path-store.js";
import { watchStream, type WatchOpener } from "./watch-stream.js";

/**
 * `agentd.gitwatch.v1.GitWatchService`: feeds the path store for tools that
 * edit files without going through the process API, and reads it back;
 * `Watch` streams what the git watch WebSocket sends, for one chat or all.
 */
export function gitWatchService(
  pathStore: PathStore,
  openWatch: (chatIds: string[]) => Promise<WatchOpener>,
): ServiceImpl<typeof GitWatchService> {
  return {
    addPaths(req) {
      const chatId = requireChatId(req.chatId);
      pathStore.addPaths([chatId, ...ancestorIds(req.ancestorChatIds)], req.paths);
      return {};
    },
    getPaths(req) {
      return { paths: pathStore.getPaths(requireChatId(req.chatId)) };
    },
    listChats() {
      return { chatIds: pathStore.chatIds() };
    },
    async *watch(req, ctx): AsyncGenerator<WatchResponse> {
      const chatIds = req.chatId === "" ? pathStore.chatIds() : [requireChatId(req.chatId)];
      for await (const { chatId, msg } of watchStream(await openWatch(chatIds), ctx.signal)) {
        yield create(WatchResponseSchema, {
          scannedAt: msg.scanned_at ?? "",
          error: msg.message ?? "",
          repositories: (msg.repositories ?? []).map((r) => ({
            repoRoot: r.repo_root,
            branch: r.branch,
            remoteOrigin: r.remote_origin ?? "",
            unifiedDiff: r.unified_diff ?? "",
            removed: r.removed ?? false,
            chatId,
          })),
        });
      }
    },
  };
}

function requireChatId(raw: string): string {
  const id = canonicalUuid(raw);
  if (!id) throw new ConnectError("chat_id must be a UUID", Code.InvalidArgument);
  return id;
}
