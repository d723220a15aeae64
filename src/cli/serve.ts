import { Command } from "commander";
import { Agent, SHUTDOWN_TIMEOUT_MS } from "../agent.js";
import { resolveConfig, serveOptions, type ServeOptions } from "../config.js";
import { createLogger } from "../log.js";
import { dropSecretEnv, hideTokenArgument } from "../secrets.js";
import { releaseStartupTuning } from "../startup-tuning.js";

/** `agentd serve`: runs the daemon until SIGTERM or SIGINT. */
export function serveCommand(): Command {
  const cmd = new Command("serve").description("run the agentd daemon");
  for (const option of serveOptions()) cmd.addOption(option);
  cmd.action(async (opts: ServeOptions) => {
    const tokenOnCommandLine = hideTokenArgument();
    const config = resolveConfig(opts);
    dropSecretEnv();
    const log = createLogger(config.logLevel, undefined, config.logFormat);
    if (tokenOnCommandLine) {
      log.warn("--token on the command line is visible to other local users while agentd starts; use --token-file");
    }
    const agent = new Agent(config, log);
    await agent.start();
    releaseStartupTuning();
    await waitForSignal(log.child({ component: "signals" }), agent);
  });
  return cmd;
}

function waitForSignal(log: ReturnType<typeof createLogger>, agent: Agent): Promise<never> {
  return new Promise<never>(() => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, "shutting down");
      const deadline = setTimeout(() => {
        log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "shutdown took too long: exiting");
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS);
      deadline.unref();
      agent.stop().then(
        () => {
          log.flush();
          process.exitCode = 0;
          setImmediate(() => process.exit(0));
        },
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
