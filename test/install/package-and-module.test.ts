// The package and the Coder module's start script, end to end: `npm pack` the
// current build, then run deploy/coder/run.sh (rendered as Terraform's
// templatefile() would) in a temporary HOME with that tarball as its install
// source. The script installs it with `npm install -g --prefix` (dependencies
// from the npm cache, native modules built from source), starts it, a rerun
// leaves the running copy alone, and the stop action ends it.
//
// The install compiles better-sqlite3 and node-pty, which takes minutes on a
// busy machine: `make test` runs test/install/ with its own, longer timeout.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { REPO_ROOT, tempDir } from "../helpers/agentd.js";
import { renderTemplate } from "../helpers/templatefile.js";

const run = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const root = tempDir("agentd-test-install-");
const home = path.join(root, "home");
const runDir = path.join(root, "run");
let tarball = "";
let port = 0;
let vars: Record<string, string | number | boolean> = {};

/**
 * The developer's npm settings survive the temporary HOME: the cache `make
 * install` filled (so the install needs no network) and the user config
 * (registry, proxy, `nodedir` for node-gyp's headers).
 */
const npmConfig = (key: string) => execFileSync("npm", ["config", "get", key], { encoding: "utf8" }).trim();
const npmEnv = { npm_config_cache: npmConfig("cache"), npm_config_userconfig: npmConfig("userconfig") };

async function script(action: "start" | "stop", overrides: Record<string, string | boolean> = {}) {
  const file = path.join(root, `run-${action}.sh`);
  const text = fs.readFileSync(path.join(REPO_ROOT, "deploy", "coder", "run.sh"), "utf8");
  fs.writeFileSync(file, renderTemplate(text, { ...vars, ACTION: action, ...overrides }), { mode: 0o700 });
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, ...npmEnv };
  // The daemon must not find a coderd or a socket path from the test's own environment.
  for (const name of Object.keys(env)) if (/^(CODER_|AGENTD_)/.test(name)) delete env[name];
  return run("bash", [file], { env, maxBuffer: 64 * 1024 * 1024 });
}

const agentdBin = () => path.join(home, ".agentd", "bin", "agentd");
const pidFile = () => path.join(runDir, "agentd.pid");

before(async () => {
  fs.mkdirSync(home);
  port = await freePort();
  vars = {
    PORT: port,
    INSTALL_PREFIX: "",
    DATA_DIR: path.join(root, "data"),
    LOG_PATH: path.join(root, "log", "agentd.log"),
    AGENT_SOCKET: path.join(runDir, "agent.sock"),
    BOUNDARY_SOCKET: path.join(runDir, "boundary-audit.sock"),
    OFFLINE: false,
  };
  // The build is current (make builds before it tests); pack it as it is.
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", root], { cwd: REPO_ROOT });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(root, packed!.filename);
  vars.INSTALL_SOURCE = tarball;
});

after(async () => {
  // Whatever happened, no agentd outlives the test.
  try {
    const pid = Number(fs.readFileSync(pidFile(), "utf8"));
    if (pid > 0) process.kill(pid, "SIGKILL");
  } catch {
    // not running
  }
});

describe("npm pack", () => {
  it("ships the launcher, the built JavaScript and the build info, and no sources or tests", () => {
    assert.equal(path.basename(tarball), `agentd-${pkg.version}.tgz`);
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const f of ["package/bin/agentd", "package/dist/src/cli/main.js", "package/dist/build-info.json", "package/README.md"]) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    assert.ok(files.some((f) => f.startsWith("package/dist/gen/")), "generated code is in the tarball");
    assert.deepEqual(files.filter((f) => /^package\/(src|test|bench|proto)\//.test(f)), []);
  });
});

describe("deploy/coder/run.sh with the packed tarball", () => {
  it("installs agentd into the prefix, starts it and waits for /healthz", async () => {
    const { stdout } = await script("start");
    assert.match(stdout, /installing .*agentd-.*\.tgz/);
    assert.match(stdout, /ready at http:\/\/127\.0\.0\.1:\d+/);
    const version = await run(agentdBin(), ["--version"]);
    assert.match(version.stdout, new RegExp(`^agentd ${pkg.version.replace(/\./g, "\\.")} \\(commit [0-9a-z-]+\\)\\n$`));
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { ready: boolean; version: string };
    assert.deepEqual({ ready: ready.ready, version: ready.version }, { ready: true, version: pkg.version });
    const ping = await run(agentdBin(), ["sync", "ping", "--socket-path", String(vars.AGENT_SOCKET)]);
    assert.equal(ping.stdout, "Success\n");
  });

  it("a second run leaves the running copy alone", async () => {
    const pid = fs.readFileSync(pidFile(), "utf8").trim();
    const { stdout } = await script("start");
    assert.match(stdout, new RegExp(`already running \\(pid ${pid}\\)`));
    assert.doesNotMatch(stdout, /installing|starting/);
    assert.equal(fs.readFileSync(pidFile(), "utf8").trim(), pid);
    const started = fs.readFileSync(String(vars.LOG_PATH), "utf8").split("\n").filter((l) => l.includes('"agentd started"'));
    assert.equal(started.length, 1, "one agentd started");
  });

  it("stop ends it and removes its sockets; offline start then runs the installed copy without installing", async () => {
    const pid = Number(fs.readFileSync(pidFile(), "utf8"));
    assert.match((await script("stop")).stdout, new RegExp(`stopped \\(pid ${pid}\\)`));
    assert.throws(() => process.kill(pid, 0), "the process is gone");
    assert.equal(fs.existsSync(pidFile()), false);
    assert.equal(fs.existsSync(String(vars.AGENT_SOCKET)), false);
    const again = await script("start", { OFFLINE: true, INSTALL_SOURCE: "/nonexistent.tgz" });
    assert.doesNotMatch(again.stdout, /installing/);
    assert.match(again.stdout, /ready at/);
    assert.match((await script("stop")).stdout, /stopped/);
  });
});
