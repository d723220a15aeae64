import { chatScope } from "../http/chat.js";
import type { HttpServer } from "../http/server.js";
import { lazily } from "../lazy.js";
import type { Logger } from "../log.js";
import type { ProcessManager } from "./manager.js";

/** Where Coder mounts the process API on the agent's HTTP server. */
export const PROCESS_API_PREFIX = "/api/v0/processes";

/** The process routes, by what they do. */
export type ProcessRoute = "start" | "list" | "output" | "signal";

/** Each process route's method and path under PROCESS_API_PREFIX. */
const PROCESS_ROUTES: { method: string; path: string; name: ProcessRoute }[] = [
  { method: "POST", path: "start", name: "start" },
  { method: "GET", path: "list", name: "list" },
  { method: "GET", path: ":id/output", name: "output" },
  { method: "POST", path: ":id/signal", name: "signal" },
];

/**
 * Mounts Coder's process routes (`/api/v0/processes/…`) on `http`, backed
 * by `manager`. The routes are registered now; their handlers (request
 * decoding, Coder's JSON shapes) load with the first process request (see
 * `lazily`), so a failed load answers 500 and the next request loads again.
 */
export function registerProcessRoutes(http: HttpServer, manager: ProcessManager, log: Logger): void {
  const handlers = lazily(async () => (await import("./handlers.js")).processHandlers(manager));
  for (const { method, path, name } of PROCESS_ROUTES) {
    http.route(method, `${PROCESS_API_PREFIX}/${path}`, async (req, res, params, url) => {
      const scope = chatScope(req.headers);
      res.once("finish", () =>
        log.debug({ method: req.method, path: url.pathname, status: res.statusCode, chat_id: scope.chatId }, "process api request"),
      );
      const handle = (await handlers())[name];
      await handle(req, res, scope, params.id ?? "", url);
    });
  }
}
