terraform {
  required_version = ">= 1.0"

  required_providers {
    coder = {
      source  = "coder/coder"
      version = ">= 2.5"
    }
  }
}

variable "agent_id" {
  type        = string
  description = "The ID of a Coder agent."
}

variable "port" {
  type        = number
  description = "The port agentd's HTTP API and dashboard listen on (loopback only)."
  default     = 4141
}

variable "install_source" {
  type        = string
  description = "What `npm install -g` installs when agentd is missing: an npm spec (agentd@0.1.0) or the path of a packed tarball in the workspace."
  default     = "agentd"
}

variable "install_prefix" {
  type        = string
  description = "npm prefix agentd is installed into (its binary lands in <prefix>/bin). Empty: $HOME/.agentd."
  default     = ""
}

variable "data_dir" {
  type        = string
  description = "agentd's data directory (spool, tracked paths, embedded upstream). Empty: agentd's default, $XDG_DATA_HOME/agentd or ~/.local/share/agentd."
  default     = ""
}

variable "log_path" {
  type        = string
  description = "The file agentd's log lines are appended to."
  default     = "/tmp/agentd.log"
}

variable "agent_socket_path" {
  type        = string
  description = "The agent socket agentd serves; exported to the workspace as CODER_AGENT_SOCKET_PATH so `coder exp sync` and `agentd sync`, `agentd app-status`, `agentd mcp` reach agentd. Keep it apart from the Go agent's socket."
  default     = "/tmp/agentd/agent.sock"
}

variable "boundary_socket_path" {
  type        = string
  description = "The socket agentd takes boundary's audit logs on; exported as CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH so `boundary` started in the workspace writes to agentd, not to the Go agent's /tmp/boundary-audit.sock."
  default     = "/tmp/agentd/boundary-audit.sock"
}

variable "share" {
  type        = string
  description = "Who may open the dashboard app: owner, authenticated or public."
  default     = "owner"
  validation {
    condition     = var.share == "owner" || var.share == "authenticated" || var.share == "public"
    error_message = "Incorrect value. Please set either 'owner', 'authenticated', or 'public'."
  }
}

variable "order" {
  type        = number
  description = "The order determines the position of app in the UI presentation. The lowest order is shown first and apps with equal order are sorted by name (ascending order)."
  default     = null
}

variable "group" {
  type        = string
  description = "The name of a group that this app belongs to."
  default     = null
}

variable "offline" {
  type        = bool
  description = "Only start agentd; never install it (it must already be on PATH or in the install prefix)."
  default     = false
}

locals {
  script_vars = {
    PORT            = var.port
    INSTALL_SOURCE  = var.install_source
    INSTALL_PREFIX  = var.install_prefix
    DATA_DIR        = var.data_dir
    LOG_PATH        = var.log_path
    AGENT_SOCKET    = var.agent_socket_path
    BOUNDARY_SOCKET = var.boundary_socket_path
    OFFLINE         = var.offline
  }
}

resource "coder_script" "agentd" {
  agent_id           = var.agent_id
  display_name       = "agentd"
  icon               = "/icon/terminal.svg"
  script             = templatefile("${path.module}/run.sh", merge(local.script_vars, { ACTION = "start" }))
  run_on_start       = true
  start_blocks_login = false
}

resource "coder_script" "agentd_stop" {
  agent_id     = var.agent_id
  display_name = "agentd (stop)"
  icon         = "/icon/terminal.svg"
  script       = templatefile("${path.module}/run.sh", merge(local.script_vars, { ACTION = "stop" }))
  run_on_stop  = true
}

resource "coder_env" "agent_socket" {
  agent_id = var.agent_id
  name     = "CODER_AGENT_SOCKET_PATH"
  value    = var.agent_socket_path
}

resource "coder_env" "boundary_socket" {
  agent_id = var.agent_id
  name     = "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH"
  value    = var.boundary_socket_path
}

resource "coder_env" "url" {
  agent_id = var.agent_id
  name     = "AGENTD_URL"
  value    = "http://127.0.0.1:${var.port}"
}

resource "coder_app" "agentd" {
  agent_id     = var.agent_id
  slug         = "agentd"
  display_name = "agentd"
  url          = "http://localhost:${var.port}/"
  icon         = "/icon/terminal.svg"
  subdomain    = false
  share        = var.share
  order        = var.order
  group        = var.group

  healthcheck {
    url       = "http://localhost:${var.port}/healthz"
    interval  = 5
    threshold = 6
  }
}
