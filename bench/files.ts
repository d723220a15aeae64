/**
 * Files API against plain fs calls, over HTTP to a real `bin/agentd serve`:
 * - edit-files, one exact edit in a 1 MiB file, vs readFile + replace +
 *   writeFile of a temp file + rename (goal ≤ 1.5×, median latency);
 * - write-file of 64 MiB vs createWriteStream to a temp file + rename
 *   (goal ≥ 0.8× throughput);
 * - read-file-lines of a 10,000-line file vs readFile + split (goal ≤ 2×);
 * - agentd's RSS growth while it serves 100 concurrent read-file of a
 *   1 GiB sparse file (goal < 32 MiB); each client reads 16 MiB of the
 *   whole-file response and then goes away.
 * Run: make build && node --import tsx bench/files.ts
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { startAgentd, tempDir, type RunningAgentd } from "../test/helpers/agentd.js";

const MIB = 1024 * 1024;
const EDIT_SAMPLES = 40;
const LINES_SAMPLES = 40;
const WRITE_SAMPLES = 5;
const WRITE_BYTES = 64 * MIB;
const LINES = 10_000;
const READERS = 100;
const READ_PER_CLIENT = 16 * MIB;
const SPARSE_BYTES = 1024 * MIB;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `a` and `b` alternately `n` times each; median ms of each. */
async function alternate(n: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < n; i++) {
    as.push(await time(a));
    bs.push(await time(b));
  }
  return [median(as), median(bs)];
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: "POST", body });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

async function benchEdit(agentd: RunningAgentd, dir: string): Promise<void> {
  const line = "const value = compute(input); // a line of ordinary source code\n";
  const content = line.repeat(Math.ceil(MIB / line.length)).slice(0, MIB - 20) + "MARKER_A\n";
  const viaApi = path.join(dir, "edit-api.js");
  const viaFs = path.join(dir, "edit-fs.js");
  fs.writeFileSync(viaApi, content);
  fs.writeFileSync(viaFs, content);
  /** Swaps the marker of `file` back and forth, so every sample edits. */
  const swapper = () => {
    let n = 0;
    return () => (n++ % 2 === 0 ? ["MARKER_A", "MARKER_B"] : ["MARKER_B", "MARKER_A"]);
  };
  const nextApi = swapper();
  const nextFs = swapper();
  const [api, base] = await alternate(
    EDIT_SAMPLES,
    () => {
      const [from, to] = nextApi();
      return post(`${agentd.url}/api/v0/edit-files`, JSON.stringify({ files: [{ path: viaApi, edits: [{ old_text: from, new_text: to }] }] }));
    },
    async () => {
      const [from, to] = nextFs();
      const text = await fs.promises.readFile(viaFs, "utf8");
      const tmp = `${viaFs}.tmp`;
      await fs.promises.writeFile(tmp, text.replace(from!, to!));
      await fs.promises.rename(tmp, viaFs);
    },
  );
  console.log(`edit-files 1 MiB: ${api.toFixed(2)} ms vs readFile+replace+write+rename ${base.toFixed(2)} ms`);
  console.log(`ratio: edit-files / baseline = ${(api / base).toFixed(2)}x (goal ≤ 1.5)`);
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

async function benchWrite(agentd: RunningAgentd, dir: string): Promise<void> {
  const data = Buffer.alloc(WRITE_BYTES, "w");
  const target = path.join(dir, "write-api.bin");
  const baseTarget = path.join(dir, "write-fs.bin");
  const [api, base] = await alternate(
    WRITE_SAMPLES,
    () => upload(`${agentd.url}/api/v0/write-file?path=${encodeURIComponent(target)}`, data),
    async () => {
      const tmp = `${baseTarget}.tmp`;
      const out = fs.createWriteStream(tmp);
      for (let off = 0; off < data.length; off += MIB) {
        if (!out.write(data.subarray(off, off + MIB))) await new Promise<void>((r) => out.once("drain", () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      await fs.promises.rename(tmp, baseTarget);
    },
  );
  const mbps = (ms: number) => WRITE_BYTES / MIB / (ms / 1000);
  console.log(`write-file 64 MiB: ${mbps(api).toFixed(0)} MiB/s vs createWriteStream+rename ${mbps(base).toFixed(0)} MiB/s`);
  console.log(`ratio: write-file / baseline throughput = ${(base / api).toFixed(2)} (goal ≥ 0.8)`);
}

async function benchLines(agentd: RunningAgentd, dir: string): Promise<void> {
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
  const url = `${agentd.url}/api/v0/read-file-lines?${q}`;
  const [api, base] = await alternate(
    LINES_SAMPLES,
    async () => {
      const body = (await (await fetch(url)).json()) as { lines_read: number };
      if (body.lines_read !== LINES) throw new Error(`read ${body.lines_read} lines`);
    },
    async () => {
      const lines = (await fs.promises.readFile(p, "utf8")).split("\n");
      if (lines.length !== LINES) throw new Error("split");
    },
  );
  console.log(`read-file-lines 10,000 lines: ${api.toFixed(2)} ms vs readFile+split ${base.toFixed(2)} ms`);
  console.log(`ratio: read-file-lines / baseline = ${(api / base).toFixed(2)}x (goal ≤ 2)`);
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
try {
  await benchEdit(agentd, dir);
  await benchLines(agentd, dir);
  await benchWrite(agentd, dir);
  await benchRss(agentd, dir);
} finally {
  await agentd.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(agentd.dir, { recursive: true, force: true });
}
