import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const TUNING_MODULE = fileURLToPath(new URL("../../dist/src/startup-tuning.js", import.meta.url));

/**
 * A child node (given `nodeArgs`) that holds the start-up tuning, keeps
 * enough objects alive that V8 would grow the young generation, then
 * releases it and does the same again. Prints the new space's size after
 * each step. Runs the build (`make build`), in plain node so that no loader
 * has grown the young generation before the test does.
 */
const CHILD = `
import v8 from "node:v8";
const { holdStartupTuning, releaseStartupTuning } = await import(${JSON.stringify(TUNING_MODULE)});
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size;
const kept = [];
const survive = () => { for (let i = 0; i < 400000; i++) kept.push({ i, s: "x" + i }); };
const initial = newSpace();
holdStartupTuning();
survive();
const held = newSpace();
releaseStartupTuning();
survive();
console.log(JSON.stringify({ initial, held, released: newSpace() }));
`;

interface Sizes {
  initial: number;
  held: number;
  released: number;
}

function runChild(nodeArgs: string[]): Promise<Sizes> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, "--input-type=module", "-e", CHILD], {
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as Sizes) : reject(new Error(`child exited ${code}`))));
  });
}

describe("start-up tuning", () => {
  it("holds the young generation at its initial size until released, then lets it grow", async () => {
    const sizes = await runChild([]);
    assert.ok(sizes.held <= 2 * sizes.initial, `held ${sizes.held} against initial ${sizes.initial}`);
    assert.ok(sizes.released > sizes.held, `released ${sizes.released} against held ${sizes.held}`);
  });

  it("leaves V8's flags alone when node was started with one of them", async () => {
    const sizes = await runChild(["--semi-space-growth-factor=2"]);
    assert.ok(sizes.held > 2 * sizes.initial, `held ${sizes.held} against initial ${sizes.initial}`);
  });
});
