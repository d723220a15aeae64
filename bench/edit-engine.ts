// The edit engine on a 1 MiB source file, against the plainest way to make
// the same change (decode, String#replace, encode), measured in the same run:
// an exact edit must cost no more than that baseline, and the fuzzy passes
// (which split the file into lines) are shown for scale.
import { performance } from "node:perf_hooks";
import { applyEdits } from "../src/files/edit-engine.js";

/** Runs per measurement. */
const RUNS = 200;
/** The file size the benchmark uses. */
const FILE_BYTES = 1 << 20;

function time(label: string, run: () => unknown): number {
  for (let i = 0; i < 20; i++) run();
  const start = performance.now();
  for (let i = 0; i < RUNS; i++) run();
  const ms = (performance.now() - start) / RUNS;
  console.log(`${label}: ${ms.toFixed(3)} ms/edit`);
  return ms;
}

const lines: string[] = [];
for (let i = 0, size = 0; size < FILE_BYTES; i++) {
  const line = `\tconst value${i} = compute(${i}, "some text on line ${i}");\n`;
  lines.push(line);
  size += line.length;
}
const content = Buffer.from(lines.join(""));
const middle = Math.floor(lines.length / 2);
const search = `value${middle} = compute(${middle},`;
const replace = `renamed${middle} = compute(${middle},`;

const baseline = time("baseline (toString + replace + Buffer.from)", () => Buffer.from(content.toString("utf8").replace(search, replace)));
const exact = time("applyEdits, exact pass", () => applyEdits(content, [{ search, replace, replaceAll: false }]));
const fuzzy = time("applyEdits, indentation pass", () =>
  applyEdits(content, [{ search: `  const value${middle} = compute(${middle}, "some text on line ${middle}");\n`, replace: "  x\n", replaceAll: false }]),
);
console.log(`exact/baseline ratio: ${(exact / baseline).toFixed(2)}`);
console.log(`indentation/baseline ratio: ${(fuzzy / baseline).toFixed(2)}`);
