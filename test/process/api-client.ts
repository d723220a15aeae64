import fs from "node:fs";
import type { ProcessInfo } from "../../src/process/manager.js";
import type { RunningAgentd } from "../helpers/agentd.js";

/** A reply from the process API: status, raw body, and the body parsed as JSON when it is JSON. */
export interface Reply<T = Record<string, unknown>> {
  status: number;
  text: string;
  json: T;
  contentType: string | null;
}

/** A small client for `/api/v0/processes` on a running agentd. */
export class ProcessApi {
  constructor(
    private readonly agentd: RunningAgentd,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** The same client with the Coder-Chat-Id header set. */
  asChat(chatId: string, ancestors?: string[]): ProcessApi {
    const h: Record<string, string> = { ...this.headers, "Coder-Chat-Id": chatId };
    if (ancestors) h["Coder-Ancestor-Chat-Ids"] = JSON.stringify(ancestors);
    return new ProcessApi(this.agentd, h);
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: string | object,
    signal?: AbortSignal,
  ): Promise<Reply<T>> {
    const res = await fetch(`${this.agentd.url}/api/v0/processes${path}`, {
      method,
      headers: this.headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json: json as T, contentType: res.headers.get("content-type") };
  }

  start(body: string | object): Promise<Reply<{ id: string; started: boolean; message?: string; detail?: string }>> {
    return this.request("POST", "/start", body);
  }

  /** Starts `command` and returns its id, failing loudly if the start was refused. */
  async startOk(command: string, extra: object = {}): Promise<string> {
    const r = await this.start({ command, ...extra });
    if (r.status !== 200) throw new Error(`start ${command}: ${r.status} ${r.text}`);
    return r.json.id;
  }

  list(): Promise<Reply<{ processes: ProcessRow[] }>> {
    return this.request("GET", "/list");
  }

  output(id: string, wait = false, signal?: AbortSignal): Promise<Reply<OutputReply>> {
    return this.request("GET", `/${id}/output${wait ? "?wait=true" : ""}`, undefined, signal);
  }

  signal(id: string, body: string | object): Promise<Reply<{ message: string; detail?: string }>> {
    return this.request("POST", `/${id}/signal`, body);
  }

  /** Starts `command` and waits for it to exit. */
  async run(command: string, extra: object = {}): Promise<OutputReply & { id: string }> {
    const id = await this.startOk(command, extra);
    const r = await this.output(id, true);
    return { id, ...r.json };
  }
}

/** One row of `list`: the shape the daemon's ProcessInfo has. */
export type ProcessRow = ProcessInfo;

export interface OutputReply {
  output: string;
  truncated?: { original_bytes: number; retained_bytes: number; omitted_bytes: number; strategy: string };
  running: boolean;
  exit_code?: number;
  message?: string;
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True while `pid` runs (a zombie waiting to be reaped counts as gone). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Waits for a pid file a child writes, and returns the pid in it. */
export async function readPidFile(file: string): Promise<number> {
  let pid = 0;
  await waitUntil(() => {
    try {
      pid = Number(fs.readFileSync(file, "utf8").trim());
    } catch {
      return false;
    }
    return pid > 0;
  }, `pid file ${file}`);
  return pid;
}
