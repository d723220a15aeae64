import { collectDefaultMetrics, Registry } from "prom-client";

const MISNAMED_DEFAULT_GAUGES = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/**
 * A fresh registry with Node's default process metrics. Each agent owns one,
 * so tests that start several agents in one process never share counters.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges with a `_total` suffix, which the
  // Prometheus exposition lint (`promtool check metrics`) rejects.
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  return registry;
}
