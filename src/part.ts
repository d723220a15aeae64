/**
 * A long-lived piece of the agent (process manager, git watch, boundary
 * proxy, agent socket, upstream link). The composition root starts parts in
 * order and stops them in reverse.
 */
export interface Part {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
