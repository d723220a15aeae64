import os from "node:os";
import type { Registry } from "prom-client";
import { AgentSocket } from "../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { AgentSocketPart } from "./agentsocket/agent-socket.js";
import { BoundaryProxy } from "./boundary/proxy.js";
import { CoderdUpstream } from "./coderd/coderd-upstream.js";
import { EmbeddedUpstream } from "./coderd/embedded.js";
import type { Upstream } from "./coderd/upstream.js";
import { formatHostPort, type Config } from "./config.js";
import { defaultRuntimeDir } from "./default-paths.js";
import { prepareDataDir, prepareRuntimeDir } from "./datadir.js";
import { FilesMetrics } from "./files/metrics.js";
import { registerFilesRoutes } from "./files/routes.js";
import { GitWatch } from "./gitwatch/gitwatch.js";
import { RequestGuard } from "./http/guard.js";
import { HttpServer } from "./http/server.js";
import { lazily } from "./lazy.js";
import type { Logger } from "./log.js";
import { registerDashboard } from "./dashboard/static-assets.js";
import { packageVersion } from "./dashboard/version.js";
import { createRegistry } from "./metrics.js";
import type { Part } from "./part.js";
import { ProcessManager } from "./process/manager.js";
import { registerProcessRoutes } from "./process/routes.js";
import { buildInfo } from "./version.js";

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
  /** Git watch; its path store is fed by the parts that touch files. */
  readonly gitwatch: GitWatch;
  /** The process API's manager; emits `exit` (ProcessExitEvent) after each process ends. */
  readonly processes: ProcessManager;
  private readonly parts: Part[] = [];
  private started: Part[] = [];

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.registry = createRegistry();
    const guard = new RequestGuard({
      allowedHosts: config.allowedHosts,
      allowedOrigins: config.allowedOrigins,
      token: config.httpToken,
    });
    this.http = new HttpServer(config.httpAddr, log.child({ component: "http" }), this.registry, guard);
    this.upstream = config.coderUrl
      ? new CoderdUpstream({
          url: config.coderUrl,
          token: config.token ?? "",
          log: log.child({ component: "coderd" }),
          registry: this.registry,
        })
      : new EmbeddedUpstream(config.dataDir, log.child({ component: "upstream" }));
    if (config.coderUrl) this.http.addReadinessCheck("coderd", () => this.upstream.isConnected());
    this.parts.push(this.upstream);
    const agentSocket = new AgentSocketPart(
      config.agentSocket,
      this.upstream,
      log.child({ component: "agentsocket" }),
      this.registry,
    );
    this.parts.push(agentSocket);
    this.http.connect((router) => router.service(AgentSocket, agentSocket.service));
    this.http.addReadinessCheck("agent-socket", () => agentSocket.listening);
    const boundary = new BoundaryProxy({
      socketPath: config.boundarySocket,
      dataDir: config.dataDir,
      spoolMaxBytes: config.boundarySpoolBytes,
      logRingCapacity: config.boundaryLogRing,
      registry: this.registry,
      log: log.child({ component: "boundary" }),
      client: this.upstream.client,
    });
    this.parts.push(boundary);
    this.http.addReadinessCheck("boundary", () => boundary.ready());
    const processLog = log.child({ component: "process" });
    this.processes = new ProcessManager({
      log: processLog,
      registry: this.registry,
      workdir: config.workdir,
      maxProcesses: config.maxProcesses,
      secrets: [config.token, config.httpToken].filter((s): s is string => s !== undefined),
    });
    registerProcessRoutes(this.http, this.processes, processLog);
    this.http.connectLazily(async () => {
      const [{ ProcessService }, { processService }] = await Promise.all([
        import("../gen/agentd/process/v1/process_pb.js"),
        import("./process/service.js"),
      ]);
      return (router) => router.service(ProcessService, processService(this.processes));
    });
    this.gitwatch = new GitWatch({
      dataDir: config.dataDir,
      log: log.child({ component: "gitwatch" }),
      registry: this.registry,
      pollIntervalMs: config.gitWatchPollSeconds * 1000,
      maxFsWatchedRepos: config.maxFsWatchedRepos,
      workdir: config.workdir ?? os.homedir(),
    });
    this.gitwatch.register(this.http);
    const filesLog = log.child({ component: "files" });
    const filesMetrics = new FilesMetrics(this.registry);
    // The files API's code loads with its first request, REST or Connect; both share one Files.
    const files = lazily(async () => {
      const { Files } = await import("./files/files.js");
      return new Files({
        log: filesLog,
        metrics: filesMetrics,
        maxWriteBytes: config.maxWriteBytes,
        onPathsChanged: (chatIds, paths) => this.gitwatch.pathStore.addPaths(chatIds, paths),
      });
    });
    registerFilesRoutes(this.http, files, filesMetrics, filesLog);
    this.http.connectLazily(async () => {
      const [{ FilesService }, { filesService }, loaded] = await Promise.all([
        import("../gen/agentd/files/v1/files_pb.js"),
        import("./files/service.js"),
        files(),
      ]);
      return (router) => router.service(FilesService, filesService(loaded, filesMetrics));
    });
    this.parts.push(this.gitwatch);
    // Pushed after git watch so processes are killed (and their exits
    // reported to git watch) before git watch stops.
    this.parts.push(this.processes);
    this.processes.on("exit", (e) => this.gitwatch.trackProcessExit(e));
    // Open git watch WebSockets and blocked `?wait=true` output requests would
    // hold the HTTP server open at shutdown: they end when it drains.
    this.http.onDrain(() => this.gitwatch.closeConnections());
    this.http.onDrain(() => this.processes.releaseWaiters());
    // The dashboard: its page, and the read-only services it alone needs.
    registerDashboard(this.http, log.child({ component: "dashboard" }));
    const startedAtMs = Date.now();
    this.http.connectLazily(async () => {
      const [{ BoundaryLogService }, { boundaryLogService }, { TaskService }, { taskService }, { StatusService }, { statusService }] =
        await Promise.all([
          import("../gen/agentd/boundary/v1/boundary_pb.js"),
          import("./boundary/log-service.js"),
          import("../gen/agentd/tasks/v1/tasks_pb.js"),
          import("./agentsocket/task-service.js"),
          import("../gen/agentd/status/v1/status_pb.js"),
          import("./dashboard/status-service.js"),
        ]);
      return (router) => {
        router.service(BoundaryLogService, boundaryLogService(boundary.logRing));
        router.service(TaskService, taskService(agentSocket.graph, agentSocket.appStatuses));
        router.service(
          StatusService,
          statusService({
            version: packageVersion(),
            coderUrl: config.coderUrl,
            coderdConnected: () => this.upstream.isConnected() && config.coderUrl !== undefined,
            spoolStats: () => boundary.spoolStats(),
            readiness: () => this.http.readinessChecks(),
            startedAtMs,
          }),
        );
      };
    });
  }

  async start(): Promise<void> {
    await prepareDataDir(this.config.dataDir, this.log);
    await prepareRuntimeDir(defaultRuntimeDir(), {
      "--agent-socket": this.config.agentSocket,
      "--boundary-socket": this.config.boundarySocket,
    });
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
    const { version, commit } = buildInfo();
    this.log.info(
      {
        url: `http://${formatHostPort(this.http.address())}`,
        agentSocket: this.config.agentSocket,
        boundarySocket: this.config.boundarySocket,
        dataDir: this.config.dataDir,
        upstream: this.upstream.description,
        version,
        commit,
      },
      "agentd started",
    );
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
