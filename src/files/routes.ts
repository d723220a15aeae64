import { chatScope } from "../http/chat.js";
import type { HttpServer, RouteOptions } from "../http/server.js";
import { lazily } from "../lazy.js";
import type { Logger } from "../log.js";
import type { Files } from "./files.js";
import type { FilesMetrics } from "./metrics.js";

/** Where Coder mounts the files routes on the agent's HTTP server. */
export const FILES_API_PREFIX = "/api/v0";

/** The files routes, as the metrics' `route` label names them. */
export type FilesRoute = "read-file" | "read-file-lines" | "write-file" | "edit-files" | "list-directory" | "resolve-path";

/** Each files route's method and what it declares to the HTTP guard. */
const FILES_ROUTES: { method: string; name: FilesRoute; options?: RouteOptions }[] = [
  { method: "GET", name: "read-file" },
  { method: "GET", name: "read-file-lines" },
  { method: "POST", name: "write-file", options: { rawBody: true } },
  { method: "POST", name: "edit-files" },
  { method: "POST", name: "list-directory" },
  { method: "GET", name: "resolve-path" },
];

/**
 * Mounts Coder's files routes (`/api/v0/read-file`, …) on `http`. The routes
 * (and what the guard needs to know of them) are registered now; their
 * handlers and `files` load with the first files request (see `lazily`), so
 * a failed load answers 500 and the next request loads again. Every answer
 * is counted in `metrics` and logged.
 */
export function registerFilesRoutes(http: HttpServer, files: () => Promise<Files>, metrics: FilesMetrics, log: Logger): void {
  const handlers = lazily(async () => {
    const [{ filesHandlers }, loaded] = await Promise.all([import("./handlers.js"), files()]);
    return filesHandlers(loaded, log);
  });
  for (const { method, name, options } of FILES_ROUTES) {
    http.route(
      method,
      `${FILES_API_PREFIX}/${name}`,
      async (req, res, _params, url) => {
        const scope = chatScope(req.headers);
        res.once("finish", () => {
          metrics.requests.inc({ route: name, code: String(res.statusCode) });
          log.debug({ method: req.method, route: name, status: res.statusCode, chat_id: scope.chatId }, "files api request");
        });
        const handle = (await handlers())[name];
        await handle(req, res, url, scope);
      },
      options,
    );
  }
}
