import { randomBytes } from "node:crypto";

/** How long a kill preview's token can be confirmed (long enough for a person to read the list). */
export const KILL_PREVIEW_TTL_MS = 60_000;
/** Previews awaiting confirmation at most; past it the oldest is forgotten. */
export const MAX_PENDING_PREVIEWS = 64;
/** Random bytes in a token (128 bits: not guessable). */
const TOKEN_BYTES = 16;

interface Preview {
  ids: string[];
  signal: number;
  expiresAtMs: number;
}

/** Why a confirmation was refused. */
export type ConfirmRefusal = "unknown" | "expired" | "mismatch";

/**
 * Single-use tokens binding a kill preview (the exact process ids and the
 * signal) to its confirmation. A token is consumed by the first confirmation
 * that presents it, whether or not that confirmation matches, so it can never
 * be replayed.
 */
export class KillPreviews {
  private readonly pending = new Map<string, Preview>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Issues a token for signalling exactly `ids` with `signal`. */
  issue(ids: string[], signal: number): { token: string; expiresAtMs: number } {
    this.sweep();
    if (this.pending.size >= MAX_PENDING_PREVIEWS) this.pending.delete(this.pending.keys().next().value!);
    const token = randomBytes(TOKEN_BYTES).toString("base64url");
    const expiresAtMs = this.now() + KILL_PREVIEW_TTL_MS;
    this.pending.set(token, { ids: [...ids].sort(), signal, expiresAtMs });
    return { token, expiresAtMs };
  }

  /** Consumes `token`; undefined when it confirms exactly `ids` and `signal`, else why not. */
  redeem(token: string, ids: string[], signal: number): ConfirmRefusal | undefined {
    const preview = this.pending.get(token);
    this.pending.delete(token);
    if (!preview) return "unknown";
    if (this.now() > preview.expiresAtMs) return "expired";
    const sorted = [...ids].sort();
    if (preview.signal !== signal || sorted.length !== preview.ids.length || sorted.some((id, i) => id !== preview.ids[i])) {
      return "mismatch";
    }
    return undefined;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, p] of this.pending) if (now > p.expiresAtMs) this.pending.delete(token);
  }
}
