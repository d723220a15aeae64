import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import {
  Agent as AgentService,
  CreateSubAgentRequest_App_OpenIn,
  CreateSubAgentRequest_App_SharingLevel,
  CreateSubAgentRequest_DisplayApp,
  UpdateAppStatusRequest_AppStatusState,
  type CreateSubAgentRequest,
  type CreateSubAgentRequest_App,
  type CreateSubAgentResponse_AppCreationErrorSchema,
} from "../../gen/coder/agent/v2/agent_pb.js";
import type { Logger } from "../log.js";
import { EmbeddedStore, newUuidBytes, toSubAgent, uuidText } from "./embedded-store.js";
import { createInProcessTransport } from "./in-process-transport.js";
import type { AgentClient, Upstream } from "./upstream.js";

/** coderd rejects app-status messages longer than this many bytes (coderd/agentapi/apps.go). */
export const MAX_APP_STATUS_MESSAGE_BYTES = 160;
/** provisioner.AgentNameRegex: what coderd accepts as an agent name. */
const AGENT_NAME_RE = /^[a-z0-9](-?[a-z0-9])*$/i;
/** provisioner.AppSlugRegex: what coderd accepts as an app slug. */
const APP_SLUG_RE = /^[a-z0-9](-?[a-z0-9])*$/;

/** codersdk.ValidationError's text. */
function validationError(field: string, detail: string): ConnectError {
  return new ConnectError(`field: ${field} detail: ${detail}`, Code.InvalidArgument);
}

function isEnumValue(values: object, value: number): boolean {
  return Object.values(values).includes(value);
}

function appError(app: CreateSubAgentRequest_App, seen: Set<string>): { field: string; error: string } | undefined {
  if (app.slug === "") return { field: "slug", error: "must not be empty" };
  if (!APP_SLUG_RE.test(app.slug)) {
    return { field: "slug", error: `${JSON.stringify(app.slug)} does not match regex "${APP_SLUG_RE.source}"` };
  }
  if (seen.has(app.slug)) return { field: "slug", error: `${JSON.stringify(app.slug)} is already in use` };
  seen.add(app.slug);
  if (app.share !== undefined && !isEnumValue(CreateSubAgentRequest_App_SharingLevel, app.share)) {
    return { field: "share", error: `"${app.share}" is not a valid app sharing level` };
  }
  if (app.openIn !== undefined && !isEnumValue(CreateSubAgentRequest_App_OpenIn, app.openIn)) {
    return { field: "open_in", error: `"${app.openIn}" is not an open in setting` };
  }
  return undefined;
}

function checkDisplayApps(req: CreateSubAgentRequest): void {
  req.displayApps.forEach((app, i) => {
    if (!isEnumValue(CreateSubAgentRequest_DisplayApp, app)) {
      throw validationError(`display_apps[${i}]`, `"${app}" is not a valid display app`);
    }
  });
}

/**
 * coderd's Agent API as this agent's own upstream: validates requests the way
 * coderd does and keeps what it receives in an EmbeddedStore.
 */
export function embeddedAgentService(store: EmbeddedStore | (() => EmbeddedStore)): ServiceImpl<typeof AgentService> {
  const current = typeof store === "function" ? store : () => store;
  return {
    updateAppStatus(req) {
      if (Buffer.byteLength(req.message, "utf8") > MAX_APP_STATUS_MESSAGE_BYTES) {
        throw new ConnectError("Message is too long.", Code.InvalidArgument);
      }
      if (!isEnumValue(UpdateAppStatusRequest_AppStatusState, req.state)) {
        throw new ConnectError("Invalid state provided.", Code.InvalidArgument);
      }
      if (req.slug === "") throw new ConnectError("Failed to get workspace app.", Code.NotFound);
      current().addAppStatus(req);
      return {};
    },

    async reportBoundaryLogs(req) {
      // Resolves only after the batch's group commit: nothing is acknowledged unstored.
      await current().commitBoundaryLogs(req);
      return {};
    },

    createSubAgent(req) {
      checkDisplayApps(req);
      if (req.id !== undefined) {
        const existing = current().getSubAgent(req.id);
        if (!existing) {
          throw new ConnectError(`get workspace agent by id: sub-agent ${uuidText(req.id)} not found`, Code.NotFound);
        }
        current().updateSubAgent(req.id, { displayApps: req.displayApps, directory: req.directory || undefined });
        return { agent: toSubAgent(existing) };
      }
      if (req.name === "") throw validationError("name", "agent name cannot be empty");
      if (!AGENT_NAME_RE.test(req.name)) {
        throw validationError("name", `agent name ${JSON.stringify(req.name)} does not match regex "(?i)${AGENT_NAME_RE.source}"`);
      }
      const agent = {
        id: newUuidBytes(),
        name: req.name,
        directory: req.directory,
        architecture: req.architecture,
        operatingSystem: req.operatingSystem,
        displayApps: req.displayApps,
        authToken: newUuidBytes(),
        createdAt: new Date().toISOString(),
      };
      current().insertSubAgent(agent);
      const seen = new Set<string>();
      const appCreationErrors: MessageInitShape<typeof CreateSubAgentResponse_AppCreationErrorSchema>[] = [];
      req.apps.forEach((app, index) => {
        const err = appError(app, seen);
        if (err) appCreationErrors.push({ index, field: err.field, error: err.error });
      });
      return { agent: toSubAgent(agent), appCreationErrors };
    },

    listSubAgents() {
      return { agents: current().subAgents().map(toSubAgent) };
    },

    deleteSubAgent(req) {
      if (req.id.length !== 16) {
        throw new ConnectError(`invalid UUID (got ${req.id.length} bytes)`, Code.InvalidArgument);
      }
      current().deleteSubAgent(req.id);
      return {};
    },
  };
}

/**
 * The upstream used when no coderd is configured: coderd's Agent API served
 * in-process and persisted in the data dir, so every part works on a machine
 * with no Coder deployment.
 */
export class EmbeddedUpstream implements Upstream {
  readonly name = "upstream";
  readonly description = "embedded";
  readonly client: AgentClient;
  private store: EmbeddedStore | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.client = createClient(
      AgentService,
      createInProcessTransport(AgentService, embeddedAgentService(() => this.runningStore())),
    );
  }

  isConnected(): boolean {
    return this.store !== undefined;
  }

  async start(): Promise<void> {
    this.store = EmbeddedStore.inDataDir(this.dataDir);
    this.log.info({ dataDir: this.dataDir }, "embedded upstream ready");
  }

  async stop(): Promise<void> {
    this.store?.close();
    this.store = undefined;
  }

  private runningStore(): EmbeddedStore {
    if (!this.store) throw new ConnectError("embedded upstream is not running", Code.Unavailable);
    return this.store;
  }
}
