/** sessionStorage key of the bearer token: kept for this tab only, gone when it closes. */
const TOKEN_KEY = "agentd.token";

type Listener = () => void;

/**
 * The bearer token the page sends, and whether the server asked for one.
 * Views re-fetch when `epoch` changes (a token was entered).
 */
class Auth {
  private listeners = new Set<Listener>();
  needed = false;
  epoch = 0;

  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** The server answered 401: ask for a token (once; a wrong one asks again). */
  require(): void {
    if (this.needed) return;
    this.needed = true;
    this.emit();
  }

  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
    this.needed = false;
    this.epoch++;
    this.emit();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}

export const auth = new Auth();
