import type { IncomingMessage, ServerResponse } from "node:http";
import type { ChatScope } from "../http/chat.js";
import { readBody, writeError, writeJson } from "../http/json.js";
import { goQuote, ProcessError } from "./errors.js";
import { decodeGoJson, GoJsonError, type GoStruct } from "./go-json.js";
import { processInfo, SIGNALS, type ProcessManager, type SignalName } from "./manager.js";
import type { ProcessRoute } from "./routes.js";

/** Serves one process route: `scope` is the request's chat, `id` the `:id` parameter ("" when none). */
export type ProcessHandler = (req: IncomingMessage, res: ServerResponse, scope: ChatScope, id: string, url: URL) => Promise<void>;

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
 * The handlers of Coder's process routes (`/api/v0/processes/…`), in
 * Coder's JSON shapes and error envelope, backed by `manager`.
 */
export function processHandlers(manager: ProcessManager): Record<ProcessRoute, ProcessHandler> {
  const handled =
    (fn: (req: IncomingMessage, res: ServerResponse, scope: ChatScope, id: string, url: URL) => Promise<void> | void): ProcessHandler =>
    async (req, res, scope, id, url) => {
      try {
        await fn(req, res, scope, id, url);
      } catch (err) {
        if (!(err instanceof ProcessError)) throw err;
        writeError(res, err.status, err.message, err.detail);
      }
    };

  return {
    start: handled(async (req, res, scope) => {
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

    list: handled((_req, res, scope) => writeJson(res, 200, { processes: manager.list(scope).map(processInfo) })),

    output: handled(async (_req, res, scope, id, url) => {
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

    signal: handled(async (req, res, scope, id) => {
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
  };
}
