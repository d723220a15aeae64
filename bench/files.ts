/**
 * Files API against the naive job a user would otherwise run, over HTTP, to
 * a real `bin/agentd serve`.
 *
 * The baseline of each route is a minimal Node HTTP server in its own
 * process (NAIVE_SOURCE, plain JavaScript), asked by the same client for the
 * same request over loopback, whose handler does the naive job the issue
 * names and nothing else: no guard, no validation, no atomic-write safety
 * (fixed temp name, no fsync of anything, no mode kept), no hashing, no
 * metrics. Both sides pay for HTTP, loopback and the client alike, so each
 * ratio measures what agentd adds (guard, query and body validation, symlink
 * resolution, per-path lock, exclusive temp file, hashing, Go-exact JSON,
 * metrics) rather than the cost of HTTP itself, which an in-process baseline
 * would charge to agentd (a plain Node server that discards a 64 MiB upload
 * moves 300-500 MiB/s where an in-process file stream moves over 1 GiB/s).
 * The in-process numbers are still printed, for reference only.
 *
 * - edit-files, one exact edit in a 1 MiB file, vs readFile + replace +
 *   writeFile of a temp file + rename (goal ≤ 1.5×, median latency);
 * - write-file of 64 MiB vs createWriteStream to a temp file + rename
 *   (goal ≥ 0.8× throughput, median);
 * - read-file-lines of a 10,000-line file vs readFile + split into numbered
 *   lines JSON (goal ≤ 2×, median latency);
 * - agentd's RSS growth while it serves 100 concurrent read-file of a
 *   1 GiB sparse file (goal < 32 MiB); each client reads 16 MiB of the
 *   whole-file response and then goes away. It runs last, on the daemon
 *   the other cases have worked, as a daemon in use is. File data held is
 *   bounded (two 64 KiB buffers per reader, 12.5 MiB for 100); much of the
 *   rest is V8 growing its young generation under the allocation rate: run
 *   alone on a fresh daemon this case grew 27-34 MiB on a loaded machine,
 *   16 MiB with `node --max-semi-space-size=1`.
 * The three variants of a case run alternately, sample by sample, so load
 * from elsewhere on the machine hurts them alike.
 * Run: make build && node --import tsx bench/files.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { startAgentd, tempDir, type RunningAgentd } from "../test/helpers/agentd.js";

const MIB = 1024 * 1024;
const EDIT_SAMPLES = 40;
const LINES_SAMPLES = 40;
const WRITE_SAMPLES = 9;
/** Untimed rounds before the small-request cases. */
const WARMUP_ROUNDS = 10;
/** Untimed rounds before the 64 MiB uploads. */
const WRITE_WARMUP_ROUNDS = 3;
const WRITE_BYTES = 64 * MIB;
const LINES = 10_000;
const READERS = 100;
const READ_PER_CLIENT = 16 * MIB;
const SPARSE_BYTES = 1024 * MIB;
/** USER_HZ of /proc/<pid>/stat's utime and stime (100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The naive server: Node's http module and the fs calls the issue names,
 * answering the same JSON shapes (a newline after each, as agentd's).
 */
const NAIVE_SOURCE = `
import fs from "node:fs";
import http from "node:http";
import { pipeline } from "node:stream/promises";

const json = (res, value) => {
  const body = JSON.stringify(value) + "\\n";
  res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
};
const readAll = async (req) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
};
const routes = {
  "/api/v0/edit-files": async (req, res) => {
    const { files } = JSON.parse(await readAll(req));
    for (const file of files) {
      let text = await fs.promises.readFile(file.path, "utf8");
      for (const edit of file.edits) text = text.replace(edit.old_text, () => edit.new_text);
      await fs.promises.writeFile(file.path + ".tmp", text);
      await fs.promises.rename(file.path + ".tmp", file.path);
    }
    json(res, {});
  },
  "/api/v0/write-file": async (req, res, q) => {
    const p = q.get("path");
    await pipeline(req, fs.createWriteStream(p + ".tmp"));
    await fs.promises.rename(p + ".tmp", p);
    json(res, { message: "Successfully wrote to " + JSON.stringify(p) });
  },
  "/api/v0/read-file-lines": async (_req, res, q) => {
    const text = await fs.promises.readFile(q.get("path"), "utf8");
    const lines = text.split("\\n");
    const first = Number(q.get("offset") ?? 1);
    const window = lines.slice(first - 1, first - 1 + Number(q.get("limit")));
    const content = window.map((line, i) => first + i + "\\t" + line).join("\\n");
    json(res, { success: true, file_size: Buffer.byteLength(text), total_lines: lines.length, lines_read: window.length, content });
  },
};
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://naive");
  routes[url.pathname](req, res, url.searchParams).catch((err) => {
    res.writeHead(500);
    res.end(String(err));
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;

/** The naive server in its own process, and its base URL. */
async function startNaive(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ["--input-type=module", "-e", NAIVE_SOURCE], { stdio: ["ignore", "pipe", "inherit"] });
  const [port] = (await once(proc.stdout!, "data")) as [Buffer];
  return { url: `http://127.0.0.1:${port.toString().trim()}`, proc };
}

