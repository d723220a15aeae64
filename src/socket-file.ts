import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import { errnoCode, errorText, UsageError } from "./errors.js";

/** Mode of every unix socket agentd listens on: owner only. */
export const SOCKET_FILE_MODE = 0o600;

/** How long the liveness probe waits for a connect (a live listener answers at once; the kernel queues the connect). */
const PROBE_TIMEOUT_MS = 2_000;

/** The umask that makes a freshly bound socket 0600. */
const PRIVATE_UMASK = 0o177;

/** The flag and environment variable a socket path comes from, named in every error about it. */
export interface SocketPathSource {
  flag: string;
  env: string;
}

/**
 * Resolves true unless connecting to `socketPath` proves nobody listens
 * (ECONNREFUSED: a socket file left by a server that died). Any other
 * outcome, a full backlog included, counts as a live listener.
 */
export function socketAnswers(socketPath: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    const done = (live: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    conn.once("connect", () => done(true));
    conn.once("error", (err) => done(errnoCode(err) !== "ECONNREFUSED" && errnoCode(err) !== "ENOENT"));
  });
}

/**
 * Makes `socketPath` free to listen on without taking anything that is not
 * ours to take: a missing path is fine, a stale socket file is removed, and a
 * file that is not a socket or a socket a live server answers on is left
 * alone and reported as a UsageError naming `flag` with the remedy.
 */
export async function claimSocketPath(
  socketPath: string,
  source: SocketPathSource,
  probeTimeoutMs = PROBE_TIMEOUT_MS,
): Promise<void> {
  const { flag, env } = source;
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw new UsageError(flag, `cannot inspect ${socketPath}: ${errorText(err)}`);
  }
  if (!stat.isSocket()) {
    throw new UsageError(flag, `${socketPath} exists and is not a socket: move that file away or choose another ${flag}`);
  }
  if (await socketAnswers(socketPath, probeTimeoutMs)) {
    throw new UsageError(
      flag,
      `socket path ${socketPath} is not available: another server is listening on it (another agentd, or Coder's agent?): stop it or set ${flag} or ${env} to another path`,
    );
  }
  fs.rmSync(socketPath, { force: true });
}

/**
 * Binds `server` to `socketPath` with the socket created 0600 whatever the
 * umask: the umask is narrowed only around the synchronous bind (no child can
 * start in between, so children keep the user's umask), then the mode is set
 * again explicitly.
 */
export async function listenPrivate(server: net.Server, socketPath: string): Promise<void> {
  const previous = process.umask(PRIVATE_UMASK);
  try {
    server.listen(socketPath);
  } finally {
    process.umask(previous);
  }
  await once(server, "listening");
  fs.chmodSync(socketPath, SOCKET_FILE_MODE);
}

/** Device and inode of the socket file a server bound, to tell it from a file someone put there later. */
export interface SocketIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `socketPath` now. */
export function socketIdentity(socketPath: string): SocketIdentity {
  const { dev, ino } = fs.lstatSync(socketPath);
  return { dev, ino };
}

/** Removes `socketPath` only if it is still the file `identity` describes: a replacement is someone else's. */
export function removeOwnSocket(socketPath: string, identity: SocketIdentity | undefined): void {
  try {
    const now = socketIdentity(socketPath);
    if (identity && now.dev === identity.dev && now.ino === identity.ino) fs.rmSync(socketPath, { force: true });
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
  }
}
