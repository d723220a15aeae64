// A node:test reporter that ends the run with one plain summary line,
// "N passed, N failed, N skipped", taken from the runner's own totals.
export default async function* summaryReporter(source) {
  const totals = {};
  for await (const event of source) {
    if (event.type !== "test:diagnostic" || event.data.nesting !== 0) continue;
    const match = /^(pass|fail|skipped|cancelled) (\d+)$/.exec(event.data.message);
    if (match) totals[match[1]] = (totals[match[1]] ?? 0) + Number(match[2]);
  }
  const failed = (totals.fail ?? 0) + (totals.cancelled ?? 0);
  yield `${totals.pass ?? 0} passed, ${failed} failed, ${totals.skipped ?? 0} skipped\n`;
}
