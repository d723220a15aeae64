import fs from "node:fs";
import path from "node:path";
import { after, before } from "node:test";
import { startAgentd, tempDir, type RunningAgentd, type StartOptions } from "../helpers/agentd.js";

/** Running as root: permission bits do not stop reads, so 403 cases are skipped. */
export const IS_ROOT = process.getuid?.() === 0;

/** A reply as a test sees it: status, headers, raw text and parsed JSON (when it is JSON). */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** A client of the files routes of one running agentd. */
export class FilesClient {
  constructor(readonly base: string) {}

  async call(method: string, route: string, init: { query?: Record<string, string>; body?: RequestInit["body"]; headers?: Record<string, string> } = {}): Promise<Reply> {
    const url = new URL(`${this.base}/api/v0/${route}`);
    for (const [k, v] of Object.entries(init.query ?? {})) url.searchParams.append(k, v);
    const res = await fetch(url, {
      method,
      body: init.body,
      headers: init.headers,
      ...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  readFile(query: Record<string, string>): Promise<Reply> {
    return this.call("GET", "read-file", { query });
  }

  readLines(query: Record<string, string>): Promise<Reply> {
    return this.call("GET", "read-file-lines", { query });
  }

  write(p: string, body: RequestInit["body"], headers: Record<string, string> = {}): Promise<Reply> {
    return this.call("POST", "write-file", { query: { path: p }, body, headers });
  }

  edit(body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return this.call("POST", "edit-files", { body: typeof body === "string" ? body : JSON.stringify(body), headers });
  }

  list(body: unknown, query: Record<string, string> = {}): Promise<Reply> {
    return this.call("POST", "list-directory", { query, body: typeof body === "string" ? body : JSON.stringify(body) });
  }

  resolve(query: Record<string, string>): Promise<Reply> {
    return this.call("GET", "resolve-path", { query });
  }
}

/** One agentd for the calling test file, plus scratch directories removed after it. */
export function filesFixture(opts: StartOptions = {}): { agentd: () => RunningAgentd; api: () => FilesClient; scratch: () => string } {
  let agentd: RunningAgentd | undefined;
  let api: FilesClient | undefined;
  const dirs: string[] = [];
  before(async () => {
    agentd = await startAgentd(opts);
    dirs.push(agentd.dir);
    api = new FilesClient(agentd.url);
  });
  after(async () => {
    await agentd?.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    agentd: () => agentd!,
    api: () => api!,
    scratch: () => {
      const d = fs.realpathSync(tempDir("agentd-files-"));
      dirs.push(d);
      return d;
    },
  };
}

/** Writes `content` at `dir/name` and returns the path. */
export function put(dir: string, name: string, content: string | Buffer, mode?: number): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  if (mode !== undefined) fs.chmodSync(p, mode);
  return p;
}

/** The names in `dir` that look like write-file temp files. */
export function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^\..+\.tmp\.[0-9a-f]{8}$/.test(n));
}
