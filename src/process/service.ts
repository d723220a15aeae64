import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  ConfirmKillResponseSchema,
  FollowResponseSchema,
  ListResponseSchema,
  OutputResponseSchema,
  PreviewKillResponseSchema,
  ProcessInfoSchema,
  ProcessService,
  Signal,
  SignalResponseSchema,
  StartResponseSchema,
  TruncationSchema,
  type FollowResponse,
  type ProcessInfo,
} from "../../gen/agentd/process/v1/process_pb.js";
import { callChatScope } from "../http/chat.js";
import { goQuote, ProcessError } from "./errors.js";
import { KillPreviews, type ConfirmRefusal } from "./kill-preview.js";
import type { ManagedProcess } from "./managed-process.js";
import { processInfo, type ProcessManager, type SignalName } from "./manager.js";

const SIGNAL_NAMES: Partial<Record<Signal, SignalName>> = {
  [Signal.KILL]: "kill",
  [Signal.TERMINATE]: "terminate",
};

/** Most processes one kill preview may name (the dashboard selects from a list of at most 10). */
export const MAX_KILL_IDS = 100;

/** What a refused confirmation says: the token cannot be used, preview again. */
const REFUSAL_TEXT: Record<ConfirmRefusal, string> = {
  unknown: "Kill token is unknown or was already used. Preview the kill again.",
  expired: "Kill token has expired. Preview the kill again.",
  mismatch: "Kill token was issued for other processes or another signal. Preview the kill again.",
};

/** The signal a request names, or InvalidArgument. */
function signalName(signal: Signal): SignalName {
  if (signal === Signal.UNSPECIFIED) throw new ConnectError("Signal is required.", Code.InvalidArgument);
  const name = SIGNAL_NAMES[signal];
  if (!name) throw new ConnectError(`Unsupported signal ${signal}. Use SIGNAL_KILL or SIGNAL_TERMINATE.`, Code.InvalidArgument);
  return name;
}

/** The ids of a kill request, deduplicated, or InvalidArgument. */
function killIds(ids: string[]): string[] {
  const unique = [...new Set(ids)];
  if (unique.length === 0) throw new ConnectError("At least one process id is required.", Code.InvalidArgument);
  if (unique.length > MAX_KILL_IDS) {
    throw new ConnectError(`At most ${MAX_KILL_IDS} processes can be killed at once.`, Code.InvalidArgument);
  }
  return unique;
}

function toProcessInfo(p: ManagedProcess): ProcessInfo {
  const r = processInfo(p);
  return create(ProcessInfoSchema, {
    id: r.id,
    command: r.command,
    workdir: r.workdir ?? "",
    background: r.background,
    running: r.running,
    exitCode: r.exit_code,
    startedAtUnix: BigInt(r.started_at_unix),
    exitedAtUnix: r.exited_at_unix === undefined ? undefined : BigInt(r.exited_at_unix),
    pty: p.meta.pty,
  });
}

/** Runs `fn`, turning a ProcessError into the ConnectError of the same kind. */
async function connectErrors<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProcessError) {
      throw new ConnectError(err.detail ? `${err.message} ${err.detail}` : err.message, err.code);
    }
    throw err;
  }
}

/**
 * ProcessService over the same manager the JSON routes use: one set of
 * rules (chat scope, limits, tokens, bounded output) for both transports.
 */
export function processService(
  manager: ProcessManager,
  previews = new KillPreviews(),
): ServiceImpl<typeof ProcessService> {
  return {
    start: (req, ctx) =>
      connectErrors(async () => {
        const scope = callChatScope(req.chatId, req.ancestorChatIds, ctx);
        const started = await manager.startProcess(
          {
            command: req.command,
            workdir: req.workdir,
            env: req.env,
            background: req.background,
            pty: req.pty,
            timeoutMs: Number(req.timeoutMs),
            clientToken: req.clientToken,
          },
          scope,
        );
        return create(StartResponseSchema, started);
      }),

    list: (req, ctx) =>
      connectErrors(() => {
        const procs = manager.list(callChatScope(req.chatId, [], ctx));
        return create(ListResponseSchema, { processes: procs.map(toProcessInfo) });
      }),

    output: (req, ctx) =>
      connectErrors(async () => {
        const snap = await manager.output(req.id, callChatScope(req.chatId, [], ctx), { wait: req.wait, signal: ctx.signal });
        const t = snap.truncation;
        return create(OutputResponseSchema, {
          output: snap.output,
          truncated: t
            ? create(TruncationSchema, {
                originalBytes: BigInt(t.original_bytes),
                retainedBytes: BigInt(t.retained_bytes),
                omittedBytes: BigInt(t.omitted_bytes),
                strategy: t.strategy,
              })
            : undefined,
          running: snap.running,
          exitCode: snap.exitCode,
        });
      }),

    async *follow(req, ctx): AsyncGenerator<FollowResponse> {
      const { proc, queue } = await connectErrors(() => manager.follow(req.id, callChatScope(req.chatId, [], ctx)));
      try {
        for await (const item of queue.drain(ctx.signal)) {
          const droppedBytes = BigInt(item.droppedBytes);
          if (item.kind === "data") yield create(FollowResponseSchema, { data: item.data, droppedBytes });
          else yield create(FollowResponseSchema, { exited: true, exitCode: item.exitCode, droppedBytes });
        }
      } finally {
        proc.unfollow(queue);
      }
    },

    signal: (req, ctx) =>
      connectErrors(() => {
        const scope = callChatScope(req.chatId, [], ctx);
        manager.checkChatAccess(req.id, scope);
        const name = signalName(req.signal);
        manager.signal(req.id, scope, name);
        return create(SignalResponseSchema, { message: `Signal ${goQuote(name)} sent to process ${goQuote(req.id)}.` });
      }),

    previewKill: (req, ctx) =>
      connectErrors(() => {
        const scope = callChatScope(req.chatId, [], ctx);
        signalName(req.signal);
        const procs = killIds(req.ids).map((id) => manager.get(id, scope));
        const exited = procs.find((p) => !p.running);
        if (exited) throw new ConnectError(`Process ${goQuote(exited.id)} is not running.`, Code.FailedPrecondition);
        const { token, expiresAtMs } = previews.issue(
          procs.map((p) => p.id),
          req.signal,
        );
        return create(PreviewKillResponseSchema, {
          processes: procs.map(toProcessInfo),
          token,
          expiresAtUnixMs: BigInt(expiresAtMs),
        });
      }),

    confirmKill: (req, ctx) =>
      connectErrors(() => {
        const scope = callChatScope(req.chatId, [], ctx);
        const name = signalName(req.signal);
        const ids = killIds(req.ids);
        const refusal = previews.redeem(req.token, ids, req.signal);
        if (refusal) throw new ConnectError(REFUSAL_TEXT[refusal], Code.Aborted);
        const results = ids.map((id) => {
          try {
            manager.signal(id, scope, name);
            return { id, signalled: true, error: "" };
          } catch (err) {
            if (err instanceof ProcessError) return { id, signalled: false, error: err.message };
            throw err;
          }
        });
        return create(ConfirmKillResponseSchema, { results });
      }),
  };
}
