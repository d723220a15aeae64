import { useEffect, useState } from "preact/hooks";
import { auth } from "./auth.js";

/** Re-renders on token changes; returns whether a token is needed and the current epoch. */
export function useAuth(): { needed: boolean; epoch: number } {
  const [, setTick] = useState(0);
  useEffect(() => auth.subscribe(() => setTick((t) => t + 1)), []);
  return { needed: auth.needed, epoch: auth.epoch };
}
