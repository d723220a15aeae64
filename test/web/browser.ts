import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";

/** Debian's chromium: the tests never download a browser. */
export const CHROMIUM = "/usr/bin/chromium";
/** Flags for a quiet headless run in a container. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/** Launches headless chromium with a fresh profile (playwright makes the user-data-dir). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/**
 * Where screenshots of each view go: a fixed folder under the system temp
 * directory (or DASHBOARD_SCREENSHOT_DIR), outside the repository, emptied
 * and refilled on each run so that runs do not pile up.
 */
export function screenshotDir(name: string): string {
  const dir = process.env.DASHBOARD_SCREENSHOT_DIR ?? path.join(os.tmpdir(), `agentd-dashboard-${name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
