import fs from "node:fs";

/** What `agentd --version` and `/readyz` report. */
export interface BuildInfo {
  version: string;
  /** Short git commit the build came from, `-dirty` when it had local edits, or `unknown`. */
  commit: string;
}

/** Written by `scripts/build-info.mjs` at build time, next to the compiled `src/`. */
const BUILD_INFO_URL = new URL("../build-info.json", import.meta.url);
/** package.json from the source tree (`src/`), for runs without a build (tests under tsx). */
const SOURCE_PACKAGE_URL = new URL("../package.json", import.meta.url);

let cached: BuildInfo | undefined;

function readJson(url: URL): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(url, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The version and commit of this build, read once. */
export function buildInfo(): BuildInfo {
  if (!cached) {
    const info = readJson(BUILD_INFO_URL) ?? readJson(SOURCE_PACKAGE_URL) ?? {};
    cached = {
      version: typeof info.version === "string" ? info.version : "unknown",
      commit: typeof info.commit === "string" ? info.commit : "unknown",
    };
  }
  return cached;
}

/** One line: `agentd 0.1.0 (commit abc1234)`. */
export function versionLine(): string {
  const { version, commit } = buildInfo();
  return `agentd ${version} (commit ${commit})`;
}
