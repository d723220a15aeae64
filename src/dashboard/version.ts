import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The `version` of agentd's package.json (two levels above src/ and dist/src/), "unknown" if unreadable. */
export function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ["../..", "../../.."]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(here, up, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "agentd" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // Try the next candidate.
    }
  }
  return "unknown";
}
