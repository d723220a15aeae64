import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * Sampling period of the event-loop-lag metrics in ms. prom-client's 10 ms
 * wakes an idle daemon 100 times a second (about 0.75% of a core here);
 * 100 ms costs a tenth of that and still sees any lag worth alerting on.
 */
const EVENT_LOOP_MONITORING_PRECISION_MS = 100;

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
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
  // prom-client names these gauges with a `_total` suffix, which the
  // Prometheus exposition lint (`promtool check metrics`) rejects.
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  return registry;
}
