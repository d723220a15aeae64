import { Option, type Command } from "commander";
import { UpdateAppStatusRequest_AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import { agentSocketClient } from "../agentsocket/client.js";
import { MAX_APP_STATUS_MESSAGE_BYTES } from "../coderd/embedded.js";
import { UsageError } from "../errors.js";
import { CALL_TIMEOUT_MS, commandGroup, printJson, runCall, withSocketOptions, type SocketOptions } from "./agent-socket-cli.js";

/** codersdk.WorkspaceAppStatusState values, as `--state` takes them. */
export const APP_STATUS_STATES = ["working", "idle", "complete", "failure"] as const;
/** One of the app-status states. */
export type AppStatusStateName = (typeof APP_STATUS_STATES)[number];

/** The protobuf enum value of a state name: Coder maps JSON states to the enum by upper-casing. */
export function appStatusState(state: AppStatusStateName): UpdateAppStatusRequest_AppStatusState {
  return UpdateAppStatusRequest_AppStatusState[state.toUpperCase() as keyof typeof UpdateAppStatusRequest_AppStatusState];
}

/** Why `message` cannot be sent, or undefined when it fits coderd's limit. */
export function messageTooLong(message: string): string | undefined {
  const bytes = Buffer.byteLength(message, "utf8");
  if (bytes <= MAX_APP_STATUS_MESSAGE_BYTES) return undefined;
  return `is ${bytes} bytes long; coderd accepts at most ${MAX_APP_STATUS_MESSAGE_BYTES} bytes (UTF-8)`;
}

interface AppStatusOptions extends SocketOptions {
  slug: string;
  state: AppStatusStateName;
  message: string;
  uri?: string;
}

/** `agentd app-status`: reports a workspace app's status to coderd through the agent socket. */
export function appStatusCommand(): Command {
  const cmd = commandGroup("app-status", "report an app's status (working, idle, complete, failure) to coderd through the agent socket")
    .requiredOption("--slug <slug>", "slug of the workspace app")
    .addOption(
      new Option("--state <state>", `state of the app (${APP_STATUS_STATES.join(", ")})`)
        .choices(APP_STATUS_STATES)
        .makeOptionMandatory(),
    )
    .requiredOption("--message <text>", `what the app is doing, at most ${MAX_APP_STATUS_MESSAGE_BYTES} bytes`)
    .option("--uri <uri>", "link to a relevant resource, such as a pull request");
  withSocketOptions(cmd);
  cmd.action((o: AppStatusOptions) => {
    const tooLong = messageTooLong(o.message);
    if (tooLong) throw new UsageError("--message", tooLong);
    return runCall(o.socketPath, async () => {
      const req = { slug: o.slug, state: appStatusState(o.state), message: o.message, uri: o.uri ?? "" };
      await agentSocketClient(o.socketPath).updateAppStatus(req, { timeoutMs: CALL_TIMEOUT_MS });
      if (o.output === "json") printJson({ slug: o.slug, state: o.state, message: o.message, uri: req.uri });
      else process.stdout.write(`Reported ${o.state} for app '${o.slug}'\n`);
    });
  });
  return cmd;
}