/** Where each variant of a case sends its requests. */
interface Servers {
  agentd: RunningAgentd;
  naive: string;
  naivePid: number;
}

/** CPU time (user + system, ms) a process has used so far. */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** A case's medians per variant, and each server's CPU time per timed request. */
interface Measured {
  medians: number[];
  cpu: { agentd: number; naive: number };
}

/**
 * Runs each of `fns` (agentd, naive server, in-process) in turn, `warmup`
 * untimed rounds (JIT and page cache reach their steady state) then `n`
 * timed rounds; the median ms of each, and the CPU time each server spent
 * per timed request, which load from elsewhere on the machine hardly skews.
 */
async function alternate(servers: Servers, warmup: number, n: number, fns: (() => Promise<unknown>)[]): Promise<Measured> {
  for (let i = 0; i < warmup; i++) {
    for (const fn of fns) await fn();
  }
  const agentdCpu = cpuMs(servers.agentd.proc.pid!);
  const naiveCpu = cpuMs(servers.naivePid);
  const samples = fns.map((): number[] => []);
  for (let i = 0; i < n; i++) {
    for (const [k, fn] of fns.entries()) samples[k]!.push(await time(fn));
  }
  return {
    medians: samples.map(median),
    cpu: { agentd: (cpuMs(servers.agentd.proc.pid!) - agentdCpu) / n, naive: (cpuMs(servers.naivePid) - naiveCpu) / n },
  };
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: "POST", body });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** Prints a case's numbers (latencies, or throughputs when `throughput`) and agentd's ratio to the naive server. */
function report(what: string, unit: string, values: number[], cpu: Measured["cpu"], goal: string, throughput = false): void {
  const [api, naive, local] = values as [number, number, number];
  const f = (x: number) => x.toFixed(unit === "ms" ? 2 : 0);
  console.log(`${what}: agentd ${f(api)} ${unit}, naive HTTP server ${f(naive)} ${unit}, in-process (reference) ${f(local)} ${unit}`);
  console.log(`  CPU per request: agentd ${cpu.agentd.toFixed(1)} ms, naive HTTP server ${cpu.naive.toFixed(1)} ms`);
  console.log(`  agentd / in-process (reference only) = ${(api / local).toFixed(2)}`);
  const name = what.split(" ")[0];
  const ratio = (api / naive).toFixed(2);
  console.log(throughput ? `ratio: ${name} / baseline throughput = ${ratio} (goal ${goal})` : `ratio: ${name} / baseline = ${ratio}x (goal ${goal})`);
}

async function benchEdit(servers: Servers, dir: string): Promise<void> {
  const line = "const value = compute(input); // a line of ordinary source code\n";
  const content = line.repeat(Math.ceil(MIB / line.length)).slice(0, MIB - 20) + "MARKER_A\n";
  /** A file of its own per variant; each call swaps its marker back and forth, so every sample edits. */
  const editor = (name: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    let n = 0;
    return () => ({ file, edit: n++ % 2 === 0 ? ["MARKER_A", "MARKER_B"] : ["MARKER_B", "MARKER_A"] });
  };
  const viaHttp = (base: string, next: ReturnType<typeof editor>) => () => {
    const { file, edit } = next();
    return post(`${base}/api/v0/edit-files`, JSON.stringify({ files: [{ path: file, edits: [{ old_text: edit[0], new_text: edit[1] }] }] }));
  };
  const local = editor("edit-fs.js");
  const { medians, cpu } = await alternate(servers, WARMUP_ROUNDS, EDIT_SAMPLES, [
    viaHttp(servers.agentd.url, editor("edit-api.js")),
    viaHttp(servers.naive, editor("edit-naive.js")),
    async () => {
      const { file, edit } = local();
      const text = await fs.promises.readFile(file, "utf8");
      await fs.promises.writeFile(`${file}.tmp`, text.replace(edit[0]!, edit[1]!));
      await fs.promises.rename(`${file}.tmp`, file);
    },
  ]);
  report("edit-files 1 MiB", "ms", medians, cpu, "≤ 1.5");
}

