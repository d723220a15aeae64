import type { Registry } from "prom-client";
import { DisconnectedUpstream } from "./coderd/disconnected.js";
import { EmbeddedUpstream } from "./coderd/embedded.js";
import type { Upstream } from "./coderd/upstream.js";
import type { Config } from "./config.js";
import { prepareDataDir } from "./datadir.js";
import { HttpServer } from "./http/server.js";
import type { Logger } from "./log.js";
import { createRegistry } from "./metrics.js";
import type { Part } from "./part.js";

/** Total time `stop` may take before the CLI gives up waiting. */
export const SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * The composition root: the only place that knows every part. It builds each
 * part from the config, hands it the logger, registry and upstream client it
 * needs, starts them in order and stops them in reverse.
 */
export class Agent {
  readonly registry: Registry;
  readonly http: HttpServer;
  /** The link to coderd (or the embedded upstream); every part calls coderd through it. */
  readonly upstream: Upstream;
  private readonly parts: Part[] = [];
  private started: Part[] = [];

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.registry = createRegistry();
    this.http = new HttpServer(config.httpAddr, log.child({ component: "http" }), this.registry);
    this.upstream = config.coderUrl
      ? new DisconnectedUpstream()
      : new EmbeddedUpstream(config.dataDir, log.child({ component: "upstream" }));
    this.parts.push(this.upstream);
  }

  async start(): Promise<void> {
    await prepareDataDir(this.config.dataDir);
    this.log.info({ upstream: this.upstream.description }, "upstream selected");
    try {
      for (const part of this.parts) {
        await part.start();
        this.started.push(part);
      }
      await this.http.listen();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info({ dataDir: this.config.dataDir }, "agentd started");
  }

  /** Stops accepting requests first, then every part in reverse start order. */
  async stop(): Promise<void> {
    await this.http.close();
    const parts = this.started.reverse();
    this.started = [];
    for (const part of parts) {
      try {
        await part.stop();
      } catch (err) {
        this.log.error({ err, part: part.name }, "part failed to stop cleanly");
      }
    }
    this.log.info("agentd stopped");
  }
}
