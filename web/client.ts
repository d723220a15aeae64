import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BoundaryLogService } from "../gen/agentd/boundary/v1/boundary_pb.js";
import { GitWatchService } from "../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { ProcessService } from "../gen/agentd/process/v1/process_pb.js";
import { StatusService } from "../gen/agentd/status/v1/status_pb.js";
import { TaskService } from "../gen/agentd/tasks/v1/tasks_pb.js";
import { auth } from "./auth.js";

/** Adds the bearer token, when one was entered, and asks for one on 401. */
const bearer: Interceptor = (next) => async (req) => {
  const token = auth.token();
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated) auth.require();
    throw err;
  }
};

/** Same origin only: the page talks to the agentd that served it, nothing else. */
const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const processes = createClient(ProcessService, transport);
export const gitwatch = createClient(GitWatchService, transport);
export const boundary = createClient(BoundaryLogService, transport);
export const status = createClient(StatusService, transport);
export const tasks = createClient(TaskService, transport);

/** A readable message for any failure of a call. */
export function errorMessage(err: unknown): string {
  const e = ConnectError.from(err);
  return e.code === Code.Unauthenticated ? "A token is required." : e.rawMessage || e.message;
}

/** True when the error only says the call was cancelled (a view closed its stream). */
export function isCancel(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}
