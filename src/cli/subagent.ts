import type { Command } from "commander";
import { subAgentClient } from "../agentsocket/client.js";
import { uuidText } from "../coderd/embedded-store.js";
import { UsageError } from "../errors.js";
import {
  CALL_TIMEOUT_MS,
  commandGroup,
  printJson,
  printTable,
  runCall,
  withSocketOptions,
  type SocketOptions,
} from "./agent-socket-cli.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const opts = { timeoutMs: CALL_TIMEOUT_MS };

/** The 16 bytes of a UUID in its text form; a usage error naming `what` otherwise. */
export function parseUuid(value: string, what: string): Uint8Array {
  if (!UUID_RE.test(value)) throw new UsageError(what, `"${value}" is not a UUID`);
  return Buffer.from(value.replace(/-/g, ""), "hex");
}

interface CreateOptions extends SocketOptions {
  name: string;
  directory?: string;
  architecture?: string;
  os?: string;
}

/** `agentd subagent`: create, list and delete sub-agents through the agent socket. */
export function subagentCommand(): Command {
  const group = commandGroup("subagent", "manage sub-agents (for example dev containers) through the agent socket");

  withSocketOptions(
    group
      .command("create")
      .description("create a sub-agent; prints its id and auth token")
      .requiredOption("--name <name>", "agent name (letters, digits and single dashes)")
      .option("--directory <dir>", "working directory of the sub-agent")
      .option("--architecture <arch>", "CPU architecture, e.g. amd64", process.arch === "x64" ? "amd64" : process.arch)
      .option("--os <os>", "operating system, e.g. linux", process.platform),
  ).action((o: CreateOptions) =>
    runCall(o.socketPath, async () => {
      const res = await subAgentClient(o.socketPath).createSubAgent(
        { name: o.name, directory: o.directory ?? "", architecture: o.architecture ?? "", operatingSystem: o.os ?? "" },
        opts,
      );
      const agent = res.agent;
      if (!agent) throw new Error("coderd answered without a sub-agent");
      const out = { id: uuidText(agent.id), name: agent.name, auth_token: uuidText(agent.authToken) };
      if (o.output === "json") printJson(out);
      else process.stdout.write(`Created sub-agent '${out.name}'\nid:    ${out.id}\ntoken: ${out.auth_token}\n`);
    }),
  );

  withSocketOptions(group.command("list").description("list sub-agents")).action((o: SocketOptions) =>
    runCall(o.socketPath, async () => {
      const { agents } = await subAgentClient(o.socketPath).listSubAgents({}, opts);
      const rows = agents.map((a) => ({ id: uuidText(a.id), name: a.name }));
      if (o.output === "json") printJson(rows);
      else printTable(["id", "name"], rows.map((r) => [r.id, r.name]));
    }),
  );

  withSocketOptions(group.command("delete <id>").description("delete a sub-agent by id")).action(
    (id: string, o: SocketOptions) => {
      const bytes = parseUuid(id, "<id>");
      return runCall(o.socketPath, async () => {
        await subAgentClient(o.socketPath).deleteSubAgent({ id: bytes }, opts);
        if (o.output === "json") printJson({ id: id.toLowerCase(), deleted: true });
        else process.stdout.write(`Deleted sub-agent ${id.toLowerCase()}\n`);
      });
    },
  );

  return group;
}
