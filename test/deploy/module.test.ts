import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../helpers/agentd.js";
import { renderTemplate, templateVariables } from "../helpers/templatefile.js";

const moduleDir = path.join(REPO_ROOT, "deploy", "coder");
const mainTf = fs.readFileSync(path.join(moduleDir, "main.tf"), "utf8");
const runSh = fs.readFileSync(path.join(moduleDir, "run.sh"), "utf8");

function hasTerraform(): boolean {
  return spawnSync("terraform", ["version"], { stdio: "ignore" }).status === 0;
}

/** The keys of the `script_vars` map in main.tf's locals, plus the ACTION each script adds. */
function scriptVars(): Set<string> {
  const block = /script_vars = \{([^}]*)\}/.exec(mainTf)?.[1] ?? "";
  return new Set([...[...block.matchAll(/^\s*([A-Z_]+)\s*=/gm)].map((m) => m[1]!), "ACTION"]);
}

describe("deploy/coder module", () => {
  it("is formatted as terraform fmt writes it", { skip: !hasTerraform() && "terraform is not installed" }, () => {
    // fmt needs no providers, so it runs offline.
    execFileSync("terraform", ["fmt", "-check", "-diff", moduleDir], { stdio: "pipe" });
  });

  it("declares the registry-style variables", () => {
    for (const name of ["agent_id", "port", "install_source", "data_dir", "log_path", "agent_socket_path", "boundary_socket_path", "share", "order", "group", "offline"]) {
      assert.match(mainTf, new RegExp(`^variable "${name}" \\{`, "m"), `variable ${name}`);
    }
  });

  it("hands run.sh exactly the variables it uses", () => {
    assert.deepEqual([...templateVariables(runSh)].sort(), [...scriptVars()].sort());
  });

  it("points the workspace's clients at agentd's sockets and checks the app's health on /healthz", () => {
    assert.match(mainTf, /name\s+= "CODER_AGENT_SOCKET_PATH"\n\s+value\s+= var\.agent_socket_path/);
    assert.match(mainTf, /name\s+= "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH"\n\s+value\s+= var\.boundary_socket_path/);
    assert.match(mainTf, /healthcheck \{\n\s+url\s+= "http:\/\/localhost:\$\{var\.port\}\/healthz"/);
  });

  it("renders to a script bash accepts, for both actions", () => {
    for (const action of ["start", "stop"]) {
      const vars = Object.fromEntries([...scriptVars()].map((v) => [v, v === "ACTION" ? action : "x"]));
      const res = spawnSync("bash", ["-n"], { input: renderTemplate(runSh, vars) });
      assert.equal(res.status, 0, String(res.stderr));
    }
  });
});
