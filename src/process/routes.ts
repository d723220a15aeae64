import type { IncomingMessage, ServerResponse } from "node:http";
import { chatScope, type ChatScope } from "../http/chat.js";
import { readBody, writeError, writeJson } from "../http/json.js";
import type { HttpServer } from "../http/server.js";
import type { Logger } from "../log.js";
import { goQuote, ProcessError } from "./errors.js";
import { decodeGoJson, GoJsonError, type GoStruct } from "./go-json.js";
import { processInfo, SIGNALS, type ProcessManager, type SignalName } from "./manager.js";

/** Where Coder mounts the process API on the agent's HTTP server. */
export const PROCESS_API_PREFIX = "/api/v0/processes";

/** workspacesdk.StartProcessRequest, plus agentd's `pty`, `timeout_ms` and `client_token`. */
const START_REQUEST: GoStruct = {
  typeName: "workspacesdk.StartProcessRequest",
  fields: {
    command: "string",
    workdir: "string",
    env: "map[string]string",
    background: "bool",
    pty: "bool",
    timeout_ms: "uint64",
    client_token: "string",
  },
};

/** workspacesdk.SignalProcessRequest. */
const SIGNAL_REQUEST: GoStruct = {
  typeName: "workspacesdk.SignalProcessRequest",
  fields: { signal: "string" },
};

/** Thrown for a body Go's decoder rejects; answered as Coder does. */
function invalidBody(err: GoJsonError): ProcessError {
  return new ProcessError("invalid", "Request body must be valid JSON.", err.message);
}

async function decodeBody(req: IncomingMessage, shape: GoStruct): Promise<ReturnType<typeof decodeGoJson>> {
  const body = await readBody(req);
  try {
    return decodeGoJson(body, shape);
  } catch (err) {
    if (err instanceof GoJsonError) throw invalidBody(err);
    throw err;
  }
}

/**
 * Mounts Coder's process routes (`/api/v0/processes/…`) on `http`, in
 * Coder's JSON shapes and error envelope, backed by `manager`.
 */
export function registerProcessRoutes(http: HttpServer, manager: ProcessManager, log: Logger): void {
  const handle =
    (fn: (req: IncomingMessage, res: ServerResponse, scope: ChatScope, id: string, url: URL) => Promise<void> | void) =>
    async (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => {
      const scope = chatScope(req.headers);
      res.once("finish", () =>
        log.debug({ method: req.method, path: url.pathname, status: res.statusCode, chat_id: scope.chatId }, "process api request"),
      );
      try {
        await fn(req, res, scope, params.id ?? "", url);
      } catch (err) {
        if (!(err instanceof ProcessError)) throw err;
        writeError(res, err.status, err.message, err.detail);
      }
    };

  http.route(
    "POST",
    `${PROCESS_API_PREFIX}/start`,
    handle(async (req, res, scope) => {
      const body = await decodeBody(req, START_REQUEST);
      const started = await manager.startProcess(
        {
          command: (body.command as string | undefined) ?? "",
          workdir: body.workdir as string | undefined,
          env: body.env as Record<string, string> | undefined,
          background: body.background as boolean | undefined,
          pty: body.pty as boolean | undefined,
          timeoutMs: body.timeout_ms as number | undefined,
          clientToken: body.client_token as string | undefined,
        },
        scope,
      );
      writeJson(res, 200, started);
    }),
  );

  http.route(
    "GET",
    `${PROCESS_API_PREFIX}/list`,
    handle((_req, res, scope) => writeJson(res, 200, { processes: manager.list(scope).map(processInfo) })),
  );

  http.route(
    "GET",
    `${PROCESS_API_PREFIX}/:id/output`,
    handle(async (_req, res, scope, id, url) => {
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.once("close", onClose);
      try {
        const snap = await manager.output(id, scope, { wait: url.searchParams.get("wait") === "true", signal: gone.signal });
        if (gone.signal.aborted) return;
        writeJson(res, 200, {
          output: snap.output,
          ...(snap.truncation ? { truncated: snap.truncation } : {}),
          running: snap.running,
          ...(snap.exitCode !== undefined ? { exit_code: snap.exitCode } : {}),
        });
      } finally {
        res.off("close", onClose);
      }
    }),
  );

  http.route(
    "POST",
    `${PROCESS_API_PREFIX}/:id/signal`,
    handle(async (req, res, scope, id) => {
      manager.checkChatAccess(id, scope);
      const body = await decodeBody(req, SIGNAL_REQUEST);
      const signal = (body.signal as string | undefined) ?? "";
      if (signal === "") throw new ProcessError("invalid", "Signal is required.");
      if (!Object.hasOwn(SIGNALS, signal)) {
        throw new ProcessError("invalid", `Unsupported signal ${goQuote(signal)}. Use "kill" or "terminate".`);
      }
      manager.signal(id, scope, signal as SignalName);
      writeJson(res, 200, { message: `Signal ${goQuote(signal)} sent to process ${goQuote(id)}.` });
    }),
  );
}
