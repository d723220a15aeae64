import v8 from "node:v8";

/**
 * V8 flags that hold only while the daemon loads its modules and starts its
 * parts, measured on an idle `agentd serve` 3 s after start (Node 20):
 *
 * - `--no-turbofan`, `--no-sparkplug`: loading runs hundreds of modules' top
 *   levels once each and the module loader's own resolve functions once per
 *   module; TurboFan optimizes the loader's functions anyway, and the
 *   compiler's pages and the memory of its worker threads then stay resident
 *   in the idle daemon (about 7 MiB; Sparkplug's code for run-once functions
 *   about 0.3 MiB more).
 * - `--semi-space-growth-factor=1`: everything loaded survives its first
 *   scavenges, and V8 doubles the young generation whenever that many bytes
 *   survive, a rule meant for a steady allocation rate, not a one-off load;
 *   it left the idle daemon with a 16 MiB new space instead of 2 MiB
 *   (about 7 MiB resident).
 * - `--compact-on-every-full-gc`: loading leaves most old-space pages part
 *   garbage, and the full GC it triggers (at about 12 MiB of heap) compacts
 *   only the emptiest of them by default; the rest stayed committed until
 *   V8's memory reducer ran some 8 s later. Compacting every page there
 *   costs that one GC about 50 ms and left the idle daemon's V8 heap at
 *   12.2 MiB instead of 14.5 MiB (about 2.3 MiB resident).
 */
const STARTUP_FLAGS = ["--no-turbofan", "--no-sparkplug", "--semi-space-growth-factor=1", "--compact-on-every-full-gc"];

/** V8's defaults for the same flags (`node --v8-options`), restored once the daemon has started. */
const DEFAULT_FLAGS = ["--turbofan", "--sparkplug", "--semi-space-growth-factor=2", "--no-compact-on-every-full-gc"];

/** A node option naming one of the tuned flags: the user chose it, so agentd leaves V8's flags alone. */
const USER_FLAG = /--(no-)?(turbofan|opt|sparkplug|semi[-_]space[-_]growth[-_]factor|compact[-_]on[-_]every[-_]full[-_]gc)\b/;

let held = false;

/**
 * Sets the start-up flags for this process, unless node was started with any
 * of them (on its command line or in NODE_OPTIONS). Changes V8 in this
 * process only: nothing reaches child processes.
 */
export function holdStartupTuning(): void {
  const nodeOptions = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].join(" ");
  if (held || USER_FLAG.test(nodeOptions)) return;
  for (const flag of STARTUP_FLAGS) v8.setFlagsFromString(flag);
  held = true;
}

/** Restores V8's defaults after `holdStartupTuning`; does nothing otherwise. */
export function releaseStartupTuning(): void {
  if (!held) return;
  for (const flag of DEFAULT_FLAGS) v8.setFlagsFromString(flag);
  held = false;
}
