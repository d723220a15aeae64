import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { COMMANDS } from "../../src/cli/commands.js";
import { REPO_ROOT, runAgentd, startAgentd, type RunningAgentd } from "../helpers/agentd.js";

const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
const daemons: RunningAgentd[] = [];
after(() => Promise.all(daemons.map((d) => d.stop())));

describe("agentd --version", () => {
  it("prints the package version and the commit of the build", async () => {
    const res = await runAgentd(["--version"]);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /^agentd (\S+) \(commit ([0-9a-f]{7,}(-dirty)?|unknown)\)\n$/);
    assert.equal(/^agentd (\S+)/.exec(res.stdout)![1], version);
  });

  it("/readyz reports the same version and commit", async () => {
    const agentd = await startAgentd();
    daemons.push(agentd);
    const body = (await (await fetch(`${agentd.url}/readyz`)).json()) as { version: string; commit: string };
    const printed = (await runAgentd(["--version"])).stdout;
    assert.equal(printed, `agentd ${body.version} (commit ${body.commit})\n`);
  });
});

describe("bin/agentd run as a program (as installed)", () => {
  it("prints what `node bin/agentd` prints", async () => {
    const direct = await runAgentd(["--version"], { asProgram: true });
    assert.equal(direct.code, 0);
    assert.equal(direct.stdout, (await runAgentd(["--version"])).stdout);
  });

  it("passes arguments through unchanged and exits with the CLI's status", async () => {
    const addr = `not an $addr "x" 'y' \\ *`;
    const res = await runAgentd(["serve", "--http-addr", addr], { asProgram: true });
    assert.equal(res.code, 2);
    assert.ok(res.stderr.includes(addr), res.stderr);
  });

  it("starts the daemon's node with the garbage-collector flags it is measured with", async () => {
    const agentd = await startAgentd({ asProgram: true });
    daemons.push(agentd);
    const argv = fs.readFileSync(`/proc/${agentd.proc.pid}/cmdline`, "utf8").split("\0");
    assert.ok(argv.includes("--max-semi-space-size=1"), argv.join(" "));
    assert.ok(argv.includes("--single-threaded-gc"), argv.join(" "));
    assert.equal((await fetch(`${agentd.url}/healthz`)).status, 200);
  });
});

describe("mistyped commands", () => {
  it("a top-level typo gets one line with a suggestion and exit 2", async () => {
    const res = await runAgentd(["snyc"]);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.split("\n")[0], "error: unknown command 'snyc' (Did you mean sync?)");
  });

  it("a typo in a subcommand gets its suggestion too", async () => {
    const res = await runAgentd(["sync", "pnig"]);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.split("\n")[0], "error: unknown command 'pnig' (Did you mean ping?)");
  });

  it("a mistyped option is suggested on one line", async () => {
    const res = await runAgentd(["sync", "ping", "--socket-pth", "x"]);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.split("\n")[0], "error: unknown option '--socket-pth' (Did you mean --socket-path?)");
  });
});

describe("--help", () => {
  it("marks required options", async () => {
    const res = await runAgentd(["app-status", "--help"]);
    const text = res.stdout.replace(/\s+/g, " ");
    assert.match(text, /--slug <slug> slug of the workspace app \(required\)/);
    assert.match(text, /--message <text> .*\(required\)/);
    assert.doesNotMatch(text, /--uri <uri> [^-]*\(required\)/);
  });

  it("lists every subcommand with the description the subcommand itself has", async () => {
    const res = await runAgentd(["--help"]);
    for (const entry of COMMANDS) {
      const cmd = await entry.load();
      assert.equal(cmd.description(), entry.description, `${entry.name}'s description`);
      assert.match(res.stdout, new RegExp(`^  ${entry.name} `, "m"));
    }
  });

  it("help <command> shows that command's own help", async () => {
    const res = await runAgentd(["help", "app-status"]);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /--slug <slug>/);
  });
});
