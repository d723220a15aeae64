import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { GitWatchService } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { ancestorIds, canonicalUuid } from "../http/chat.js";
import type { PathStore } from "./path-store.js";

/**
 * `agentd.gitwatch.v1.GitWatchService`: feeds the path store for tools that
 * edit files without going through the process API, and reads it back.
 */
export function gitWatchService(pathStore: PathStore): ServiceImpl<typeof GitWatchService> {
  return {
    addPaths(req) {
      const chatId = requireChatId(req.chatId);
      pathStore.addPaths([chatId, ...ancestorIds(req.ancestorChatIds)], req.paths);
      return {};
    },
    getPaths(req) {
      return { paths: pathStore.getPaths(requireChatId(req.chatId)) };
    },
  };
}

function requireChatId(raw: string): string {
  const id = canonicalUuid(raw);
  if (!id) throw new ConnectError("chat_id must be a UUID", Code.InvalidArgument);
  return id;
}