function upload(url: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { "Content-Length": data.length } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`write-file: ${res.statusCode}`))));
    });
    req.on("error", reject);
    for (let off = 0; off < data.length; off += MIB) req.write(data.subarray(off, off + MIB));
    req.end();
  });
}

async function benchWrite(servers: Servers, dir: string): Promise<void> {
  const data = Buffer.alloc(WRITE_BYTES, "w");
  const viaHttp = (base: string, name: string) => () =>
    upload(`${base}/api/v0/write-file?path=${encodeURIComponent(path.join(dir, name))}`, data);
  const localTarget = path.join(dir, "write-fs.bin");
  const { medians, cpu } = await alternate(servers, WRITE_WARMUP_ROUNDS, WRITE_SAMPLES, [
    viaHttp(servers.agentd.url, "write-api.bin"),
    viaHttp(servers.naive, "write-naive.bin"),
    async () => {
      const tmp = `${localTarget}.tmp`;
      const out = fs.createWriteStream(tmp);
      for (let off = 0; off < data.length; off += MIB) {
        if (!out.write(data.subarray(off, off + MIB))) await new Promise<void>((r) => out.once("drain", () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      await fs.promises.rename(tmp, localTarget);
    },
  ]);
  const mibps = (ms: number) => WRITE_BYTES / MIB / (ms / 1000);
  report("write-file 64 MiB", "MiB/s", medians.map(mibps), cpu, "≥ 0.8", true);
}

async function benchLines(servers: Servers, dir: string): Promise<void> {
  const p = path.join(dir, "lines.txt");
  fs.writeFileSync(p, Array.from({ length: LINES }, (_, i) => `line ${i}: ${"x".repeat(40)}`).join("\n"));
  const q = new URLSearchParams({
    path: p,
    offset: "1",
    limit: String(LINES),
    max_file_size: String(4 * MIB),
    max_line_bytes: "1024",
    max_response_lines: String(LINES),
    max_response_bytes: String(4 * MIB),
  });
  const viaHttp = (base: string) => async () => {
    const body = (await (await fetch(`${base}/api/v0/read-file-lines?${q}`)).json()) as { lines_read: number };
    if (body.lines_read !== LINES) throw new Error(`read ${body.lines_read} lines`);
  };
  const { medians, cpu } = await alternate(servers, WARMUP_ROUNDS, LINES_SAMPLES, [
    viaHttp(servers.agentd.url),
    viaHttp(servers.naive),
    async () => {
      const lines = (await fs.promises.readFile(p, "utf8")).split("\n");
      if (lines.length !== LINES) throw new Error("split");
    },
  ]);
  report("read-file-lines 10,000 lines", "ms", medians, cpu, "≤ 2");
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

/** Reads `bytes` of the response body, then abandons the request. */
function partialRead(url: string, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let got = 0;
      res.on("data", (chunk: Buffer) => {
        got += chunk.length;
        if (got >= bytes) {
          req.destroy();
          resolve();
        }
      });
      res.on("end", resolve);
    });
    req.on("error", (err) => (req.destroyed ? resolve() : reject(err)));
  });
}

async function benchRss(agentd: RunningAgentd, dir: string): Promise<void> {
  const p = path.join(dir, "sparse.bin");
  const fd = fs.openSync(p, "w");
  fs.ftruncateSync(fd, SPARSE_BYTES);
  fs.closeSync(fd);
  const pid = agentd.proc.pid!;
  const url = `${agentd.url}/api/v0/read-file?path=${encodeURIComponent(p)}`;
  await partialRead(url, MIB);
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 20);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: READERS }, () => partialRead(url, READ_PER_CLIENT)));
  clearInterval(sampler);
  const secs = (performance.now() - t0) / 1000;
  const growth = (peak - before) / MIB;
  console.log(`read-file 1 GiB x ${READERS} concurrent (${READ_PER_CLIENT / MIB} MiB read each, ${secs.toFixed(1)} s): RSS ${(before / MIB).toFixed(0)} MiB before, peak ${(peak / MIB).toFixed(0)} MiB`);
  console.log(`RSS growth: ${growth.toFixed(1)} MiB (goal < 32)`);
}

const dir = tempDir("agentd-bench-files-");
const agentd = await startAgentd({ env: { AGENTD_LOG_LEVEL: "info" } });
const naive = await startNaive();
try {
  const servers = { agentd, naive: naive.url, naivePid: naive.proc.pid! };
  await benchEdit(servers, dir);
  await benchLines(servers, dir);
  await benchWrite(servers, dir);
  await benchRss(agentd, dir);
} finally {
  naive.proc.kill();
  await agentd.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(agentd.dir, { recursive: true, force: true });
}
